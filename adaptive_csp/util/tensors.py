"""Torch, only when it is already there: the runtime's floors (runtime, control, sensors, levels, the ONNX
Runtime engine) run a bundle on numpy and onnxruntime alone (:mod:`adaptive_csp.runtime.bundle`), so they
never import torch themselves.  A value can only be a ``torch.Tensor`` or a ``torch.device`` when the
caller imported torch; these helpers look in ``sys.modules`` instead of importing it.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["loaded_torch", "is_tensor", "is_module", "torch_threads"]


def loaded_torch() -> Any:
    """The torch module when some code already imported it, else None (never imports it)."""
    return sys.modules.get("torch")


def is_tensor(x: Any) -> bool:
    """``isinstance(x, torch.Tensor)`` without importing torch."""
    t = loaded_torch()
    return t is not None and isinstance(x, t.Tensor)


def is_module(x: Any) -> bool:
    """``isinstance(x, torch.nn.Module)`` without importing torch."""
    t = loaded_torch()
    return t is not None and isinstance(x, t.nn.Module)


def torch_threads() -> int:
    """torch's intra-op thread count when torch is loaded; else the CPUs this process may use."""
    t = loaded_torch()
    if t is not None:
        return int(t.get_num_threads())
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
