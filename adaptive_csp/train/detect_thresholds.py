"""Per-rung post-processing chosen on validation: each ladder rung's score threshold and NMS IoU.

A cheaper rung's scores are lower and less sharp than the full level's, so one threshold for every rung
gives the cheap rungs false positives (issue #21: precision 37.6 % for the balanced policy at the runner's
single 0.25).  :func:`select_thresholds` runs every rung on the validation scenes through its prepared
(eval) path with the runner's decoding (best class per box, class-aware NMS), matches the detections to
the ground truth (:func:`~adaptive_csp.detect.metrics.greedy_match`: right class, IoU ≥ 0.5) and, per NMS
IoU in ``iou_grid``, sweeps the score threshold over every detection's score:

* ``target_precision=None``: the threshold of best F1;
* ``target_precision=p``: the lowest threshold whose precision is ≥ p (the most recall at that
  precision); a rung that never reaches p gets its best-F1 threshold, flagged ``"target_met": false``.

Greedy matching by score makes each detection's true/false flag independent of lower-scored ones, so one
pass per IoU gives precision and recall at every threshold exactly.  The result is stored as
``meta["postprocess"]["per_level"]`` (level key → thresholds and the validation numbers), which
:class:`~adaptive_csp.runtime.detections.DetectionDecoder` applies rung by rung.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from adaptive_csp.data.detset import DetSet
from adaptive_csp.detect.boxes import postprocess
from adaptive_csp.detect.metrics import greedy_match
from adaptive_csp.detect.model import Detector
from adaptive_csp.levels import Level

__all__ = ["select_thresholds", "apply_thresholds", "pr_sweep"]

FLOOR = 0.05  # detections below this score are never kept


def pr_sweep(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, precision, recall)``, thresholds descending, one below each distinct score: keeping
    the detections scored strictly above ``thresholds[i]`` (as the decoder does) gives ``precision[i]``
    and ``recall[i]``."""
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], tp[order].astype(np.float64)
    ctp, cfp = np.cumsum(t), np.cumsum(1 - t)
    last = np.r_[s[1:] != s[:-1], True]  # cut after the last of equal scores
    ctp, cfp, s = ctp[last], cfp[last], s[last]
    # the decoder keeps scores strictly above its threshold: halfway down to the next distinct score
    thr = (s + np.r_[s[1:], s[-1] * 0.998]) / 2
    return thr, ctp / np.maximum(ctp + cfp, 1), ctp / max(n_gt, 1)


def _choose(scores: np.ndarray, tp: np.ndarray, n_gt: int, target: float | None) -> dict[str, Any]:
    if len(scores) == 0:
        return {"score_thresh": 1.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    thr, p, r = pr_sweep(scores, tp, n_gt)
    f1 = 2 * p * r / np.maximum(p + r, 1e-12)
    i = int(np.argmax(f1))
    row: dict[str, Any] = {}
    if target is not None:
        ok = np.nonzero(p >= target)[0]
        row["target_met"] = bool(len(ok))
        if len(ok):
            i = int(ok[-1])  # the lowest threshold still at the target: the most recall
    return {"score_thresh": float(thr[i]), "precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]),
            **row}


@torch.no_grad()
def _outputs(model: Detector, data: DetSet, level: Level, batch_size: int = 64) -> list[torch.Tensor]:
    from adaptive_csp.train.detect import detect_batches

    p = next(model.parameters())
    return [model(x.to(p.device, p.dtype), level).float().cpu() for x, _ in detect_batches(data, model, batch_size)]


def _level_stats(outs: list[torch.Tensor], data: DetSet, iou_thresh: float, namer: Any = None,
                 index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    scores, flags = [], []
    k = 0
    for out in outs:
        kept = postprocess(out, FLOOR, iou_thresh, 100, multi_label=False, with_index=True)
        for j, (b, s, lb, i) in enumerate(kept):
            cls = out[j][i, 4:].numpy() if namer is not None else None
            b, s, lb = b.numpy(), s.numpy(), lb.numpy()
            if namer is not None:  # the runner's second stage names the kept boxes (runtime.namer)
                grey = data.images[k].float().mean(0).numpy() / 255.0
                b, s, lb = namer.relabel(grey, b, s, cls, index, FLOOR, iou_thresh, 100, False)
            scores.append(s)
            flags.append(greedy_match(b, s, lb, data.boxes[k].numpy(), data.labels[k].numpy()))
            k += 1
    return np.concatenate(scores) if scores else np.zeros(0), np.concatenate(flags) if flags else np.zeros(0, bool)


def select_thresholds(model: Detector, val: DetSet, levels: Sequence[Level] | None = None,
                      iou_grid: Sequence[float] = (0.5, 0.6, 0.7), target_precision: float | None = None,
                      progress: bool = False, namer: Any = None) -> dict[str, dict[str, Any]]:
    """``{level key: {"score_thresh", "iou_thresh", "precision", "recall", "f1"[, "target_met"]}}`` for
    every rung (default: the model's ladder), chosen on ``val`` (see the module docstring).  ``namer``: a
    :class:`~adaptive_csp.runtime.namer.CropNamer` the runner will name the boxes with (its rungs matched
    to the model's ladder): thresholds are chosen on the scores it gives."""
    if target_precision is not None and not 0 < target_precision <= 1:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision!r}")
    if not iou_grid or any(not 0 < u <= 1 for u in iou_grid):
        raise ValueError(f"iou_grid must hold NMS IoUs in (0, 1], got {list(iou_grid)}")
    n_gt = sum(len(b) for b in val.boxes)
    if n_gt == 0:
        raise ValueError("the validation scenes hold no items: nothing to choose thresholds on")
    was = model.training
    model.eval()
    table: dict[str, dict[str, Any]] = {}
    try:
        keys = [lv.key for lv in model.levels]
        for lv in (list(model.levels) if levels is None else list(levels)):
            outs = _outputs(model, val, lv)
            index = keys.index(lv.key) if lv.key in keys else len(keys) - 1
            best = None
            for u in iou_grid:
                row = {**_choose(*_level_stats(outs, val, u, namer, index), n_gt, target_precision),
                       "iou_thresh": float(u)}
                key = (row.get("target_met", True), row["recall"] if target_precision is not None else row["f1"])
                if best is None or key > best[0]:
                    best = (key, row)
            table[lv.key] = {k: round(v, 4) if isinstance(v, float) else v for k, v in best[1].items()}
            if progress:
                print(f"{lv.key}: {table[lv.key]}", flush=True)
    finally:
        model.train(was)
    return table


def apply_thresholds(model: Detector, table: dict[str, dict[str, Any]], how: str, val_scenes: int) -> None:
    """Store ``table`` in ``model.meta["postprocess"]`` (what the runner reads), with how it was chosen."""
    post = dict(model.meta.get("postprocess") or {})
    post["per_level"] = {k: {"score_thresh": v["score_thresh"], "iou_thresh": v["iou_thresh"]} for k, v in table.items()}
    post["per_level_selection"] = {"how": how, "val_scenes": int(val_scenes), "match": "right class, IoU ≥ 0.5",
                                   "val": table}
    model.meta["postprocess"] = post
