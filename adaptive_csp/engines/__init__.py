"""Engines: one runtime for every ladder level behind one small interface (:class:`Engine`).

==================  =====================================================================================
``"torch"``         the model's prepared static modules, eager PyTorch, on the model's device and dtype
``"onnxruntime"``   each level exported once to ONNX (cached on disk), one InferenceSession per level;
                    TensorRT / CUDA execution providers when the onnxruntime build has them; int8 rungs
``"cuda"``          static modules on a CUDA device, fp16/bf16 optional, CUDA graphs per (level, batch)
``"auto"``          the fastest available, by rule (:func:`choose_engine`)
==================  =====================================================================================

>>> eng = make_engine(model, "auto")           # doctest: +SKIP
>>> out = eng.run(x, level)          # x: float32 N×C×H×W numpy; out: numpy N×classes (a detector: N×A×(4+K))
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from adaptive_csp.engines.base import Engine, model_device_dtype
from adaptive_csp.engines.cuda_engine import CudaEngine, have_cuda
from adaptive_csp.engines.ort_engine import OrtEngine, have_onnxruntime
from adaptive_csp.engines.torch_engine import TorchEngine

__all__ = ["Engine", "model_device_dtype", "have_cuda", "have_onnxruntime", "TorchEngine", "OrtEngine", "CudaEngine", "ENGINES", "available_engines", "choose_engine",
           "make_engine"]

ENGINES = ("torch", "onnxruntime", "cuda")


def available_engines() -> list[str]:
    """The engines that can run on this machine (``torch`` always)."""
    return ["torch"] + (["onnxruntime"] if have_onnxruntime() else []) + (["cuda"] if have_cuda() else [])


def _runs_installed_modules(model: torch.nn.Module) -> bool:
    """True when a level runs a module installed with ``ElasticNet.install`` (a torch.ao int8 rung),
    which an ONNX export of the float level would silently replace.  Installed modules sit in the
    model's prepared cache; reading it builds nothing."""
    from adaptive_csp.models.net import StaticNet

    cache = getattr(model, "_prepared", None)
    return isinstance(cache, Mapping) and any(not isinstance(m, StaticNet) for m in list(cache.values()))


def choose_engine(model: torch.nn.Module, device: str | torch.device | None = None) -> str:
    """The ``auto`` rule: ``onnxruntime`` when some level is an ONNX file (a ModelLadder member; with the
    CUDA / TensorRT providers where the build has them); ``cuda`` when the device (or, without one, the
    model) is a CUDA device; else ``onnxruntime`` when it is installed and the model is elastic,
    exportable and runs no installed torch modules; else ``torch``."""
    if getattr(model, "needs_onnxruntime", False):
        return "onnxruntime"  # the only engine that runs ONNX files (it says how to install it when absent)
    dev = torch.device(device) if device is not None else model_device_dtype(model)[0]
    if dev.type == "cuda" and have_cuda():
        return "cuda"
    if dev.type != "cpu":
        return "torch"
    from adaptive_csp.levels import LevelLadder

    if (have_onnxruntime() and isinstance(getattr(model, "levels", None), LevelLadder)
            and hasattr(model, "export") and not getattr(model, "features_only", False)
            and not _runs_installed_modules(model)):
        return "onnxruntime"
    return "torch"


def make_engine(model: torch.nn.Module, engine: str | Engine = "auto", device: str | torch.device | None = None,
                **options: Any) -> Engine:
    """An engine for ``model``: a name from :data:`ENGINES` or ``"auto"``, or an :class:`Engine` (as is).

    ``options`` go to the engine: ``threads``, ``cache``, ``providers``, ``calib``, ``int8`` (onnxruntime);
    ``dtype``, ``graphs`` (cuda).  ``device`` picks the cuda engine's device; the torch engine runs where
    the model is and refuses another device (move the model yourself, or use ``engine="cuda"``).
    """
    if isinstance(engine, Engine):
        return engine
    if not isinstance(engine, str):
        raise ValueError(f"engine must be a name ({', '.join(ENGINES)}, auto) or an Engine, got {type(engine).__name__}")
    name = choose_engine(model, device) if engine == "auto" else engine
    classes = {"torch": TorchEngine, "onnxruntime": OrtEngine, "cuda": CudaEngine}
    if name not in classes:
        raise ValueError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)} or 'auto'")
    cls = classes[name]
    takes = set(inspect.signature(cls.__init__).parameters) - {"self", "model", "device"}
    bad = sorted(set(options) - takes)
    if bad and engine != "auto":  # under auto, options for the engines not chosen are ignored
        raise ValueError(f"engine {name!r} takes no option(s) {bad} (it takes {sorted(takes) or 'none'})")
    options = {k: v for k, v in options.items() if k in takes}
    if name == "torch":
        here = model_device_dtype(model)[0]
        if device is not None and torch.device(device).type != here.type:
            raise ValueError(f"engine 'torch' runs where the model is ({here}), not on {torch.device(device)}: "
                             "move the model yourself (model.to(...)) or use engine='cuda'")
        return TorchEngine(model, **options)
    if name == "cuda":
        return CudaEngine(model, device=device if device is not None else "cuda", **options)
    return cls(model, **options)
