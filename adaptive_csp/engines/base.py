"""The engine interface: run one ladder level of a model on a batch of preprocessed inputs.

An engine owns whatever a runtime needs per ladder level (a prepared torch module, an ONNX Runtime
session, captured CUDA graphs) and answers one call::

    out = engine.run(x, level)        # x: float32 N×C×H×W numpy array (CPU), level: ladder index

``run`` returns the level's output as a float numpy array on the CPU, whatever its shape: a classifier's
logits (N×classes), a detector's N×anchors×(4+classes).  Engines never change the
caller's model: not its device, dtype, mode or weights.  What they build from it is a snapshot taken when a
level is first built; :meth:`Engine.refresh` drops it after the weights change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptive_csp.levels import LevelLadder
from adaptive_csp.models.static import input_shape, model_device_dtype
from adaptive_csp.util.tensors import is_tensor

if TYPE_CHECKING:  # engines over files (a bundle) run without torch: this module never imports it
    import torch

__all__ = ["Engine", "model_device_dtype", "as_numpy", "refuse_onnx_levels", "input_shape", "OPSET"]

OPSET = 17  # the ONNX opset levels are exported with (engines.export, bundles)


def refuse_onnx_levels(model: torch.nn.Module, engine: str) -> None:
    """ValueError when some level of ``model`` is an ONNX file (a
    :class:`~adaptive_csp.models.ladder.ModelLadder` member): only the onnxruntime engine runs those."""
    if getattr(model, "needs_onnxruntime", False):
        onnx = [i for i in range(len(model.levels)) if model.onnx_file(i) is not None]
        raise ValueError(f"engine {engine!r} runs torch modules, but level(s) {onnx} of this ladder are ONNX "
                         "files: use engine='onnxruntime' (or 'auto')")


def as_numpy(x: Any) -> np.ndarray:
    """A float32 C-contiguous numpy array of ``x`` (numpy array or tensor, any device)."""
    if is_tensor(x):
        x = x.detach()
        if x.device.type != "cpu":
            x = x.cpu()
        x = x.float().numpy()
    a = np.asarray(x)
    if a.dtype != np.float32 or not a.flags.c_contiguous:
        a = np.ascontiguousarray(a, dtype=np.float32)
    return a


class Engine(ABC):
    """One runtime for every level of a ladder.  Subclasses set ``name`` and implement :meth:`run`."""

    name = "engine"

    def __init__(self, model: Any):
        ladder = getattr(model, "levels", None)
        self.model = model
        self.elastic = isinstance(ladder, LevelLadder)
        self.ladder: LevelLadder = ladder if self.elastic else LevelLadder.from_costs([1.0])

    def __len__(self) -> int:
        return len(self.ladder)

    def _check_level(self, level: int) -> int:
        return self.ladder.index(level)

    @abstractmethod
    def run(self, x: np.ndarray, level: int) -> np.ndarray:
        """The output (CPU numpy, N×…: a classifier's logits, a detector's boxes and scores) of ladder level
        ``level`` for the preprocessed batch ``x``."""

    def prepare(self, levels: Iterable[int] | None = None, batch_sizes: Iterable[int] = (1,)) -> Engine:
        """Build the given levels (default: all) now rather than on first use."""
        return self

    def refresh(self) -> None:
        """Forget what was built from the model (call after its weights, BN statistics or ladder change)."""
        return None

    def close(self) -> None:
        """Release runtime resources (sessions, graphs).  Idempotent."""
        return None

    def describe(self) -> dict[str, Any]:
        """What runs: engine name and its settings (for telemetry, benchmarks and the CLI)."""
        return {"engine": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"
