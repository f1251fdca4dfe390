"""Bring your own data: an ImageFolder-layout folder trains a model the runner, profile and export accept."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")

from adaptive_csp.data.folder import load_folder  # noqa: E402
from adaptive_csp.data.images import ImageSet, from_dataset  # noqa: E402

CLASSES = ("circle", "square", "stripes")


def _draw(kind: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    img = np.full((size, size, 3), rng.integers(0, 60, 3), np.uint8)
    colour = tuple(int(c) for c in rng.integers(120, 255, 3))
    c = int(rng.integers(12, 20))
    if kind == "circle":
        cv2.circle(img, (c, c), 8, colour, -1)
    elif kind == "square":
        cv2.rectangle(img, (c - 8, c - 8), (c + 8, c + 8), colour, -1)
    else:
        for y in range(2, size, 6):
            cv2.line(img, (0, y), (size - 1, y), colour, 2)
    return img


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for k in CLASSES:
        (root / k).mkdir()
        for i in range(16):
            cv2.imwrite(str(root / k / f"{i}.png"), _draw(k, rng))
    return root


def test_load_folder_reads_classes_colour_and_size(folder):
    data = load_folder(folder)
    assert data.class_names == CLASSES
    assert data.images.shape == (48, 3, 32, 32) and data.images.dtype == torch.uint8
    assert sorted(set(data.labels.tolist())) == [0, 1, 2]
    small = load_folder(folder, input_size=(16, 20))
    assert small.images.shape[2:] == (16, 20)
    pre = data.preprocess_meta()
    assert pre["in_chans"] == 3 and pre["color"] == "rgb" and pre["input_size"] == [32, 32]


def test_bad_folders_get_clear_errors(tmp_path, folder):
    with pytest.raises(ValueError, match="not a folder"):
        load_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_folder(tmp_path / "empty")
    one = tmp_path / "one"
    (one / "a").mkdir(parents=True)
    cv2.imwrite(str(one / "a" / "x.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="only one class"):
        load_folder(one)
    (one / "b").mkdir()
    with pytest.raises(ValueError, match=r"b: class folder holds no images"):
        load_folder(one)
    good = (folder / "circle" / "0.png").read_bytes()
    (one / "b" / "broken.png").write_bytes(good[: len(good) // 3])
    with pytest.raises(ValueError, match=r"broken\.png: unreadable or truncated"):
        load_folder(one)
    (one / "b" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"broken\.png"):
        load_folder(one)


def test_from_dataset_checks_items():
    class DS(torch.utils.data.Dataset):
        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    ok = DS([(torch.rand(3, 8, 8), i % 2) for i in range(6)])
    data = from_dataset(ok)
    assert isinstance(data, ImageSet) and data.images.shape == (6, 3, 8, 8) and data.class_names == ("0", "1")
    with pytest.raises(ValueError, match="empty"):
        from_dataset(DS([]))
    with pytest.raises(ValueError, match=r"item 1: float images must be in \[0, 1\]"):
        from_dataset(DS([(torch.rand(1, 8, 8), 0), (torch.rand(1, 8, 8) * 3, 1)]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        from_dataset(DS([(torch.rand(1, 8, 8), 0)] * 3))


def test_train_on_folder_then_profile_runner_export(folder, tmp_path, monkeypatch):
    from adaptive_csp import AdaptiveRunner
    from adaptive_csp.commands import profile as prof_cmd
    from adaptive_csp.commands.common import cfg_from_args
    from adaptive_csp.models.pretrained import load_model, save_model
    from adaptive_csp.train import profile as prof
    from adaptive_csp.train.sandwich import TrainCfg, train

    args = argparse.Namespace(model="csp_small", epochs="2", batch_size="16", full_only_epochs="1",
                              lr="0.05", calib_images="32", threads="1")
    cfg = cfg_from_args(args, TrainCfg)
    assert cfg.epochs == 2 and cfg.lr == 0.05
    data = load_folder(folder)
    model = train(cfg, tmp_path / "run", progress=False, dataset=data)
    hist = model.meta["train"]["history"]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert model.meta["class_names"] == list(CLASSES)
    assert model.cfg.in_chans == 3 and model.cfg.num_classes == 3 and model.cfg.input_size == (32, 32)
    path = save_model(model, tmp_path / "model")

    parser = argparse.ArgumentParser()
    prof_cmd.configure(parser)  # the same options as `adaptive-csp profile`
    ns = parser.parse_args([str(path), "--out", str(tmp_path / "profiled"), "--latency-threads", "1",
                            "--min-rungs", "2", "--max-rungs", "3", "--screen-val", "16", "--data", str(folder)])
    every = prof.candidate_levels
    monkeypatch.setattr(prof, "candidate_levels", lambda m: every(m)[::9] + [m.full_level()])  # quick
    assert prof_cmd.run(ns) == 0
    profiled = load_model(tmp_path / "profiled")
    # a 2-epoch model may have few rungs that beat every cheaper one; the full level always ends the ladder
    assert profiled.levels[-1] == profiled.full_level() and profiled.meta["class_names"] == list(CLASSES)
    assert all(lv.key in profiled.bn_stats for lv in profiled.levels)

    frame = cv2.imread(str(folder / "square" / "3.png"))  # BGR, as a camera gives it
    big = cv2.resize(frame, (96, 96))
    with AdaptiveRunner(profiled, policy="static-max", sensors=None) as runner:
        pred = runner.infer(big)
    assert pred.class_name in CLASSES
    static = profiled.export(profiled.levels[0])
    assert static(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def _folder_model(folder: Path, tmp_path: Path, source: Path):
    """A small untrained 3-class RGB model whose JSON says it was trained on ``source`` (as `train --data` writes)."""
    from adaptive_csp.models import create_model
    from adaptive_csp.models.pretrained import save_model

    data = load_folder(folder)
    torch.manual_seed(0)
    m = create_model("csp_small", num_classes=3, in_chans=3, input_size=(32, 32)).eval()
    m.meta = {"class_names": list(CLASSES), "preprocess": data.preprocess_meta(),
              "data": {"name": source.name, "source": str(source)},
              "train": {"cfg": {"val_fraction": 0.25, "seed": 0}, "runs": [{"command": "adaptive-csp train"}]}}
    return save_model(m, tmp_path / "model")


def test_profile_reads_the_data_folder_from_the_models_json(folder, tmp_path, monkeypatch, capsys):
    from adaptive_csp.cli import main
    from adaptive_csp.commands import profile as prof_cmd
    from adaptive_csp.models.pretrained import load_model
    from adaptive_csp.train import profile as prof

    path = _folder_model(folder, tmp_path, folder)
    parser = argparse.ArgumentParser()
    prof_cmd.configure(parser)
    train, val = prof._data(load_model(path), parser.parse_args([str(path)]))  # no --data
    assert train.info["source"] == str(folder.resolve()) and len(train) + len(val) == 48 and len(val) == 12
    assert train.images.shape[1:] == (3, 32, 32) and train.mean == tuple(load_folder(folder).mean)
    every = prof.candidate_levels
    monkeypatch.setattr(prof, "candidate_levels", lambda m: every(m)[::50] + [m.full_level()])  # quick
    assert main(["profile", str(path), "--out", str(tmp_path / "p"), "--latency-threads", "1", "--engines", "torch",
                 "--latency-rounds", "1", "--min-rungs", "2"]) == 0
    prof_meta = load_model(tmp_path / "p").meta["profile"]
    assert prof_meta["data"] == str(folder.resolve()) and prof_meta["val_images"] == 12
    other = tmp_path / "other"  # an explicit --data wins over the recorded folder
    for k in CLASSES:
        (other / k).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(other / k / f"{i}.png"), np.zeros((32, 32, 3), np.uint8) + i)
    train, val = prof._data(load_model(path), parser.parse_args([str(path), "--data", str(other)]))
    assert train.info["source"] == str(other.resolve()) and len(train) + len(val) == 12
    gone = _folder_model(folder, tmp_path / "gone", tmp_path / "moved")  # the recorded folder is missing
    capsys.readouterr()
    assert main(["profile", str(gone), "--out", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "moved" in err[0] and "--data" in err[0]
