"""``engine="torch"``: each ladder level's prepared static module (sliced, BN folded), eager PyTorch.

Runs on the device and dtype of the module that runs (the model's own weights): the input is moved and
cast to match, never the model.  An elastic model runs ``model.prepared(level)`` — which also runs a
module installed for a level with ``ElasticNet.install`` (a torch.ao int8 rung); a
:class:`~adaptive_csp.models.ladder.ModelLadder` runs its torch model of that level (ONNX files are
refused: they run on ``onnxruntime``); a wrapper with ``levels`` (a LevelLadder) but no ``prepared`` runs
``model(x, level)``; a plain module runs ``model(x)`` as given (put it in eval mode yourself).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from adaptive_csp.engines.base import Engine, refuse_onnx_levels
from adaptive_csp.models.static import AtLevel, model_device_dtype

__all__ = ["TorchEngine"]

log = logging.getLogger("adaptive_csp.engines")


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, model: torch.nn.Module):
        super().__init__(model)
        refuse_onnx_levels(model, self.name)
        self._io: dict[int, tuple[Any, torch.device, torch.dtype]] = {}  # level -> (module, device, dtype)
        self._wrapper = self.elastic and not hasattr(model, "prepared")  # levels + forward(x, level)
        if (not self.elastic or self._wrapper) and model.training:
            log.warning("engine torch: the module %s is in training mode (BatchNorm and dropout "
                        "behave as in training); call .eval() on it first", type(model).__name__)

    def _module(self, level: int) -> tuple[Any, torch.device, torch.dtype]:
        if self._wrapper:
            io = self._io.get(level)
            if io is None:
                io = self._io[level] = (AtLevel(self.model, self._check_level(level)), *model_device_dtype(self.model))
            return io
        net = self.model.prepared(level) if self.elastic else self.model
        io = self._io.get(level)
        if io is None or io[0] is not net:  # first use, or the model rebuilt / replaced the level's module
            dev, dt = model_device_dtype(net)
            io = self._io[level] = (net, dev, dt)
        return io

    def run(self, x: np.ndarray | torch.Tensor, level: int) -> np.ndarray:
        net, dev, dt = self._module(level)
        xt = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
        if xt.device != dev or xt.dtype != dt:
            xt = xt.to(dev, dt)
        with torch.inference_mode():
            out = net(xt) if self.elastic else self.model(xt)
        if out.device.type != "cpu" or out.dtype not in (torch.float32, torch.float64):
            out = out.float().cpu()
        return out.numpy()

    def prepare(self, levels: Iterable[int] | None = None, batch_sizes: Iterable[int] = (1,)) -> TorchEngine:
        for i in range(len(self.ladder)) if levels is None else levels:
            self._module(self._check_level(i))
        return self

    def refresh(self) -> None:
        self._io.clear()
        if self.elastic and hasattr(self.model, "invalidate"):
            self.model.invalidate()

    def describe(self) -> dict[str, Any]:
        dev, dt = model_device_dtype(self.model)
        return {"engine": self.name, "device": str(dev), "dtype": str(dt).replace("torch.", "")}
