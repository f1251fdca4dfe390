"""The second-stage namer: item crops (against torch's own resampling), the namer naming a detector's boxes
in the runner (and off when asked), its rung matching, thresholds chosen with it, and ``train-namer``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adaptive_csp.data.crops import item_crops, resample_matrix, square_boxes
from adaptive_csp.levels import LevelLadder
from adaptive_csp.runtime import AdaptiveRunner
from adaptive_csp.runtime.namer import CropNamer, grey_input
from tests.conftest import Fixed
from tests.test_runner_detect import ENGINES, NAMES, StandIn, paint


def _torch_crops(img: np.ndarray, boxes: np.ndarray, size: int, ss: int, margin: float) -> np.ndarray:
    """The same crops by grid_sample (bilinear, border) at size·ss, then average pooling by ss."""
    h, w = img.shape
    out = []
    for x0, y0, s in square_boxes(boxes, margin):
        m = size * ss
        gx = (x0 + (np.arange(m) + 0.5) * s / m) / w * 2 - 1
        gy = (y0 + (np.arange(m) + 0.5) * s / m) / h * 2 - 1
        grid = torch.tensor(np.stack(np.meshgrid(gx, gy), -1)[None], dtype=torch.float32)
        r = F.grid_sample(torch.tensor(img)[None, None], grid, mode="bilinear", padding_mode="border",
                          align_corners=False)
        out.append(F.avg_pool2d(r, ss)[0, 0].numpy())
    return np.stack(out)


@pytest.mark.parametrize("size,ss,margin", [(28, 4, 1.0), (16, 1, 1.3), (28, 3, 0.8)])
def test_crops_equal_torch_resampling(size, ss, margin):
    rng = np.random.default_rng(1)
    img = rng.random((90, 130)).astype(np.float32)
    boxes = np.array([[10, 20, 40, 35], [-5, 60, 20, 95], [100, 2, 129.5, 30], [50, 50, 52, 53]], np.float32)
    np.testing.assert_allclose(item_crops(img, boxes, size, ss, margin), _torch_crops(img, boxes, size, ss, margin),
                               atol=1e-5)


def test_crop_rows_are_averages_and_bad_input_is_named():
    a = resample_matrix(3.0, 10.0, 7, 20, 4)
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-6)  # each output pixel is a mean of the input's
    assert (a[:, :2] == 0).all() and (a[:, 14:] == 0).all()  # only the span [3, 13) (and its edge) is read
    with pytest.raises(ValueError, match="one H×W image"):
        item_crops(np.zeros((2, 8, 8)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="margin"):
        item_crops(np.zeros((8, 8)), np.zeros((1, 4)), margin=0)


class _TopBottom(nn.Module):
    """A stand-in namer level: class 1 (``boot``) when a crop's bottom half is brighter than its top."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2] // 2
        d = 20.0 * (x[:, 0, h:].mean((1, 2)) - x[:, 0, :h].mean((1, 2)))
        return torch.stack([torch.zeros_like(d), d], 1)


class StandInNamer(nn.Module):
    """The classifier contract a namer needs: ``levels``, ``meta`` (``namer`` crop spec, 28×28 grey)."""

    def __init__(self, names=NAMES):
        super().__init__()
        self.levels = LevelLadder.from_costs([0.3, 0.6, 1.0])
        self.meta = {"task": "classify", "class_names": list(names),
                     "namer": {"size": 28, "supersample": 4, "margin": 1.0},
                     "preprocess": {"input_size": [28, 28], "in_chans": 1, "color": "grey", "mean": [0.0],
                                    "std": [1.0]}}

    def prepared(self, i: int) -> nn.Module:
        return _TopBottom().eval()

    def export(self, i: int) -> nn.Module:
        return _TopBottom().eval()

    def invalidate(self) -> None:
        pass


def _frame() -> np.ndarray:
    """A 96×96 BGR frame: one red box (10..30 × 20..50) whose lower half is white, so its grey crop is
    brighter at the bottom (the namer says ``boot``) while the stand-in detector at level 0 says ``shirt``."""
    f = paint(np.zeros((96, 96, 3), np.uint8), (10, 20, 30, 50), (0, 0, 255))
    return paint(f, (10, 35, 30, 50), (255, 255, 255))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("as_float", [False, True])
