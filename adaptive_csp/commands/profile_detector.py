"""``adaptive-csp profile-detector``: measure a trained detector's candidate levels (mAP, latency) and keep
the Pareto ladder (:func:`adaptive_csp.train.detect_profile.profile_detector`), then choose each rung's
score threshold and NMS IoU (:mod:`adaptive_csp.train.detect_thresholds`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a detector checkpoint (train-detector's OUT/model)")
    p.add_argument("--out", required=True, help="where to write the profiled detector (.safetensors + .json)")
    p.add_argument("--val-scenes", type=int, default=1000, help="synthetic validation scenes (validation items)")
    p.add_argument("--calib-images", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="the training seed (validation scenes use seed + 1)")
    p.add_argument("--coco-images", default=None, help="your own data (COCO format): training images folder")
    p.add_argument("--coco-json", default=None)
    p.add_argument("--val-images", default=None)
    p.add_argument("--val-json", default=None)
    p.add_argument("--engine", default="auto", choices=("auto", "onnxruntime", "torch"))
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for the latency measurement")
    p.add_argument("--max-rungs", type=int, default=10)
    p.add_argument("--records", default=None, help="write every candidate's numbers to this JSON file")
    p.add_argument("--scenes", default=None, choices=("belt", "varied"),
                   help="synthetic scenes (default: varied for a letterboxing detector, else belt)")
    p.add_argument("--target-precision", type=float, default=None,
                   help="per-rung score threshold: the lowest with validation precision ≥ this (default: best F1)")
    p.add_argument("--no-thresholds", action="store_true", help="keep the file's post-processing as it is")
    p.add_argument("--keep-ladder", action="store_true",
                   help="keep the file's ladder (no profiling; each rung's BN statistics re-estimated on these weights): "
                        "only choose the thresholds, e.g. for a new --namer")
    p.add_argument("--namer", default=None, metavar="NAME|PATH",
                   help="name the boxes with this second stage (a shipped name or a train-namer checkpoint): "
                        "stored in the file (the runner uses it by default) and used when choosing thresholds; "
                        "'none' removes the file's")
    p.add_argument("--rescore", action="store_true",
                   help="with --namer: measure every rung's accuracy again with the boxes named by it, on the "
                        "validation scenes, and drop the rungs a cheaper one then beats (train.detect_rescore)")
    p.add_argument("--detector-weight", type=float, default=0.0, metavar="W",
                   help="with --namer: the weight of the detector's own class scores beside the namer's "
                        "(0: the namer's alone; runtime.namer.CropNamer.names)")
    p.add_argument("--namer-flip", action="store_true",
                   help="with --namer: average each crop's names with its mirror image's (one batch of twice "
                        "the crops; runtime.namer.CropNamer.probs)")


def run(a: argparse.Namespace) -> int:
    from adaptive_csp.detect.checkpoint import load_detector, save_detector
    from adaptive_csp.train.detect import DetTrainCfg, detect_batches, detect_data
    from adaptive_csp.train.detect_profile import profile_detector

    if a.rescore and (a.namer is None or a.namer.lower() == "none"):
        raise ValueError("--rescore needs --namer NAME|PATH: the ladder is scored with the boxes it names")
    model = load_detector(a.model)
    scenes = a.scenes or ("varied" if model.meta["preprocess"].get("resize") == "letterbox" else "belt")
    cfg = DetTrainCfg(model=model.cfg.name, seed=a.seed, train_scenes=max(a.calib_images, 1), val_scenes=a.val_scenes,
                      scenes=scenes, coco_images=a.coco_images, coco_json=a.coco_json, val_images=a.val_images,
                      val_json=a.val_json)
    train, val = detect_data(cfg)
    records: list = []
    if not a.keep_ladder:
        _, records = profile_detector(model, train, val, calib_images=a.calib_images, max_rungs=a.max_rungs,
                                           engine=a.engine, threads=a.threads)
    else:  # the file's rungs with BN statistics of these weights (a continued run's may be its start's)
        model.calibrate_bn(list(model.levels), [x for x, _ in detect_batches(train, model, 64, a.calib_images)])
    namer = None
    if a.namer is not None:
        if a.namer.lower() == "none":
            model.meta.pop("namer", None)
        else:
            from adaptive_csp.models.factory import pretrained
            from adaptive_csp.runtime.namer import CropNamer

            namer = CropNamer(pretrained(a.namer), model.levels.costs, "torch",  # fails here on a bad namer
                              detector_weight=a.detector_weight, flip=a.namer_flip)
            model.meta["namer"] = {"model": a.namer, "detector_weight": a.detector_weight, "flip": a.namer_flip}
    elif model.meta.get("namer") and not a.no_thresholds:
        raise ValueError(f"{a.model} names namer {model.meta['namer']!r}: pass --namer with it to choose "
                         "thresholds with it, or --namer none")
    if a.rescore:
        namer = _rescore(a, model, val, namer)
    if not a.no_thresholds:
        from adaptive_csp.train.detect_thresholds import apply_thresholds, select_thresholds

        table = select_thresholds(model, val, target_precision=a.target_precision, namer=namer)
        how = "best F1" if a.target_precision is None else f"lowest with precision ≥ {a.target_precision}"
        if namer is not None:
            how += f", boxes named by {_namer_how(a)}"
        apply_thresholds(model, table, how, len(val))
    _store_naming_ms(model, namer, a)
    path = save_detector(model, a.out)
    print(f"{'rung':>4} {'ms b1':>7} {'x full':>7} {'mAP@.5':>7} {'mAP':>7} {'MMACs':>7}  level")
    per = (model.meta.get("postprocess") or {}).get("per_level", {})
    ladder = model.levels  # as profiled, kept or rescored
    for i, r in enumerate(ladder.rungs):
        t = per.get(r.level.key)
        tt = f" score>{t['score_thresh']:.3f} nms {t['iou_thresh']:.2f}" if t else ""
        cells = [r.latency_ms, ladder.relative_cost(i), r.accuracy, r.extra.get("map"), r.macs and r.macs / 1e6]
        text = " ".join(f"{v:7.{p}f}" if v is not None else f"{'—':>7}" for v, p in zip(cells, (3, 3, 4, 4, 1)))
        print(f"{i:>4} {text}  {r.level.key}{tt}")  # a kept, unprofiled ladder has no measurements
    if a.records and records:
        Path(a.records).write_text(json.dumps(
            [{**r, "level": r["level"].to_dict()} for r in records], indent=1, default=float))
    print(f"saved {path}")
    return 0


def _rescore(a: argparse.Namespace, model, val, namer):
    """``--rescore``: the ladder's accuracies with the namer; the namer rebuilt for the kept rungs."""
    from adaptive_csp.runtime.namer import CropNamer
    from adaptive_csp.train.detect_rescore import rescore_ladder

    how = f"boxes named by {_namer_how(a)}"
    for r in rescore_ladder(model, val, namer, how, progress=True):
        if not r["kept"]:
            print(f"dropped {r['key']}: a cheaper rung scores higher, named")
    return CropNamer(namer.model, model.levels.costs, "torch", detector_weight=a.detector_weight, flip=a.namer_flip)


