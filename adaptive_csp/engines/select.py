"""Choosing and building an engine: :func:`create_engine`, the ``auto`` rule :func:`choose_engine`,
:func:`available_engines`.  Engine classes are imported when chosen, so running ONNX files (a bundle)
never imports torch; a torch model brings torch with it.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from adaptive_csp.engines.base import Engine
from adaptive_csp.util.tensors import is_module

if TYPE_CHECKING:
    import torch

__all__ = ["create_engine", "ENGINES", "available_engines", "choose_engine", "make_engine", "have_onnxruntime", "have_cuda"]


def have_onnxruntime() -> bool:
    """True when onnxruntime imports (it never imports torch)."""
    from adaptive_csp.engines.ort_engine import have_onnxruntime as have

    return have()


def have_cuda() -> bool:
    """True when torch is importable and sees a CUDA device."""
    try:
        from adaptive_csp.engines.cuda_engine import have_cuda as have
    except ImportError:
        return False
    return have()


ENGINES = ("torch", "onnxruntime", "cuda")


def available_engines() -> list[str]:
    """The engines that can run on this machine (``torch`` wherever torch is installed)."""
    import importlib.util

    torch_here = importlib.util.find_spec("torch") is not None
    return (["torch"] if torch_here else []) + (["onnxruntime"] if have_onnxruntime() else []) + \
        (["cuda"] if torch_here and have_cuda() else [])


def _runs_installed_modules(model: Any) -> bool:
    """True when a level runs a module put in with ``install`` (a torch.ao int8 rung), which an ONNX
    export of the float level would silently replace (:meth:`ElasticModel.installed` builds nothing)."""
    installed = getattr(model, "installed", None)
    return callable(installed) and bool(installed())


def choose_engine(model: torch.nn.Module, device: str | torch.device | None = None) -> str:
    """The ``auto`` rule: ``onnxruntime`` when some level is an ONNX file (a ModelLadder member; with the
    CUDA / TensorRT providers where the build has them); ``cuda`` when the device (or, without one, the
    model) is a CUDA device; else ``onnxruntime`` when it is installed and the model is elastic,
    exportable and runs no installed torch modules; else ``torch``."""
    if getattr(model, "needs_onnxruntime", False):
        return "onnxruntime"  # the only engine that runs ONNX files (it says how to install it when absent)
    import torch

    from adaptive_csp.models.static import model_device_dtype

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


def _engine_class(name: str) -> type[Engine]:
    if name == "torch":
        from adaptive_csp.engines.torch_engine import TorchEngine
        return TorchEngine
    if name == "cuda":
        from adaptive_csp.engines.cuda_engine import CudaEngine
        return CudaEngine
    from adaptive_csp.engines.ort_engine import OrtEngine
    return OrtEngine


def create_engine(model: torch.nn.Module, engine: str | Engine = "auto", device: str | torch.device | None = None,
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
    if name not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)} or 'auto'")
    if name != "onnxruntime" and not is_module(model):
        raise ValueError(f"engine {name!r} runs torch modules; {type(model).__name__} is not one "
                         "(a bundle runs on engine='onnxruntime')")
    cls = _engine_class(name)
    takes = set(inspect.signature(cls.__init__).parameters) - {"self", "model", "device"}
    bad = sorted(set(options) - takes)
    if bad and engine != "auto":  # under auto, options for the engines not chosen are ignored
        raise ValueError(f"engine {name!r} takes no option(s) {bad} (it takes {sorted(takes) or 'none'})")
    options = {k: v for k, v in options.items() if k in takes}
    if name == "torch":
        import torch

        from adaptive_csp.models.static import model_device_dtype

        here = model_device_dtype(model)[0]
        if device is not None and torch.device(device).type != here.type:
            raise ValueError(f"engine 'torch' runs where the model is ({here}), not on {torch.device(device)}: "
                             "move the model yourself (model.to(...)) or use engine='cuda'")
        return cls(model, **options)
    if name == "cuda":
        return cls(model, device=device if device is not None else "cuda", **options)
    return cls(model, **options)

make_engine = create_engine  # the name before the one-verb API; kept as an alias
