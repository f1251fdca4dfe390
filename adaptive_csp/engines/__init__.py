"""Engines: one runtime for every ladder level behind one small interface (:class:`Engine`).

==================  =====================================================================================
``"torch"``         the model's prepared static modules, eager PyTorch, on the model's device and dtype
``"onnxruntime"``   each level exported once to ONNX (cached on disk), one InferenceSession per level;
                    TensorRT / CUDA execution providers when the onnxruntime build has them; int8 rungs
``"cuda"``          static modules on a CUDA device, fp16/bf16 optional, CUDA graphs per (level, batch)
``"auto"``          the fastest available, by rule (:func:`choose_engine`)
==================  =====================================================================================

>>> eng = create_engine(model, "auto")           # doctest: +SKIP
>>> out = eng.run(x, level)          # x: float32 N×C×H×W numpy; out: numpy N×classes (a detector: N×A×(4+K))
"""

from __future__ import annotations

import importlib
from typing import Any

from adaptive_csp.engines.base import Engine, model_device_dtype
from adaptive_csp.engines.select import (
    ENGINES,
    available_engines,
    choose_engine,
    create_engine,
    have_cuda,
    have_onnxruntime,
    make_engine,
)

__all__ = ["Engine", "model_device_dtype", "have_cuda", "have_onnxruntime", "TorchEngine", "OrtEngine", "CudaEngine",
           "ENGINES", "available_engines", "choose_engine", "create_engine", "make_engine"]

_CLASSES = {"TorchEngine": "torch_engine", "OrtEngine": "ort_engine", "CudaEngine": "cuda_engine"}


def __getattr__(name: str) -> Any:  # the engine classes load on first use (the torch ones bring torch)
    if name in _CLASSES:
        return getattr(importlib.import_module(f"adaptive_csp.engines.{_CLASSES[name]}"), name)
    raise AttributeError(f"module 'adaptive_csp.engines' has no attribute {name!r}")