def test_the_namer_names_the_boxes(engine, as_float, tmp_path):
    det = StandIn()
    det.meta = {**det.meta, "namer": "unused"}  # "auto" would read this; an explicit namer wins
    frame = _frame()
    x = frame.astype(np.float32) / 255 if as_float else frame  # the float path and the uint8 frame path
    opts = {"cache": tmp_path, "threads": 1} if engine == "onnxruntime" else None
    with AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine=engine, engine_options=opts,
                        score_thresh=0.3, namer=None) as plain:
        d0 = plain.infer(x)
        assert plain.namer is None
    with AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine=engine, engine_options=opts,
                        score_thresh=0.3, namer=StandInNamer()) as named:
        d1 = named.infer(x)
        assert named.namer.engine.name == named.engine.name
        assert len(named.infer(np.zeros_like(x))) == 0  # nothing kept: nothing to name
    assert d0.labels.tolist() == [0] and d0.class_names == ["shirt"]  # the detector's own class: its level
    assert d1.labels.tolist() == [1] and d1.class_names == ["boot"]  # the namer's
    np.testing.assert_allclose(d1.boxes, d0.boxes)  # the same box, renamed
    # score = detector score · p(boot): the crop is 30 px square over a 20 px wide box, top third-grey
    # (red only), bottom white: mean difference (20/30)·(1 − 1/3) → logit 20·0.444 → p ≈ 0.99986
    assert d0.scores[0] * 0.999 < d1.scores[0] <= d0.scores[0]


def test_auto_uses_the_namer_the_detector_names(monkeypatch):
    import adaptive_csp.models.factory as factory

    asked = []
    monkeypatch.setattr(factory, "pretrained", lambda name: asked.append(name) or StandInNamer())
    det = StandIn()
    det.meta = {**det.meta, "namer": "csp_namer_test"}
    with AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine="torch", score_thresh=0.3) as r:
        assert asked == ["csp_namer_test"] and r.namer is not None
        assert r.infer(_frame()).class_names == ["boot"]
    with AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine="torch", score_thresh=0.3, namer=False) as r:
        assert r.namer is None and r.infer(_frame()).class_names == ["shirt"]
    with AdaptiveRunner(StandIn(), policy=Fixed(0), sensors=None, engine="torch") as r:
        assert r.namer is None  # the file names none
    det.meta = {**det.meta, "namer": {"model": "csp_namer_test", "detector_weight": 1.5}}
    with AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine="torch") as r:
        assert asked[-1] == "csp_namer_test" and r.namer.detector_weight == 1.5
    det.meta = {**det.meta, "namer": {"detector_weight": 1.5}}
    with pytest.raises(ValueError, match="must name a namer"):
        AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine="torch")


def test_namer_rungs_follow_the_detector_cost_and_bad_namers_are_named():
    n = CropNamer(StandInNamer(), [0.1, 0.3, 0.5, 0.9, 1.0], "torch")
    assert [n.level_for(i) for i in range(5)] == [0, 0, 1, 2, 2]
    with pytest.raises(ValueError, match="train-namer"):
        bad = StandInNamer()
        del bad.meta["namer"]
        CropNamer(bad, [1.0], "torch")
    with pytest.raises(ValueError, match="not the detector's"):
        AdaptiveRunner(StandIn(), policy=Fixed(0), sensors=None, engine="torch",
                       namer=StandInNamer(["a", "b"]))


