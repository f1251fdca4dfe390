"""Detector training and profiling end to end, from the CLI, on a tiny COCO-format folder."""

import json

import pytest
import torch

from adaptive_csp.cli import main as cli_main
from adaptive_csp.data.detset import DetSet
from adaptive_csp.detect.checkpoint import load_detector

pytest.importorskip("cv2")
pytest.importorskip("pycocotools")


def _scenes(n: int, seed: int) -> DetSet:
    """Bright squares (class 0) and bars (class 1) on a dark background, 32×32."""
    g = torch.Generator().manual_seed(seed)
    images = torch.full((n, 3, 32, 32), 20, dtype=torch.uint8)
    boxes, labels = [], []
    for i in range(n):
        x, y = (int(v) for v in torch.randint(0, 18, (2,), generator=g))
        c = int(torch.randint(0, 2, (1,), generator=g))
        w, h = (12, 12) if c == 0 else (14, 6)
        images[i, :, y:y + h, x:x + w] = 220
        boxes.append(torch.tensor([[x, y, x + w, y + h]], dtype=torch.float32))
        labels.append(torch.tensor([c]))
    return DetSet(images, boxes, labels, ["square", "bar"])


def test_train_resume_and_profile_from_a_coco_folder(tmp_path, capsys):
    from adaptive_csp.data.coco import write_coco

    imgs, ann = write_coco(_scenes(48, 0), tmp_path / "data")
    out = tmp_path / "run"
    args = ["train-detector", "--out", str(out), "--model", "csp_det_tiny", "--coco-images", str(imgs),
            "--coco-json", str(ann), "--batch-size", "16", "--n-random", "1", "--warmup-steps", "1",
            "--calib-images", "16", "--threads", "1", "--quiet"]
    assert cli_main([*args, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert cli_main([*args, "--epochs", "2"]) == 0  # resumes: one more epoch, not two
    assert "resumed from" in capsys.readouterr().out
    meta = json.loads((out / "model.json").read_text())
    assert meta["task"] == "detect" and meta["class_names"] == ["square", "bar"]
    assert [h["epoch"] for h in meta["train"]["history"]] == [1, 2]
    assert "train-detector" in meta["train"]["command"] and meta["train"]["device"] == "cpu"
    runs = meta["train"]["runs"]  # both invocations, not only the last
    assert [r["start_epoch"] for r in runs] == [0, 1] and [r["device"] for r in runs] == ["cpu", "cpu"]
    assert "--epochs 1" in runs[0]["command"] and "--epochs 2" in runs[1]["command"]
    assert meta["preprocess"]["input_size"] == [32, 32]

    prof = tmp_path / "profiled"
    assert cli_main(["profile-detector", str(out / "model"), "--out", str(prof), "--coco-images", str(imgs),
                     "--coco-json", str(ann), "--val-images", str(imgs), "--val-json", str(ann),
                     "--calib-images", "16", "--engine", "torch"]) == 0
    model = load_detector(prof)
    rungs = model.levels.rungs
    assert rungs[-1].level == model.full_level()
    lat = [r.latency_ms for r in rungs]
    acc = [r.accuracy for r in rungs]
    assert lat == sorted(lat) and all(a < b for a, b in zip(acc, acc[1:]))
    assert set(model.bn_stats) == {r.level.key for r in rungs}  # every rung has its own BN statistics
    assert "mAP@.5" in capsys.readouterr().out


def test_init_continues_from_a_trained_detector(tmp_path, capsys):
    """``--init CKPT`` starts from that detector's weights, per-level BN and metadata (a new schedule); a
    detector of another architecture, or init together with init_backbone, is refused."""
    from adaptive_csp.data.coco import write_coco
    from adaptive_csp.train.detect import DetTrainCfg, _continue_from, _setup

    imgs, ann = write_coco(_scenes(32, 0), tmp_path / "data")
    common = ["--model", "csp_det_tiny", "--coco-images", str(imgs), "--coco-json", str(ann), "--batch-size", "16",
              "--n-random", "1", "--warmup-steps", "1", "--calib-images", "16", "--threads", "1", "--quiet",
              "--epochs", "1"]
    assert cli_main(["train-detector", "--out", str(tmp_path / "a"), *common]) == 0
    first = load_detector(tmp_path / "a" / "model")
    cfg = DetTrainCfg(model="csp_det_tiny", coco_images=str(imgs), coco_json=str(ann), init=str(tmp_path / "a" / "model"))
    from adaptive_csp.train.detect import detect_data

    train, _ = detect_data(cfg)
    model, init = _setup(cfg, train)
    assert init["init"] == str(tmp_path / "a" / "model") and "train-detector" in init["init_command"]
    want = json.loads((tmp_path / "a" / "model.json").read_text())["sha256"]
    assert init["init_sha256"] == want  # which weights it began from
    for k, v in first.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert model.bn_stats.keys() == first.bn_stats.keys() and model.training
    assert cli_main(["train-detector", "--out", str(tmp_path / "b"), *common, "--init", str(tmp_path / "a" / "model"),
                     "--cls-ce", "0.5"]) == 0
    meta = json.loads((tmp_path / "b" / "model.json").read_text())
    # every rung of the saved ladder carries BN statistics of the weights it ends with, not its start's
    second = load_detector(tmp_path / "b" / "model")
    assert {lv.key for lv in first.levels} <= set(first.bn_stats) == set(second.bn_stats)
    for key, stats in second.bn_stats.items():
        assert any(not torch.equal(stats[n][0], first.bn_stats[key][n][0]) for n in stats), key
    assert meta["train"]["init"]["init"] == str(tmp_path / "a" / "model") and "--cls-ce 0.5" in meta["train"]["command"]
    with pytest.raises(ValueError, match="not both"):
        _setup(DetTrainCfg(model="csp_det_tiny", init="x", init_backbone="csp_wide_fmnist"), train)
    with pytest.raises(ValueError, match="this run builds a csp_det_tiny"):
        _continue_from(DetTrainCfg(model="csp_det_tiny", init="csp_det_wide_scenes"), model)
