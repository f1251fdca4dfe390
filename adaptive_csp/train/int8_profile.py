"""int8 rungs on ONNX Runtime: which levels of a trained ladder run faster in int8 at the same accuracy here.

:func:`int8_profile` builds every level twice on ONNX Runtime — float32 and static QDQ int8
(:func:`adaptive_csp.quant.ort_int8.quantize_onnx`, calibrated on ``calib_images``) — scores both on the
same labelled validation images, and times both at batch 1 and 32 in one interleaved round-robin over
every (engine, level) pair, warm (:func:`adaptive_csp.util.timing.interleaved_times`, the method of
``adaptive-csp profile --latency-only``).  A level goes int8 when int8 is at least ``min_speedup`` faster
at batch 1, not slower at batch 32, and its accuracy is within ``acc_tol`` of float32's.  Precision is a
property of the level (one session serves every batch size), so both views must gain.

The returned ladder keeps every rung (the torch engine still runs them all in float32); a joined rung gets
``extra["precision"] = "int8"``, ``extra["int8_accuracy"]`` and the ``ort:b1`` / ``ort:b32`` latencies
of its int8 session, every other rung the float32 ones of the same run; ``accuracy`` stays float32's,
measured in the same run (:meth:`adaptive_csp.levels.Rung.accuracy_on` gives each engine its own).  Which rungs each engine's view keeps then follows from the
measured front (:meth:`adaptive_csp.levels.LevelLadder.view`).  ``adaptive-csp profile CKPT --int8``
writes that ladder into the checkpoint, with the calibration images (``model.int8_calib``), so the
ONNX Runtime engine rebuilds the same int8 sessions anywhere without other data.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_csp.levels import LevelLadder, Rung, latency_key
from adaptive_csp.quant.int8 import INT8
from adaptive_csp.runtime.calibrate import _STATS  # the latency statistics profile --latency-only uses
from adaptive_csp.util.timing import interleaved_times

__all__ = ["int8_profile", "int8_ladder", "calib_images", "INT8_ROUNDS"]

INT8_ROUNDS = {1: (31, 10), 32: (15, 2)}  # (rounds, calls per round) per batch size


def calib_images(images: Any, n: int, seed: int = 0) -> np.ndarray:
    """``n`` images drawn without replacement (seeded) from a uint8 ``N×C×H×W`` set, as the uint8
    ``n×H×W×C`` array a checkpoint stores (channels in the set's own order)."""
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim != 4:
        raise ValueError(f"calibration images must be uint8 N×C×H×W, got {a.dtype} {a.shape}")
    if not 1 <= n <= len(a):
        raise ValueError(f"calibration needs 1..{len(a)} images, got {n}")
    idx = np.sort(np.random.default_rng(seed).choice(len(a), n, replace=False))
    return np.ascontiguousarray(a[idx].transpose(0, 2, 3, 1))


def _times(engines: Sequence[Any], levels: Sequence[int], x: np.ndarray, batch: int, rounds: int | None,
           stat: str) -> list[list[float]]:
    r, iters = INT8_ROUNDS.get(batch, (15, 2))
    fns = [functools.partial(e.run, x, lv) for lv in levels for e in engines]
    per = interleaved_times(fns, rounds or r, iters, 3)
    ms = [float(_STATS[stat](t)) for t in per]
    return [ms[i * len(engines):(i + 1) * len(engines)] for i in range(len(levels))]


def int8_profile(model: Any, calib: np.ndarray, images: np.ndarray, labels: np.ndarray, *, threads: int = 1,
                 rounds: int | None = None, stat: str = "min", acc_tol: float = 0.002, min_speedup: float = 1.03,
                 levels: Iterable[int] | None = None, cache: str | Path | None = None,
                 ) -> tuple[LevelLadder, list[dict[str, Any]]]:
    """The ladder with its int8 rungs marked (see the module docstring) and one measured row per level.

    ``calib``: uint8 ``n×H×W×C`` images (:func:`calib_images`) in the model's colour order (RGB for a
    colour model); ``images`` / ``labels``: normalised float ``N×C×H×W`` validation images and their
    labels; ``levels``: ladder indices to try in int8 (default: all)."""
    import torch

    from adaptive_csp.engines.ort_engine import OrtEngine
    from adaptive_csp.runtime.preprocess import Preprocessor

    if stat not in _STATS:
        raise ValueError(f"stat must be one of {sorted(_STATS)}, got {stat!r}")
    ladder = model.levels
    todo = sorted({ladder.index(i) for i in (range(len(ladder)) if levels is None else levels)})
    pre = Preprocessor(model.meta["preprocess"], color="rgb")
    batches = [torch.from_numpy(pre.array(np.ascontiguousarray(calib, np.uint8))[0])]
    x = np.ascontiguousarray(images, np.float32)
    y = np.asarray(labels)
    with tempfile.TemporaryDirectory(prefix="adaptive-csp-int8-") as tmp:
        fp = OrtEngine(model, threads=threads, cache=cache or tmp).prepare(todo)
        q = OrtEngine(model, threads=threads, cache=cache or tmp, calib=batches, int8=todo).prepare(todo)
        acc = {(lv, k): float((e.run(x, lv).argmax(1) == y).mean()) for lv in todo for k, e in (("fp32", fp), ("int8", q))}
        lat = {b: _times((fp, q), todo, x[:b], b, rounds, stat) for b in (1, 32)}
        fp.close()
        q.close()
    rows, rungs = [], list(ladder.rungs)
    for j, lv in enumerate(todo):
        (f1, q1), (f32, q32) = lat[1][j], lat[32][j]
        fa, qa = acc[lv, "fp32"], acc[lv, "int8"]
        joined = f1 / q1 >= min_speedup and f32 / q32 >= 1.0 and qa >= fa - acc_tol
        r = rungs[lv]
        ms1, ms32 = (q1, q32) if joined else (f1, f32)
        extra = {k: v for k, v in r.extra.items() if k not in ("precision", "int8_accuracy", "fp32_ort_ms")}
        extra["val_images"] = int(len(y))
        if joined:
            extra.update(precision="int8", int8_accuracy=round(qa, 4),
                         fp32_ort_ms={"b1": round(f1, 4), "b32": round(f32, 4)})
        rungs[lv] = Rung(level=r.level, macs=r.macs, params=r.params, latency_ms=r.latency_ms,
                         latency_ms_b32=r.latency_ms_b32, accuracy=round(fa, 4), extra=extra,
                         latency={**r.latency, latency_key("onnxruntime", 1): round(ms1, 4),
                                  latency_key("onnxruntime", 32): round(ms32, 4)})
        rows.append({"level": lv, "fp32_b1_ms": f1, "int8_b1_ms": q1, "fp32_b32_ms": f32, "int8_b32_ms": q32,
                     "fp32_acc": fa, "int8_acc": qa, "joined": joined})
    return LevelLadder(rungs), rows


def int8_ladder(fp32: Sequence[Rung], int8: Sequence[Rung | None], acc_tol: float = 0.002,
                min_speedup: float = 1.03, metric: str = "latency_ms") -> LevelLadder:
    """The torch engine's rule: the ladder with each rung's int8 variant where it is Pareto-better here.

    ``fp32[i]`` and ``int8[i]`` are the same level measured in float and int8 (``int8[i]`` None where not
    quantised).  The int8 variant replaces the float rung when ``fp32.metric / int8.metric ≥
    min_speedup`` and ``int8.accuracy ≥ fp32.accuracy − acc_tol`` (accuracy on the validation split;
    ``acc_tol`` absorbs the noise of a few images).  Afterwards rungs that a joined int8 rung dominates
    (it is cheaper *and* at least as accurate) are dropped, except the full (last) level; the order of
    the remaining rungs is kept.  Without any int8 rung joining, the ladder is returned unchanged.
    Replaced rungs carry ``extra["precision"] = "int8"``, ``extra["fp32_latency_ms"]`` and
    ``extra["fp32_accuracy"]``.
    """
    if len(fp32) != len(int8):
        raise ValueError("fp32 and int8 rung lists must have the same length")
    chosen: list[Rung] = []
    for f, q in zip(fp32, int8, strict=True):
        pick = f
        if q is not None:
            fm, qm = getattr(f, metric), getattr(q, metric)
            if fm is None or qm is None:
                raise ValueError(f"both variants need {metric} measured (level {f.level.key})")
            fa, qa = f.accuracy, q.accuracy
            acc_ok = fa is None or (qa is not None and qa >= fa - acc_tol)
            if qm > 0 and fm / qm >= min_speedup and acc_ok:
                extra = {**q.extra, "precision": INT8, "fp32_latency_ms": f.latency_ms,
                         "fp32_accuracy": f.accuracy}
                pick = Rung(level=f.level, macs=f.macs, params=f.params, latency_ms=q.latency_ms,
                            latency_ms_b32=q.latency_ms_b32, accuracy=q.accuracy, extra=extra)
        chosen.append(pick)
    full = chosen[-1]
    kept: list[Rung] = []

    def dominates(o: Rung, r: Rung) -> bool:  # only an int8 rung that joined can make another obsolete
        if o is r or o.extra.get("precision") != INT8 or o.accuracy is None or r.accuracy is None:
            return False
        om, rm = getattr(o, metric), getattr(r, metric)
        return om <= rm and o.accuracy >= r.accuracy and (om < rm or o.accuracy > r.accuracy)

    for r in chosen[:-1]:
        if not any(dominates(o, r) for o in chosen):
            kept.append(r)
    return LevelLadder([*kept, full])
