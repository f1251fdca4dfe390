import json

import pytest
import torch

from adaptive_csp.data import fashion_mnist as fm
from adaptive_csp.models import create_model
from adaptive_csp.models.pretrained import (
    ASSETS,
    DEFAULT_MODEL,
    CheckpointError,
    load_model,
    pretrained,
    save_model,
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
    files = list(ASSETS.glob(f"{DEFAULT_MODEL}.*"))
    assert sum(f.stat().st_size for f in files) <= 8_000_000
    ladder = m.levels
    assert len(ladder) >= 6
    lat = [r.latency_ms_b32 for r in ladder.rungs]
    acc = [r.accuracy for r in ladder.rungs]
    assert lat == sorted(lat), "ladder must be ordered by measured cost"
    assert acc == sorted(acc), "a Pareto ladder gains validation accuracy with every rung"
    for r in ladder.rungs:  # the metadata describes these weights and this config, not another model's
        assert r.macs == m.macs(r.level) and r.params == m.params(r.level), r.level.key
    for key in ("class_names", "preprocess", "data", "train"):
        assert key in m.meta, key
    assert "MIT" in m.meta["data"]["license"]
    shared = m.stem.bn.running_mean
    for r in ladder.rungs:
        assert r.level.key in m.bn_stats, "every ladder level carries its own BN statistics"
    narrow = [r.level for r in ladder.rungs if r.level.width < 1]
    if narrow:  # re-estimated statistics, not copies of the shared ones
        assert not torch.allclose(m.bn_stats[narrow[0].key]["stem"][0], shared[: len(m.bn_stats[narrow[0].key]["stem"][0])])


def test_previous_shipped_model_still_loads():
    old = pretrained("csp_small_fmnist")
    assert old.cfg.name == "csp_small" and all(lv.width == 1.0 for lv in old.levels)
    assert old(torch.zeros(1, 1, 28, 28), 0).shape == (1, 10)


@pytest.mark.skipif(not HAVE_DATA, reason="Debian package dataset-fashion-mnist not installed "
                    "(apt-get install -y dataset-fashion-mnist); .ci/run installs it")
def test_shipped_accuracy_matches_metadata_through_the_runner():
    """The claimed test accuracy (benchmarks/accuracy.py, via evaluate on normalised tensors) checked by
    another path: raw uint8 frames through AdaptiveRunner's preprocessing and engine."""
    from adaptive_csp import AdaptiveRunner
    from adaptive_csp.control.baselines import StaticPolicy

    m = pretrained()
    test = fm.load_split("test")
    # a fixed uniform sample (the first 1000 test images are easier than the whole set)
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:1000]
    frames = list(test.images[idx, 0].numpy())
    labels = test.labels[idx].tolist()
    for i in (0, -1):  # the cheapest and the full rung of the view the runner hands its policy
        with AdaptiveRunner(m, policy=StaticPolicy(i), sensors=None, engine="torch") as runner:
            preds = runner.infer(frames)
        ran = preds[0].level
        assert ran == runner.view.parent_index(i) and (i == 0 or ran == m.levels.full)
        claimed = m.levels.rungs[ran].extra["test_accuracy"]
        got = sum(int(p.label == y) for p, y in zip(preds, labels)) / len(labels)
        assert abs(got - claimed) <= 0.015, (m.levels[ran].key, got, claimed)


def test_weight_files_get_the_users_mode_not_0600(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = save_model(create_model("plain_small"), tmp_path / "m")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # like the JSON beside it
    assert stat.S_IMODE(path.with_suffix(".json").stat().st_mode) == 0o644
