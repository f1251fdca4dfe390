"""COCO detection metrics from pycocotools (the reference implementation, not a re-write).

:func:`coco_map` builds the ground truth and the detections as in-memory COCO objects and runs
``COCOeval`` (bbox): mAP@[.5:.95], mAP@.5, mAP@.75 and mean recall at 100 detections per image.
Boxes are ``x1, y1, x2, y2`` with an exclusive far edge, so COCO's ``w = x2 - x1``.  pycocotools is the
``detect`` extra, imported when the function runs.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
import torch

from adaptive_csp.data.detset import DetSet

__all__ = ["coco_map", "Prediction", "greedy_match"]

Prediction = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # boxes k×4 xyxy, scores k, labels k


def _pycocotools():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("COCO mAP needs pycocotools: pip install 'adaptive-csp[detect]'") from e
    return COCO, COCOeval


def _xywh(boxes: torch.Tensor) -> np.ndarray:
    b = boxes.detach().to("cpu", torch.float64).reshape(-1, 4).numpy()
    return np.stack([b[:, 0], b[:, 1], np.maximum(b[:, 2] - b[:, 0], 0), np.maximum(b[:, 3] - b[:, 1], 0)], 1)


def _gt_dataset(gt: DetSet) -> dict:
    h, w = (int(v) for v in gt.images.shape[-2:])
    images = [{"id": i, "width": w, "height": h} for i in range(len(gt))]
    anns = []
    for i, (boxes, labels) in enumerate(zip(gt.boxes, gt.labels)):
        for b, lab in zip(_xywh(boxes).tolist(), labels.tolist()):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(lab), "bbox": b,
                         "area": b[2] * b[3], "iscrowd": 0})
    cats = [{"id": k, "name": n} for k, n in enumerate(gt.class_names)]
    return {"images": images, "annotations": anns, "categories": cats}


def _detections(preds: Sequence[Prediction], gt: DetSet) -> np.ndarray:
    """One row ``[image_id, x, y, w, h, score, category]`` per detection (pycocotools' numpy form)."""
    num_classes = len(gt.class_names)
    if len(preds) != len(gt):
        raise ValueError(f"{len(preds)} predictions for {len(gt)} images")
    rows = []
    for i, p in enumerate(preds):
        if len(p) != 3:
            raise ValueError(f"prediction {i} must be (boxes, scores, labels)")
        boxes, scores, labels = (t.detach().cpu() if isinstance(t, torch.Tensor) else torch.from_numpy(np.array(t))
                                 for t in p)  # np.array copies: the runner's arrays are read-only
        k = boxes.reshape(-1, 4).shape[0] if boxes.numel() else 0
        if scores.reshape(-1).shape[0] != k or labels.reshape(-1).shape[0] != k:
            raise ValueError(f"prediction {i}: {k} boxes, {scores.numel()} scores, {labels.numel()} labels")
        if k == 0:
            continue
        lab = labels.reshape(-1).long()
        if int(lab.min()) < 0 or int(lab.max()) >= num_classes:
            raise ValueError(f"prediction {i}: labels must be in 0..{num_classes - 1}")
        sc = scores.reshape(-1).double().numpy()
        if not (np.isfinite(sc).all() and torch.isfinite(boxes).all()):
            raise ValueError(f"prediction {i}: NaN or Inf in boxes or scores")
        rows.append(np.column_stack([np.full(k, i), _xywh(boxes), sc, lab.numpy()]))
    return np.concatenate(rows) if rows else np.zeros((0, 7))


def coco_map(gt: DetSet, preds: Sequence[Prediction]) -> dict[str, float]:
    """COCO bbox metrics of ``preds`` (one ``(boxes, scores, labels)`` per image of ``gt``):
    ``map`` (mAP@[.5:.95]), ``map50``, ``map75`` and ``mar100``.  No detections at all score 0, and so
    does a ground truth without boxes (where COCOeval would report -1, "undefined")."""
    dets = _detections(preds, gt)
    if len(dets) == 0 or sum(len(b) for b in gt.boxes) == 0:
        return {"map": 0.0, "map50": 0.0, "map75": 0.0, "mar100": 0.0}
    COCO, COCOeval = _pycocotools()
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = _gt_dataset(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = [max(0.0, float(v)) for v in ev.stats]  # -1 (no ground truth in an area range) reads as 0
    return {"map": s[0], "map50": s[1], "map75": s[2], "mar100": s[8]}


def greedy_match(boxes, scores, labels, gt_boxes, gt_labels, iou: float = 0.5,
                 class_aware: bool = True) -> np.ndarray:
    """Per detection (in the given order), whether it is a true positive: detections taken best score
    first, each matched to the unmatched ground-truth box (of its class when ``class_aware``) it overlaps
    most, at IoU ≥ ``iou``.  Greedy by score, so a detection's flag does not depend on any lower-scored one:
    the flags of the detections above a score threshold are those of matching at that threshold."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    g = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    lab, glab = np.asarray(labels).reshape(-1), np.asarray(gt_labels).reshape(-1)
    tp = np.zeros(len(b), bool)
    if not len(b) or not len(g):
        return tp
    iw = np.clip(np.minimum(b[:, None, 2], g[None, :, 2]) - np.maximum(b[:, None, 0], g[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(b[:, None, 3], g[None, :, 3]) - np.maximum(b[:, None, 1], g[None, :, 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    ious = inter / np.maximum(area(b)[:, None] + area(g)[None, :] - inter, 1e-12)
    if class_aware:
        ious[lab[:, None] != glab[None, :]] = 0.0
    free = np.ones(len(g), bool)
    for i in np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind="stable"):
        row = np.where(free, ious[i], 0.0)
        j = int(np.argmax(row))
        if row[j] >= iou:
            free[j] = False
            tp[i] = True
    return tp