def test_grey_input_inverts_the_normalisation():
    rng = np.random.default_rng(0)
    img = rng.random((3, 8, 8)).astype(np.float32)
    mean, std = [0.2, 0.3, 0.4], [0.5, 0.6, 0.7]
    x = (img - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(grey_input(x, False, mean, std), img.mean(0), atol=1e-6)
    hwc = (img.transpose(1, 2, 0) * 255).astype(np.float32)
    np.testing.assert_allclose(grey_input(hwc, True, mean, std), img.mean(0), atol=1e-6)


def test_train_namer_cli_writes_a_namer(tmp_path):
    from adaptive_csp.cli import main

    out = tmp_path / "namer"
    rc = main(["train-namer", "--out", str(out), "--scenes", "30", "--val-scenes", "8", "--epochs", "1",
               "--calib-images", "64", "--quiet"])
    assert rc == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["namer"]["size"] == 28 and meta["namer"]["data"]["scenes"] == 30
    assert meta["train"]["init"]["from"] == "pretrained:csp_wide_fmnist"
    from adaptive_csp.models.factory import load_model

    n = CropNamer(load_model(out / "model.safetensors"), [0.2, 1.0], "torch")
    p = n.probs(np.random.default_rng(0).random((64, 64)).astype(np.float32),
                np.array([[4, 4, 30, 40], [20, 10, 60, 30]], np.float32), 1)
    assert p.shape == (2, 10) and np.allclose(p.sum(1), 1, atol=1e-5)


def test_detector_weight_fuses_the_detectors_class_scores():
    """A product of experts: the namer undecided (a uniform crop: p = ½, ½), the detector's scores decide
    by their weight; weight 0 leaves the namer's alone; a bad weight is named."""
    grey = np.zeros((40, 40), np.float32)
    grey[5:25, 5:25] = 0.7
    box = np.array([[5, 5, 25, 25]], np.float32)
    det = np.array([[0.6, 0.2]], np.float32)  # normalised: 0.75, 0.25
    alone = CropNamer(StandInNamer(), [1.0], "torch")
    np.testing.assert_allclose(alone.names(grey, box, 0, det), [[0.5, 0.5]], atol=1e-6)
    fused = CropNamer(StandInNamer(), [1.0], "torch", detector_weight=2.0)
    np.testing.assert_allclose(fused.names(grey, box, 0, det), [[0.9, 0.1]], atol=1e-6)  # .75² : .25²
    b, s, lb = fused.relabel(grey, box, np.array([0.8], np.float32), det, 0, 0.1, 0.5, 10)
    assert lb.tolist() == [0] and s[0] == pytest.approx(0.8 * 0.9, abs=1e-6)
    with pytest.raises(ValueError, match="detector_weight"):
        CropNamer(StandInNamer(), [1.0], "torch", detector_weight=-1)


class _LeftRight(nn.Module):
    """A stand-in namer level that is not mirror-symmetric: class 1 when a crop's right half is brighter."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.shape[3] // 2
        d = 20.0 * (x[:, 0, :, w:].mean((1, 2)) - x[:, 0, :, :w].mean((1, 2)))
        return torch.stack([torch.zeros_like(d), d], 1)


class LeftRightNamer(StandInNamer):
    def prepared(self, i: int) -> nn.Module:
        return _LeftRight().eval()


def test_flip_averages_each_crop_with_its_mirror_and_the_file_turns_it_on(monkeypatch):
    """A crop bright on its right: the namer alone says class 1; its mirror says class 0 as surely, so the
    mirror-averaged probabilities are an even ½, ½ (σ(d) + σ(−d) = 1).  ``meta["namer"]["flip"]`` reaches the
    runner's namer; a non-bool is named."""
    import adaptive_csp.models.factory as factory

    grey = np.zeros((40, 40), np.float32)
    grey[5:25, 15:25] = 0.9
    box = np.array([[5, 5, 25, 25], [5, 5, 25, 25]], np.float32)
    plain = CropNamer(LeftRightNamer(), [1.0], "torch")
    assert plain.probs(grey, box, 0)[:, 1].min() > 0.99 and plain.batch(grey, box).shape[0] == 2
    mirrored = CropNamer(LeftRightNamer(), [1.0], "torch", flip=True)
    assert mirrored.batch(grey, box).shape[0] == 4
    np.testing.assert_allclose(mirrored.probs(grey, box, 0), [[0.5, 0.5]] * 2, atol=1e-6)
    with pytest.raises(ValueError, match="flip"):
        CropNamer(LeftRightNamer(), [1.0], "torch", flip="yes")
    monkeypatch.setattr(factory, "pretrained", lambda name: LeftRightNamer())
    det = StandIn()
    det.meta = {**det.meta, "namer": {"model": "csp_namer_test", "detector_weight": 0.5, "flip": True}}
    with AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine="torch") as r:
        assert r.namer.flip is True and r.namer.detector_weight == 0.5


