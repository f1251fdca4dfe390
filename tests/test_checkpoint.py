import json

import pytest
import torch

from adaptive_csp.data import fashion_mnist as fm
from adaptive_csp.models import create_model
from adaptive_csp.models.pretrained import (
    ASSETS,
    CheckpointError,
    load_model,
    pretrained,
    save_model,
    shipped_ladder,
)
from tests.conftest import randomize_bn

HAVE_DATA = (fm.DEFAULT_DIR / "t10k-images-idx3-ubyte.gz").exists()


@pytest.fixture
def saved(tmp_path):
    m = randomize_bn(create_model("csp_small")).eval()
    m.calibrate_bn([0], [torch.randn(32, 1, 28, 28)])
    path = save_model(m, tmp_path / "m", class_names=list(fm.CLASS_NAMES))
    return m, path


def test_round_trip_with_per_level_bn(saved):
    m, path = saved
    back = load_model(path)
    x = torch.randn(2, 1, 28, 28)
    for i in (0, 3, -1):
        assert torch.allclose(back(x, i), m(x, i), atol=1e-6)
    assert set(back.bn_stats) == set(m.bn_stats)
    assert back.meta["class_names"][0] == "T-shirt/top"


def test_truncated_file_is_reported(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt, truncated"):
        load_model(path)
    with pytest.raises(CheckpointError, match="cannot read safetensors"):
        load_model(path, verify=False)


def test_corrupt_bytes_are_reported(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 does not match"):
        load_model(path)


def test_mismatched_config_is_reported(saved, tmp_path):
    _, path = saved
    meta_path = path.with_suffix(".json")
    doc = json.loads(meta_path.read_text())
    doc["config"]["stages"][0]["out_chs"] = 96
    meta_path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="shape"):
        load_model(path)
    meta_path.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(path)
    meta_path.unlink()
    with pytest.raises(CheckpointError, match="metadata file missing"):
        load_model(path)


def test_wrong_model_weights_are_reported(saved, tmp_path):
    _, path = saved
    other = save_model(create_model("plain_small"), tmp_path / "other")
    path.write_bytes(other.read_bytes())
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_model(path)
    with pytest.raises(CheckpointError, match="do not match the config"):
        load_model(path, verify=False)


def test_shipped_model_loads_offline_small_and_ordered():
    m = pretrained()
    files = list(ASSETS.glob("csp_small_fmnist.*"))
    assert sum(f.stat().st_size for f in files) <= 5 * 1024 * 1024
    ladder = m.levels
    assert len(ladder) >= 6
    assert ladder == shipped_ladder()
    lat = [r.latency_ms_b32 for r in ladder.rungs]
    macs = [r.macs for r in ladder.rungs]
    assert lat == sorted(lat), "ladder must be ordered by measured cost"
    assert macs[0] < macs[-1]
    for key in ("class_names", "preprocess", "data", "train"):
        assert key in m.meta, key
    assert "MIT" in m.meta["data"]["license"]
    for r in ladder.rungs:
        assert r.level.key in m.bn_stats, "every ladder level carries its own BN statistics"


@pytest.mark.skipif(not HAVE_DATA, reason="Debian package dataset-fashion-mnist not installed "
                    "(apt-get install -y dataset-fashion-mnist); .ci/run installs it")
def test_shipped_accuracy_matches_metadata_on_1000_test_images():
    from adaptive_csp.train.sandwich import evaluate

    m = pretrained()
    test = fm.load_split("test")
    # a fixed uniform sample (the first 1000 test images are easier than the whole set)
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:1000]
    sample = fm.Split(test.images[idx], test.labels[idx])
    for i in (0, -1):
        rung = m.levels.rungs[i]
        claimed = rung.extra["test_accuracy"]
        got = evaluate(m, sample, i)
        assert abs(got - claimed) <= 0.015, (rung.level.key, got, claimed)
