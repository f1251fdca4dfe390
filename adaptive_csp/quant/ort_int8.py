"""int8 rungs on ONNX Runtime: static QDQ quantisation of an exported level.

:func:`quantize_onnx` turns a float32 ONNX level into a static int8 QDQ model: ``quant_pre_process``
(shape inference, graph optimisation), then ``quantize_static`` with per-channel signed int8 weights and
unsigned int8 activations, their ranges observed on calibration batches (MinMax over validation images),
and 7-bit weights (``reduce_range``): without them, the u8×s8 multiply-adds of x86 CPUs without VNNI
saturate their 16-bit intermediate sums and cost accuracy, while 7-bit weights keep it at the same speed.
Activations stay unsigned: signed int8 activations (S8S8) run far slower than float32 on these CPUs
(docs/engines.md).
Which rungs go int8 is measured, not decided here: :mod:`adaptive_csp.train.int8_profile` (``adaptive-csp
profile --int8``).  The ONNX Runtime engine then runs those rungs in int8 (``OrtEngine(calib=...)``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["quantize_onnx", "SETTINGS"]


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