def test_profile_detector_attaches_a_namer_and_chooses_thresholds_with_it(tmp_path, capsys):
    from adaptive_csp.cli import main
    from adaptive_csp.data.fashion_mnist import CLASS_NAMES
    from adaptive_csp.detect.checkpoint import load_detector, save_detector
    from adaptive_csp.detect.model import Detector, get_detector_cfg

    namer = tmp_path / "namer"
    assert main(["train-namer", "--out", str(namer), "--scenes", "20", "--val-scenes", "6", "--epochs", "1",
                 "--calib-images", "32", "--quiet"]) == 0
    torch.manual_seed(0)
    det = Detector(get_detector_cfg("csp_det_tiny", num_classes=10))
    det.levels = LevelLadder([det.levels[0], det.levels[-1]])  # two rungs: thresholds for each, quickly
    det.meta.update(class_names=list(CLASS_NAMES), preprocess={
        "input_size": [64, 64], "in_chans": 3, "color": "rgb", "mean": [0.3] * 3, "std": [0.3] * 3})
    save_detector(det, tmp_path / "det")
    out = tmp_path / "named"
    common = ["--val-scenes", "6", "--calib-images", "8", "--engine", "torch", "--keep-ladder"]
    assert main(["profile-detector", str(tmp_path / "det"), "--out", str(out), *common, "--namer",
                 str(namer / "model.safetensors"), "--detector-weight", "0.5"]) == 0
    meta = load_detector(out).meta
    naming = meta["namer"].pop("latency_ms")  # the namer's time per rung, measured where it was profiled
    assert meta["namer"] == {"model": str(namer / "model.safetensors"), "detector_weight": 0.5, "flip": False}
    assert naming["boxes"] == 3 and len(naming["ms"]) == len(det.levels) and all(m > 0 for m in naming["ms"])
    assert "boxes named by" in meta["postprocess"]["per_level_selection"]["how"]
    assert [lv.key for lv in load_detector(out).levels] == [lv.key for lv in det.levels]  # the ladder kept
    assert not det.bn_stats and set(load_detector(out).bn_stats) == {lv.key for lv in det.levels}  # BN re-estimated
    with AdaptiveRunner(load_detector(out), sensors=None, engine="torch") as r:
        assert r.namer is not None and r.namer.detector_weight == 0.5
    capsys.readouterr()
    assert main(["profile-detector", str(out), "--out", str(tmp_path / "again"), *common]) == 2  # names one
    assert "--namer" in capsys.readouterr().err
    assert main(["profile-detector", str(out), "--out", str(tmp_path / "again"), *common, "--rescore"]) == 2
    assert "--rescore needs --namer" in capsys.readouterr().err
    # --rescore: each rung's accuracy is its mAP@.5 with the boxes named, as the runner names them
    from adaptive_csp.models.factory import pretrained
    from adaptive_csp.train.detect import DetTrainCfg, detect_data
    from adaptive_csp.train.detect_rescore import named_map

    assert main(["profile-detector", str(out), "--out", str(tmp_path / "rescored"), *common, "--no-thresholds",
                 "--namer", str(namer / "model.safetensors"), "--detector-weight", "0.5", "--rescore"]) == 0
    got = load_detector(tmp_path / "rescored")
    _, val = detect_data(DetTrainCfg(model="csp_det_tiny", seed=0, train_scenes=8, val_scenes=6, scenes="belt"))
    nm = CropNamer(pretrained(str(namer / "model.safetensors")), load_detector(out).levels.costs, "torch",
                   detector_weight=0.5)  # fmt: skip
    want = [named_map(load_detector(out), nm, val, i)["map50"] for i in range(len(det.levels))]
    kept = [i for i, x in enumerate(det.levels) if x.key in {lv.key for lv in got.levels}]
    assert [r.accuracy for r in got.levels.rungs] == pytest.approx([want[i] for i in kept])
    assert len(det.levels) - 1 in kept
    assert all(str(namer / "model.safetensors") in r.extra["metric"] and r.extra["val_images"] == 6
               for r in got.levels.rungs)  # fmt: skip


