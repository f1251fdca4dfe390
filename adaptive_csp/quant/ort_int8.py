"""int8 rungs on ONNX Runtime: static QDQ quantisation of an exported level, and the measured ladder.

:func:`quantize_onnx` turns a float32 ONNX level into a static int8 QDQ model: ``quant_pre_process``
(shape inference, graph optimisation), then ``quantize_static`` with per-channel signed int8 weights and
unsigned int8 activations, their ranges observed on calibration batches (MinMax over validation images),
and 7-bit weights (``reduce_range``): without them, the u8×s8 multiply-adds of x86 CPUs without VNNI
saturate their 16-bit intermediate sums, which cost the shipped model's full level 1 point of validation
accuracy (92.45 → 91.45 %, 2 000 images), while 7-bit weights kept it (92.6 %) at the same speed (0.61 vs
0.97 ms fp32 at batch 1).  Signed int8 activations (S8S8) ran 26× slower than fp32 here.
:func:`ort_int8_rungs` measures each level's float32 and int8 sessions (batch-1 and batch-32 latency,
accuracy on labelled validation images) and lets :func:`adaptive_csp.quant.int8_ladder` keep an int8
rung only where it is on the measured Pareto front.  The ONNX Runtime engine then runs those rungs in int8
(``OrtEngine(calib=...)``).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptive_csp.levels import LevelLadder, Rung

__all__ = ["quantize_onnx", "ort_int8_rungs", "SETTINGS"]


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of float batches."""

    def __init__(self, name: str, batches: Sequence[torch.Tensor]):
        self.name = name
        self.items = [np.ascontiguousarray(torch.as_tensor(b).detach().cpu().float().numpy()) for b in batches]
        self.i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.items):
            return None
        self.i += 1
        return {self.name: self.items[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0


#: the settings :func:`quantize_onnx` uses; part of the cache key of every int8 file
SETTINGS = "qdq-pc-u8s8-rr-minmax"


def quantize_onnx(fp32_path: str | Path, out_path: str | Path, calib: Iterable[torch.Tensor]) -> Path:
    """Static QDQ int8 of the float32 ONNX model ``fp32_path`` calibrated on ``calib`` (normalised batches)."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise ValueError("int8 on ONNX Runtime needs onnxruntime and onnx: pip install 'adaptive-csp[ort,onnx]'") \
            from None
    batches = list(calib)
    if not batches:
        raise ValueError("quantize_onnx needs at least one calibration batch")
    name = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    out = Path(out_path)
    fd, pre = tempfile.mkstemp(suffix=".onnx", dir=out.parent)
    os.close(fd)
    try:
        quant_pre_process(str(fp32_path), pre, skip_symbolic_shape=True)
        quantize_static(pre, str(out), _Reader(name, batches), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, reduce_range=True,
                        calibrate_method=CalibrationMethod.MinMax)
    finally:
        os.unlink(pre)
    return out


def _median_ms(fn, x: np.ndarray, reps: int) -> float:
    for _ in range(max(3, reps // 5)):
        fn(x)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x)
        ts.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(ts)


def ort_int8_rungs(model: torch.nn.Module, calib: Sequence[torch.Tensor], images: torch.Tensor,
                   labels: torch.Tensor, threads: int = 1, reps: int = 200, cache: str | Path | None = None,
                   acc_tol: float = 0.002, levels: Iterable[int] | None = None,
                   ) -> tuple[LevelLadder, list[dict[str, Any]]]:
    """Measure every ladder level in float32 and int8 on ONNX Runtime; the ladder with the int8 rungs that
    are on the Pareto front (:func:`adaptive_csp.quant.int8_ladder`, batch-1 latency) and the rows measured.

    ``images``: normalised validation batch (N×C×H×W), ``labels``: its labels (accuracy); ``calib``:
    calibration batches (validation images, not the ones scored); ``levels``: the ladder indices to try in
    int8 (default: all).
    """
    from adaptive_csp.engines.ort_engine import OrtEngine
    from adaptive_csp.quant.int8 import INT8, int8_ladder

    ladder = model.levels
    todo = sorted({ladder.index(i) for i in (range(len(ladder)) if levels is None else levels)})
    fp = OrtEngine(model, threads=threads, cache=cache)
    q = OrtEngine(model, threads=threads, cache=cache, calib=calib, int8=todo)
    x = np.ascontiguousarray(images.float().numpy())
    y = labels.numpy()
    b1, b32 = x[:1], x[:32]
    fp32_rungs, int8_rungs, rows = [], [], []
    for i, r in enumerate(ladder.rungs):
        if i not in todo:
            fp32_rungs.append(r)
            int8_rungs.append(None)
            continue
        acc = {}
        lat = {}
        for tag, eng in (("fp32", fp), ("int8", q)):
            eng.prepare([i])
            acc[tag] = float((eng.run(x, i).argmax(1) == y).mean())
        for _ in range(3):  # interleaved: fp32 int8 fp32 int8 ...
            for tag, eng in (("fp32", fp), ("int8", q)):
                lat.setdefault(tag, []).append((_median_ms(lambda a, e=eng, j=i: e.run(a, j), b1, reps),
                                                _median_ms(lambda a, e=eng, j=i: e.run(a, j), b32, max(20, reps // 8))))
        m = {t: (statistics.median(v[0] for v in lat[t]), statistics.median(v[1] for v in lat[t])) for t in lat}
        fp32_rungs.append(Rung(level=r.level, macs=r.macs, params=r.params, latency_ms=m["fp32"][0],
                               latency_ms_b32=m["fp32"][1], accuracy=acc["fp32"], extra=dict(r.extra)))
        int8_rungs.append(Rung(level=r.level, latency_ms=m["int8"][0], latency_ms_b32=m["int8"][1],
                               accuracy=acc["int8"]))
        rows.append({"level": i, "fp32_b1_ms": m["fp32"][0], "int8_b1_ms": m["int8"][0],
                     "fp32_b32_ms": m["fp32"][1], "int8_b32_ms": m["int8"][1],
                     "fp32_acc": acc["fp32"], "int8_acc": acc["int8"]})
    out = int8_ladder(fp32_rungs, int8_rungs, acc_tol=acc_tol)
    for row in rows:
        row["joined"] = any(rr.level == ladder[row["level"]] and rr.extra.get("precision") == INT8
                            for rr in out.rungs)
    return out, rows
