"""Per-rung post-processing: chosen on validation, stored in the checkpoint, used by the runner per rung."""

import numpy as np
import pytest
import torch

from adaptive_csp.detect.checkpoint import load_detector, save_detector
from adaptive_csp.detect.metrics import greedy_match
from adaptive_csp.detect.model import Detector, get_detector_cfg
from adaptive_csp.runtime import AdaptiveRunner
from adaptive_csp.runtime.detections import DetectionDecoder
from adaptive_csp.train.detect_thresholds import apply_thresholds, pr_sweep, select_thresholds
from tests.conftest import Fixed
from tests.test_runner_detect import StandIn, paint


def test_pr_sweep_matches_counting_at_every_threshold():
    rng = np.random.default_rng(0)
    scores = np.round(rng.uniform(0.01, 1, 200), 2)  # ties on purpose (scores are > 0: the floor is 0.05)
    tp = rng.random(200) < 0.6
    n_gt = 150
    thr, p, r = pr_sweep(scores, tp, n_gt)
    assert np.all(np.diff(thr) < 0)
    for t, pi, ri in zip(thr, p, r):
        kept = scores > t  # what the decoder keeps
        assert pi == pytest.approx(tp[kept].sum() / kept.sum()) and ri == pytest.approx(tp[kept].sum() / n_gt)
    assert len(thr) == len(np.unique(scores))


def test_greedy_match_right_class_best_score_first():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30]], float)
    flags = greedy_match(boxes, [0.5, 0.9, 0.8], [0, 0, 1], gt, [0, 0])
    assert flags.tolist() == [False, True, False]  # the higher score takes the item; wrong class never matches
    assert greedy_match(boxes, [0.5, 0.9, 0.8], [0, 0, 1], gt, [0, 0], class_aware=False).tolist() == [False, True, True]


def _frame(red: int) -> np.ndarray:
    return paint(np.zeros((96, 96, 3), np.uint8), (10, 20, 30, 50), (0, 0, red))  # one item, score red/255


def test_the_runner_uses_each_rungs_threshold_and_score_thresh_overrides():
    model = StandIn()
    lo, hi = model.levels[0].key, model.levels[1].key
    model.meta = {**model.meta, "postprocess": {"per_level": {lo: {"score_thresh": 0.7, "iou_thresh": 0.5},
                                                              hi: {"score_thresh": 0.3, "iou_thresh": 0.5}}}}
    frame = _frame(150)  # score 0.59: under rung 0's threshold, over rung 1's
    for rung, want in ((0, 0), (1, 1)):
        with AdaptiveRunner(model, policy=Fixed(rung), sensors=None, engine="torch") as r:
            assert r.head.decoder.thresholds(rung) == ((0.7, 0.5) if rung == 0 else (0.3, 0.5))
            assert len(r.infer(frame)) == want, rung
    for rung in (0, 1):  # an explicit score_thresh is every rung's
        with AdaptiveRunner(model, policy=Fixed(rung), sensors=None, engine="torch", score_thresh=0.5) as r:
            assert len(r.infer(frame)) == 1
    with pytest.raises(ValueError, match="score_thresh"):
        DetectionDecoder.from_meta({"per_level": {lo: {"score_thresh": 2.0}}}, None, model.levels)


def _tiny_detector_and_val():
    """An untrained tiny detector, 6 validation scenes of 32 px and its cheapest and full rungs."""
    from adaptive_csp.detect.scenes import SceneCfg, fashion_mnist_scenes

    torch.manual_seed(0)
    val = fashion_mnist_scenes("val", 6, 1, SceneCfg(size=32, item_scale=(0.3, 0.5), max_items=2))
    model = Detector(get_detector_cfg("csp_det_tiny", num_classes=10))
    model.meta.update(class_names=val.class_names, preprocess={
        "input_size": [32, 32], "in_chans": 3, "color": "rgb", "mean": [0.2] * 3, "std": [0.3] * 3})
    levels = [model.levels[0], model.levels[-1]]
    return val, model, levels


def test_thresholds_are_chosen_stored_and_loaded(tmp_path):
    val, model, levels = _tiny_detector_and_val()
    table = select_thresholds(model, val, levels, iou_grid=(0.5, 0.7))
    assert set(table) == {lv.key for lv in levels}
    for row in table.values():
        assert 0 <= row["score_thresh"] <= 1 and row["iou_thresh"] in (0.5, 0.7) and 0 <= row["precision"] <= 1
    apply_thresholds(model, table, "best F1", len(val))
    path = save_detector(model, tmp_path / "det")
    back = load_detector(path)
    per = back.meta["postprocess"]["per_level"]
    assert per == {k: {"score_thresh": v["score_thresh"], "iou_thresh": v["iou_thresh"]} for k, v in table.items()}
    with AdaptiveRunner(back, sensors=None, engine="torch") as r:
        for i, lv in enumerate(r.ladder):
            want = per.get(lv.key)
            got = r.head.decoder.thresholds(i)
            assert got == ((want["score_thresh"], want["iou_thresh"]) if want else (r.head.decoder.score_thresh,
                                                                                      r.head.decoder.iou_thresh))


def test_select_thresholds_with_a_namer_chooses_on_its_scores():
    """A stand-in namer that halves every score (names unchanged): the same precision and recall are
    reached at half the threshold, and each rung calls it with its own ladder index."""

    class Halves:
        def __init__(self):
            self.levels = set()

        def relabel(self, grey, boxes, scores, cls, level, score_thresh, iou_thresh, max_det, multi_label):
            assert cls.shape == (len(boxes), 10)
            assert grey.ndim == 2 and 0 <= grey.min() and grey.max() <= 1
            self.levels.add(level)
            return boxes, scores * 0.5, self.lab.pop(0)

        lab: list = []

    val, model, levels = _tiny_detector_and_val()
    plain = select_thresholds(model, val, levels, iou_grid=(0.5,))
    namer = Halves()
    import adaptive_csp.train.detect_thresholds as dt

    real = dt.postprocess

    def spy(*a, **k):  # the labels the detector gave, handed back unchanged by the stand-in
        out = real(*a, **k)
        namer.lab.extend(t[2].numpy() for t in out)
        return out

    dt.postprocess = spy
    try:
        named = select_thresholds(model, val, levels, iou_grid=(0.5,), namer=namer)
    finally:
        dt.postprocess = real
    assert namer.levels == {0, len(model.levels) - 1}
    for k in plain:
        assert named[k]["precision"] == plain[k]["precision"] and named[k]["recall"] == plain[k]["recall"]
        assert named[k]["score_thresh"] == pytest.approx(plain[k]["score_thresh"] / 2, abs=1e-4)
