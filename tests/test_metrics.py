"""COCO mAP by pycocotools: perfect, shifted and missing predictions, and hand-computed small cases."""

import pytest
import torch

from adaptive_csp.data.detset import DetSet

pytest.importorskip("pycocotools")

from adaptive_csp.detect.metrics import coco_map  # noqa: E402


def _gt(boxes_per_image, labels_per_image, size=64, classes=("a", "b")):
    n = len(boxes_per_image)
    return DetSet(torch.zeros(n, 3, size, size, dtype=torch.uint8),
                  [torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes_per_image],
                  [torch.tensor(lab, dtype=torch.int64) for lab in labels_per_image], list(classes))


def _random_gt(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    boxes, labels = [], []
    for _ in range(n):
        k = int(torch.randint(1, 4, (1,), generator=g))
        xy = torch.rand(k, 2, generator=g) * 40
        wh = 8 + torch.rand(k, 2, generator=g) * 14
        boxes.append(torch.cat([xy, xy + wh], 1).tolist())
        labels.append(torch.randint(0, 2, (k,), generator=g).tolist())
    return _gt(boxes, labels)


def _as_preds(gt, shift=0.0, score=0.9):
    out = []
    for b, lab in zip(gt.boxes, gt.labels):
        w = b[:, 2:3] - b[:, 0:1]
        out.append((b + torch.cat([w, 0 * w, w, 0 * w], 1) * shift, torch.full((len(b),), score), lab.clone()))
    return out


def test_perfect_predictions_score_one():
    gt = _random_gt()
    m = coco_map(gt, _as_preds(gt))
    assert m["map"] == pytest.approx(1.0) and m["map50"] == pytest.approx(1.0) and m["mar100"] == pytest.approx(1.0)


def test_half_box_shift_scores_low_and_wrong_labels_score_zero():
    gt = _random_gt()
    m = coco_map(gt, _as_preds(gt, shift=0.5))  # IoU of a box with itself shifted by half its width = 1/3
    assert m["map50"] < 0.05 and m["map"] < 0.05
    wrong = [(b, s, 1 - lab) for b, s, lab in _as_preds(gt)]
    assert coco_map(gt, wrong)["map50"] == pytest.approx(0.0)


def test_no_predictions_score_zero():
    gt = _random_gt()
    empty = [(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64)) for _ in range(len(gt))]
    assert coco_map(gt, empty) == {"map": 0.0, "map50": 0.0, "map75": 0.0, "mar100": 0.0}
    some = empty[:-1] + [_as_preds(gt)[-1]]  # only the last image detected: partial credit, not a crash
    assert 0 < coco_map(gt, some)["map50"] < 1


def test_known_small_cases():
    # IoU 0.62: a true positive at thresholds .50, .55, .60 only -> mAP@[.5:.95] = 3/10
    gt = _gt([[[0, 0, 10, 10]]], [[0]])
    m = coco_map(gt, [(torch.tensor([[0.0, 0.0, 10.0, 6.2]]), torch.tensor([0.9]), torch.tensor([0]))])
    assert m["map50"] == pytest.approx(1.0) and m["map75"] == pytest.approx(0.0)
    assert m["map"] == pytest.approx(0.3)
    # two images, one object each; a false positive ranked first: precision 0, 1/2, 2/3 at recall 0, 1/2, 1;
    # interpolated precision is 2/3 at every recall point -> AP = 2/3 at every IoU threshold
    gt = _gt([[[0, 0, 20, 20]], [[30, 30, 50, 50]]], [[0], [0]])
    preds = [(torch.tensor([[40.0, 40.0, 60.0, 60.0], [0.0, 0.0, 20.0, 20.0]]), torch.tensor([0.9, 0.8]),
              torch.tensor([0, 0])),
             (torch.tensor([[30.0, 30.0, 50.0, 50.0]]), torch.tensor([0.7]), torch.tensor([0]))]
    m = coco_map(gt, preds)
    assert m["map"] == pytest.approx(2 / 3, abs=1e-6) and m["map50"] == pytest.approx(2 / 3, abs=1e-6)
    # averaged over categories: class b has no ground truth and is left out, class a as above
    assert m["mar100"] == pytest.approx(1.0)


def test_bad_predictions():
    gt = _random_gt(n=2)
    with pytest.raises(ValueError, match="1 predictions for 2 images"):
        coco_map(gt, _as_preds(gt)[:1])
    p = _as_preds(gt)
    p[0] = (p[0][0], p[0][1][:0], p[0][2])
    with pytest.raises(ValueError, match="prediction 0: .* boxes, 0 scores"):
        coco_map(gt, p)
    p = _as_preds(gt)
    p[1] = (p[1][0], p[1][1], p[1][2] + 5)
    with pytest.raises(ValueError, match="prediction 1: labels must be in 0..1"):
        coco_map(gt, p)