def test_rescore_sets_the_named_accuracies_and_drops_rungs_a_cheaper_one_beats(monkeypatch):
    from adaptive_csp.detect.model import Detector, get_detector_cfg
    from adaptive_csp.levels import Rung
    from adaptive_csp.train import detect_rescore

    det = Detector(get_detector_cfg("csp_det_tiny", num_classes=10))
    lv = list(det.levels)[:4] if len(det.levels) >= 4 else None
    assert lv is not None and len({x.key for x in lv}) == 4
    det.levels = LevelLadder([Rung(level=x, latency_ms=1.0 + i, accuracy=0.1 * (i + 1), extra={"map": 0.05})
                              for i, x in enumerate(lv)])  # fmt: skip
    det.bn_stats = {x.key: {} for x in lv}
    det.meta["postprocess"] = {"per_level": {x.key: {"score_thresh": 0.3, "iou_thresh": 0.5} for x in lv}}
    named = [0.5, 0.45, 0.8, 0.7]  # rung 1 costs more than rung 0 for less; the full level scores below rung 2
    monkeypatch.setattr(detect_rescore, "named_map", lambda m, n, d, i: {"map50": named[i], "map": named[i] / 2})

    class Val:
        boxes = [np.zeros((1, 4))]

        def __len__(self):
            return 1

    recs = detect_rescore.rescore_ladder(det, Val(), object(), "boxes named by x")
    assert [r["kept"] for r in recs] == [True, False, True, True]  # the full level is always kept
    keep = [lv[0].key, lv[2].key, lv[3].key]
    assert [lv.key for lv in det.levels] == keep
    assert [r.accuracy for r in det.levels.rungs] == [0.5, 0.8, 0.7]
    assert [r.extra["detector_accuracy"] for r in det.levels.rungs] == pytest.approx([0.1, 0.3, 0.4])
    assert [r.extra["map"] for r in det.levels.rungs] == [0.25, 0.4, 0.35]
    assert all("boxes named by x" in r.extra["metric"] for r in det.levels.rungs)
    assert [r.latency_ms for r in det.levels.rungs] == [1.0, 3.0, 4.0]
    named[:] = [0.9, 0.95, 0.97]  # rescored again (a new namer): the detector's own numbers stay
    detect_rescore.rescore_ladder(det, Val(), object(), "boxes named by y")
    assert [r.accuracy for r in det.levels.rungs] == [0.9, 0.95, 0.97]
    assert [r.extra["detector_accuracy"] for r in det.levels.rungs] == pytest.approx([0.1, 0.3, 0.4])
    assert [r.extra["detector_map"] for r in det.levels.rungs] == [0.05, 0.05, 0.05]
    assert sorted(det.bn_stats) == sorted(keep) and sorted(det.meta["postprocess"]["per_level"]) == sorted(keep)
    Val.boxes = [np.zeros((0, 4))]
    with pytest.raises(ValueError, match="no items"):
        detect_rescore.rescore_ladder(det, Val(), object(), "x")


class _Sleep(nn.Module):
    """A namer level that takes ``ms`` per call (the crops' answer: always class 0)."""

    def __init__(self, ms: float):
        super().__init__()
        self.ms = ms

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import time

        time.sleep(self.ms / 1000.0)
        return torch.zeros(x.shape[0], 2)


class SlowNamer(StandInNamer):
    SLEEP = (1.0, 4.0, 9.0)

    def prepared(self, i: int) -> nn.Module:
        return _Sleep(self.SLEEP[self.levels.index(i)]).eval()


