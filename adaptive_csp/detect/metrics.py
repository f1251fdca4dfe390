"""COCO detection metrics by pycocotools (not hand-written): mAP@[.5:.95], mAP@.5, mAP@.75, AR@100.

Ground truth is a :class:`~adaptive_csp.data.detset.DetSet`; predictions are per image ``(boxes k×4
xyxy in pixels, scores k, labels k)``.  Both are handed to pycocotools in memory (no files written).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

__all__ = ["coco_map"]


def _coco():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("COCO mAP needs pycocotools: pip install 'adaptive-csp[detect]'") from e
    return COCO, COCOeval


def _as_np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def coco_map(gt: Any, preds: list[tuple[Any, Any, Any]]) -> dict[str, float]:
    """COCO box metrics of ``preds`` against ``gt`` (one prediction tuple per image of ``gt``)."""
    if len(preds) != len(gt):
        raise ValueError(f"{len(preds)} predictions for {len(gt)} images")
    COCO, COCOeval = _coco()
    h, w = gt.images.shape[-2:]
    images = [{"id": i + 1, "width": int(w), "height": int(h)} for i in range(len(gt))]
    anns = []
    for i, (b, lab) in enumerate(zip(gt.boxes, gt.labels)):
        for box, c in zip(_as_np(b).tolist(), _as_np(lab).tolist()):
            bw, bh = box[2] - box[0], box[3] - box[1]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                         "bbox": [box[0], box[1], bw, bh], "area": bw * bh, "iscrowd": 0})
    cats = [{"id": c + 1, "name": n} for c, n in enumerate(gt.class_names)]
    dets = []
    for i, (b, s, lab) in enumerate(preds):
        for box, sc, c in zip(_as_np(b).tolist(), _as_np(s).tolist(), _as_np(lab).tolist()):
            dets.append({"image_id": i + 1, "category_id": int(c) + 1, "score": float(sc),
                         "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    keys = ("map", "map50", "map75", "mar100")
    if not dets or not anns:
        return dict.fromkeys(keys, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = {"images": images, "annotations": anns, "categories": cats}
        cg.createIndex()
        cd = cg.loadRes(dets)
        ev = COCOeval(cg, cd, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats
    return {"map": float(s[0]), "map50": float(s[1]), "map75": float(s[2]), "mar100": float(s[8])}
