"""Measure a trained detector's candidate levels and keep the Pareto ladder (``adaptive-csp
profile-detector``, :mod:`adaptive_csp.commands.profile_detector`).

Per candidate (:func:`~adaptive_csp.detect.model.candidate_det_levels`): BN statistics re-estimated on
training images, COCO mAP@.5 on the validation scenes, and batch-1 latency on the engine a camera loop
runs (ONNX Runtime when installed, else eager torch; ``threads`` intra-op threads), all candidates timed
interleaved (:mod:`adaptive_csp.util.timing`).  The ladder is the Pareto front of (latency, mAP@.5):
ordered by latency, each rung more accurate than every cheaper one, the full level last.  Rungs record
``latency_ms`` (batch 1; policies' costs), ``accuracy`` = mAP@.5 and ``extra["map"]`` = mAP@[.5:.95].
Then each rung's score threshold and NMS IoU are chosen on the same validation scenes
(:mod:`adaptive_csp.train.detect_thresholds`: best F1, or ``--target-precision P``) and stored in the
checkpoint's ``postprocess.per_level``, which the runner uses by default.
"""

from __future__ import annotations

import io
from typing import Any

import torch

from adaptive_csp.data.detset import DetSet
from adaptive_csp.detect.model import Detector, candidate_det_levels
from adaptive_csp.levels import Level, LevelLadder, Rung
from adaptive_csp.train.profile import _device_name, pareto
from adaptive_csp.util.timing import interleaved_medians

__all__ = ["profile_detector", "latency_b1"]


def _runner_fn(net: torch.nn.Module, x: torch.Tensor, engine: str, threads: int):
    if engine == "onnxruntime":
        import onnxruntime as ort

        buf = io.BytesIO()
        torch.onnx.export(net, (x,), buf, input_names=["input"], output_names=["detections"], opset_version=17,
                          dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
        feed = {"input": x.numpy()}
        return lambda: sess.run(None, feed)

    def fn():
        with torch.inference_mode():
            net(x)
    return fn


def latency_b1(model: Detector, levels: list[Level], engine: str = "auto", threads: int = 1,
               rounds: int = 9, iters: int = 20) -> tuple[list[float], str]:
    """Median batch-1 milliseconds of each level (interleaved, warm) and the engine that ran them."""
    if engine == "auto":
        try:
            import onnxruntime  # noqa: F401
            engine = "onnxruntime"
        except ImportError:
            engine = "torch"
    h, w = model.cfg.input_size
    x = torch.randn(1, model.cfg.backbone.in_chans, h, w)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fns = [_runner_fn(model.export(lv).float().cpu(), x, engine, threads) for lv in levels]
        return interleaved_medians(fns, rounds, iters, warmup=5), engine
    finally:
        torch.set_num_threads(saved)


def _calib(train: DetSet, model: Detector, n: int) -> list[torch.Tensor]:
    from adaptive_csp.train.detect import detect_batches

    return [x for x, _ in detect_batches(train, model, 64, n)]


def profile_detector(model: Detector, train: DetSet, val: DetSet, *, calib_images: int = 256,
                     max_rungs: int = 10, engine: str = "auto", threads: int = 1,
                     progress: bool = True) -> tuple[LevelLadder, list[dict[str, Any]]]:
    """Measure every candidate level; set and return the Pareto ladder and the per-candidate records."""
    from adaptive_csp.train.detect import evaluate_detector
    from adaptive_csp.train.profile import thin

    model.eval()
    cands = candidate_det_levels(model.cfg)
    full = model.full_level()
    if full not in cands:
        cands.append(full)
    calib = _calib(train, model, calib_images)
    model.bn_stats = {}
    model.calibrate_bn(cands, calib)
    records: list[dict[str, Any]] = []
    for i, lv in enumerate(cands):
        m = evaluate_detector(model, val, lv)
        records.append({"level": lv, "map50": m["map50"], "map": m["map"]})
        if progress:
            print(f"[{i + 1}/{len(cands)}] {lv.key}: mAP@.5 {m['map50']:.4f} mAP {m['map']:.4f}", flush=True)
    lat, eng = latency_b1(model, cands, engine, threads)
    for r, ms in zip(records, lat):
        r["latency_ms"] = ms
    top = next(r for r in records if r["level"] == full)
    rest = [i for i, r in enumerate(records) if r["level"] != full and r["latency_ms"] < top["latency_ms"]
            and r["map50"] < top["map50"]]
    front = [rest[j] for j in pareto([(records[i]["latency_ms"], records[i]["map50"]) for i in rest])]
    costs = [r["latency_ms"] for r in records]
    chosen = thin(front + [records.index(top)], costs, max_rungs)
    device = _device_name(threads) + f", {eng}"
    rungs = [Rung(level=records[i]["level"], macs=model.macs(records[i]["level"]),
                  params=model.params(records[i]["level"]), latency_ms=round(records[i]["latency_ms"], 4),
                  accuracy=records[i]["map50"],  # unrounded: rounding could tie two rungs
                  extra={"map": records[i]["map"], "metric": "COCO mAP@.5 (accuracy), mAP@[.5:.95] (map)",
                         "val_images": len(val), "device": device})
             for i in chosen]
    keep = {r.level.key for r in rungs}
    model.bn_stats = {k: v for k, v in model.bn_stats.items() if k in keep}
    model.levels = ladder = LevelLadder(rungs)
    for r in records:
        r["on_ladder"] = r["level"].key in keep
    return ladder, records
