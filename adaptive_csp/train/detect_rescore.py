"""A detector ladder's accuracies as the runner names its boxes (issue #21).

``profile_detector`` measures each rung with the detector naming its own boxes.  With a second stage
(:class:`~adaptive_csp.runtime.namer.CropNamer`, ``meta["namer"]``) the runner reports other names and
other scores, so the policy would choose from accuracies that are not the ones that run: the namer lifts
the cheap rungs more than the full level (shipped detector, 400 validation scenes: mAP@.5 +11.4 points at the cheapest, +7.1 at full).
:func:`rescore_ladder` measures every rung again with the namer on the validation scenes, as
``benchmarks/detect.py`` scores them (multi-label at score 0.05, NMS IoU 0.5, pycocotools), sets
``accuracy`` (mAP@.5) and ``extra["map"]`` to the named numbers (the detector's own are kept as
``extra["detector_accuracy"]`` / ``extra["detector_map"]``), and drops the rungs a cheaper rung now beats
(never the full level), with their BN statistics and score thresholds: a rung that costs more for less
is never worth choosing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from adaptive_csp.data.detset import DetSet
from adaptive_csp.detect.boxes import postprocess
from adaptive_csp.detect.model import Detector
from adaptive_csp.levels import LevelLadder
from adaptive_csp.train.profile import pareto

__all__ = ["named_predictions", "named_map", "rescore_ladder"]

SCORE_FLOOR = 0.05  # as benchmarks/detect.py: the COCO convention of scoring every detection above this
NMS_IOU = 0.5


@torch.no_grad()
def named_predictions(model: Detector, namer: Any, data: DetSet, index: int,
                      batch_size: int = 64) -> list[tuple]:  # fmt: skip
    """Per scene ``(boxes, scores, labels)`` (input pixels) of the model's ladder rung ``index``, its kept
    boxes named by ``namer`` (multi-label at :data:`SCORE_FLOOR`, the runner's second stage)."""
    from adaptive_csp.train.detect import detect_batches

    p = next(model.parameters())
    level = model.levels[index]
    preds: list[tuple] = []
    k = 0
    for x, _ in detect_batches(data, model, batch_size):
        out = model(x.to(p.device, p.dtype), level).float().cpu()
        for j, (b, s, _, i) in enumerate(postprocess(out, SCORE_FLOOR, NMS_IOU, 100, multi_label=False,
                                                     with_index=True)):  # fmt: skip
            grey = data.images[k].float().mean(0).numpy() / 255.0
            preds.append(namer.relabel(grey, b.numpy(), s.numpy(), out[j][i, 4:].numpy(), index, SCORE_FLOOR,
                                       NMS_IOU, 100, True))  # fmt: skip
            k += 1
    return preds


def named_map(model: Detector, namer: Any, data: DetSet, index: int) -> dict[str, float]:
    """COCO ``{"map50", "map", ...}`` of rung ``index`` with its boxes named by ``namer``."""
    from adaptive_csp.detect.metrics import coco_map

    was = model.training
    model.eval()
    try:
        return coco_map(data, named_predictions(model, namer, data, index))
    finally:
        model.train(was)


def rescore_ladder(model: Detector, val: DetSet, namer: Any, how: str, progress: bool = False) -> list[dict]:
    """Set the model's ladder accuracies to the named ones on ``val`` and drop the rungs a cheaper rung
    beats (module docstring); ``how`` names the namer in each rung's ``extra["metric"]``.  Returns one
    record per old rung: ``{"key", "detector", "named", "named_map", "kept"}``."""
    if not sum(len(b) for b in val.boxes):
        raise ValueError("the validation scenes hold no items: nothing to score the ladder on")
    rungs, records = list(model.levels.rungs), []
    for i, r in enumerate(rungs):
        m = named_map(model, namer, val, i)
        records.append({"key": r.level.key, "detector": r.accuracy, "named": m["map50"], "named_map": m["map"]})
        if progress:
            was = "unmeasured" if r.accuracy is None else f"{r.accuracy:.4f}"
            print(f"[{i + 1}/{len(rungs)}] {r.level.key}: mAP@.5 {was} -> {m['map50']:.4f} named", flush=True)
    costs, full = model.levels.costs, len(records) - 1
    keep = pareto([(costs[i], records[i]["named"]) for i in range(full)]) + [full]  # the full level always
    for i, rec in enumerate(records):
        rec["kept"] = i in keep
    new = []
    for i in keep:
        r, rec = rungs[i], records[i]
        own = "detector_accuracy" in r.extra  # rescored before: keep the detector's own numbers, not the last namer's
        extra = {**r.extra, "detector_accuracy": r.extra["detector_accuracy"] if own else r.accuracy,
                 "detector_map": r.extra.get("detector_map") if own else r.extra.get("map"),
                 "map": rec["named_map"], "metric": f"COCO mAP@.5 (accuracy), mAP@[.5:.95] (map), {how}",
                 "val_images": len(val)}  # fmt: skip
        new.append(replace(r, accuracy=rec["named"], extra=extra))
    keys = {r.level.key for r in new}
    model.levels = LevelLadder(new)
    model.bn_stats = {k: v for k, v in model.bn_stats.items() if k in keys}
    post = model.meta.get("postprocess") or {}
    if isinstance(post.get("per_level"), dict):
        post["per_level"] = {k: v for k, v in post["per_level"].items() if k in keys}
    return records
