"""Lowering one level of a model to a static module, and what every exporter and engine reads of a model.

* :func:`static_module`: the level as a plain module — an elastic model's fresh export (sliced, BN
  folded; never its prepared cache, never an installed int8 module), a ``forward(x, level)`` wrapper's
  level bound (:class:`AtLevel`), or a plain module copied — optionally as a float32 CPU copy;
* :func:`input_shape`: (C, H, W) of one input image; :func:`output_spec`: the exported output's name and
  shape by task; :func:`model_device_dtype`: where the weights are and their dtype.

This module imports torch only inside the functions that build modules: engines over files (a bundle)
read :func:`input_shape` without torch installed.
"""

from __future__ import annotations

import copy
import functools
from typing import TYPE_CHECKING, Any

from adaptive_csp.levels import LevelLadder

if TYPE_CHECKING:
    import torch

__all__ = ["AtLevel", "input_shape", "output_spec", "static_module", "model_device_dtype"]  # noqa: F822 (AtLevel: __getattr__)


def input_shape(model: Any) -> tuple[int, int, int]:
    """(C, H, W) of one input image: the model's preprocessing metadata, else its config."""
    spec = (getattr(model, "meta", None) or {}).get("preprocess") or {}
    cfg = getattr(model, "cfg", None)
    size = spec.get("input_size") or getattr(cfg, "input_size", None)
    chans = spec.get("in_chans") or getattr(cfg, "in_chans", None)
    if size is None or chans is None:
        raise ValueError("cannot tell the model's input shape: it has neither meta['preprocess'] "
                         "(input_size, in_chans) nor cfg.input_size / cfg.in_chans")
    return int(chans), int(size[0]), int(size[1])


def output_spec(model: Any) -> dict[str, Any]:
    """The exported output's name, shape and a note for the sidecar, by ``meta["task"]`` (classifier default)."""
    if (getattr(model, "meta", None) or {}).get("task") == "detect":
        return {"name": "detections", "shape": ["batch", "anchors", "4+classes"],
                "note": "columns 0..3: boxes xyxy in input pixels; 4..: class scores in [0, 1] (sigmoid applied); "
                        "apply a score threshold and class-aware NMS, then map boxes back to the frame"}
    return {"name": "logits", "shape": ["batch", "classes"], "note": "apply softmax for probabilities"}


def model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model's weights live and their floating dtype (CPU float32 for a weightless module)."""
    import torch

    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    for b in model.buffers():
        if b.is_floating_point():
            return b.device, b.dtype
    return torch.device("cpu"), torch.float32


@functools.cache
def _at_level_class() -> type:
    import torch

    class AtLevel(torch.nn.Module):
        """``model(x, level)`` as a one-input module: a wrapper with ``levels`` (a LevelLadder) and a
        ``forward(x, level)`` but no ``prepared`` / ``export`` runs through this at each level."""

        def __init__(self, model: torch.nn.Module, level: int):
            super().__init__()
            self.inner = model
            self.level = int(level)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x, self.level)

    AtLevel.__module__ = __name__
    return AtLevel


def __getattr__(name: str) -> Any:  # AtLevel is a torch module: its class is made when first asked for
    if name == "AtLevel":
        return _at_level_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def static_module(model: torch.nn.Module, level: int, float32_cpu: bool = False) -> torch.nn.Module:
    """The level's static module (a fresh export: never the model's prepared cache, never an installed
    int8 module), optionally as a float32 CPU copy.  A module with ``levels`` but no ``export`` is copied
    and called as ``model(x, level)`` (:class:`AtLevel`); a plain module is copied."""
    import torch

    if hasattr(model, "export"):
        net = model.export(level)
    elif isinstance(getattr(model, "levels", None), LevelLadder):
        net = _at_level_class()(copy.deepcopy(model), model.levels.index(level))
    else:
        net = copy.deepcopy(model)
    if float32_cpu:
        dev, dt = model_device_dtype(net)
        if dev.type != "cpu" or dt != torch.float32:
            net = copy.deepcopy(net).to("cpu", torch.float32)
    return net.eval()