def test_naming_time_is_measured_per_rung_and_in_the_ladder_the_policy_decides_on(tmp_path, monkeypatch):
    n = CropNamer(SlowNamer(), [0.1, 0.3, 0.5, 1.0], "torch")
    ms = n.latency_ms((96, 96), boxes=3, rounds=3)
    assert len(ms) == 4 and ms[0] == ms[1]  # detector rungs naming with the same namer rung
    for got, j in zip(ms, [n.level_for(i) for i in range(4)], strict=True):
        assert got >= 0.9 * SlowNamer.SLEEP[j]  # crops cut and the matched rung run
    assert ms[3] > ms[2] > ms[0]
    with pytest.raises(ValueError, match="boxes"):
        n.latency_ms((96, 96), boxes=0)
    # calibrate(): the view is the engine's measured one plus the namer's time at each rung
    added = {}
    monkeypatch.setattr(CropNamer, "latency_ms",
                        lambda self, hw, boxes=3, rounds=7: added.setdefault("ms", [2.0 + i for i in range(len(self.levels))]))
    with AdaptiveRunner(StandIn(), policy=Fixed(0), sensors=None, engine="torch", namer=None) as plain:
        base = plain.calibrate(cache=tmp_path)
    with AdaptiveRunner(StandIn(), policy=Fixed(0), sensors=None, engine="torch", namer=SlowNamer()) as named:
        view = named.calibrate(cache=tmp_path)  # the cache answers: the same engine times
        assert named.view is view
    assert view.parent_indices == base.parent_indices
    want = [r.latency_ms + added["ms"][p] for r, p in zip(base.rungs, base.parent_indices, strict=True)]
    assert [r.latency_ms for r in view.rungs] == pytest.approx(want)


def test_added_ms_keeps_a_views_indices_and_names_bad_input():
    lad = LevelLadder.from_costs([0.3, 0.6, 1.0])
    out = lad.with_added_ms([1.0, 0.5, 0.0])
    assert [r.latency_ms for r in out.rungs] == pytest.approx([r.latency_ms + a for r, a in
                                                               zip(lad.rungs, [1.0, 0.5, 0.0], strict=True)])
    assert out.parent_indices == lad.parent_indices and out.view_key == lad.view_key
    with pytest.raises(ValueError, match="one added latency per rung"):
        lad.with_added_ms([1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        lad.with_added_ms([1.0, -1.0, 0.0])


def test_the_demo_charges_the_naming_time_to_its_simulated_device():
    from adaptive_csp.apps.story import world_ladder
    from adaptive_csp.engines import create_engine

    det = StandIn()
    eng = create_engine(det, "torch")
    plain = world_ladder(eng, det)
    named = world_ladder(eng, det, [3.0, 1.5])
    assert [r.latency_ms for r in named.rungs] == pytest.approx([r.latency_ms + a for r, a in
                                                                 zip(plain.rungs, [3.0, 1.5], strict=True)])


def test_the_policy_starts_from_the_files_naming_time_until_calibrate(tmp_path, monkeypatch):
    import adaptive_csp.models.factory as factory

    monkeypatch.setattr(factory, "pretrained", lambda name: StandInNamer())
    det = StandIn()
    with AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine="torch") as r:
        base = r.view  # the file names no namer: the detector's time alone
    n = len(det.levels)
    det.meta = {**det.meta, "namer": {"model": "csp_namer_test", "latency_ms": {"ms": [3.0 + i for i in range(n)]}}}
    with AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine="torch") as r:
        assert [x.latency_ms for x in r.view.rungs] == pytest.approx(
            [x.latency_ms + 3.0 + p for x, p in zip(base.rungs, base.parent_indices, strict=True)])
        assert r.view.parent_indices == base.parent_indices
        monkeypatch.setattr(CropNamer, "latency_ms", lambda self, hw, boxes=3, rounds=7: [0.5] * len(self.levels))
        measured = r.calibrate(cache=tmp_path)  # this device's times replace the file's, not added to them
    with AdaptiveRunner(StandIn(), policy=Fixed(0), sensors=None, engine="torch", namer=None) as p:
        engine_only = p.calibrate(cache=tmp_path)
    assert [x.latency_ms for x in measured.rungs] == pytest.approx([x.latency_ms + 0.5 for x in engine_only.rungs])
    with AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine="torch", namer=StandInNamer()) as r:
        assert [x.latency_ms for x in r.view.rungs] == [x.latency_ms for x in base.rungs]  # not the file's namer
    det.meta = {**det.meta, "namer": {"model": "csp_namer_test", "latency_ms": {"ms": [3.0] * (n + 1)}}}
    with AdaptiveRunner(det, policy=Fixed(0), sensors=None, engine="torch") as r:  # wrong length: logged, not fatal
        assert [x.latency_ms for x in r.view.rungs] == [x.latency_ms for x in base.rungs]