def _store_naming_ms(model, namer, a: argparse.Namespace) -> None:
    """Per rung, the namer's time to name 3 boxes on this machine, on the engine the ladder's latencies are
    profiled on (``--engine``: ONNX Runtime when installed; ``--threads``), in ``meta["namer"]["latency_ms"]``:
    the runner adds it to the ladder its policy sees until ``calibrate()`` measures both stages on the
    user's device."""
    if namer is None:
        return
    from adaptive_csp.engines.select import have_onnxruntime
    from adaptive_csp.runtime.namer import CropNamer

    eng = a.engine if a.engine != "auto" else ("onnxruntime" if have_onnxruntime() else "torch")
    opts = {"threads": a.threads} if eng == "onnxruntime" else None
    timed = CropNamer(namer.model, model.levels.costs, eng, engine_options=opts,
                      detector_weight=namer.detector_weight, flip=namer.flip)
    try:
        ms = timed.latency_ms(tuple(model.meta["preprocess"]["input_size"]), boxes=3)
    finally:
        timed.close()
    model.meta["namer"]["latency_ms"] = {"engine": eng, "threads": a.threads, "boxes": 3,
                                         "ms": [round(float(m), 4) for m in ms]}


def _namer_how(a: argparse.Namespace) -> str:
    return f"{a.namer} (detector weight {a.detector_weight:g}{', mirror-averaged' if a.namer_flip else ''})"
