"""``engine="cuda"``: each level's static module on a CUDA device, CUDA graphs replayed per (level, batch).

* Modules: a fresh export of each level (sliced, BN folded), moved to ``device`` and cast to ``dtype``
  (``"fp32"`` default, ``"fp16"``, ``"bf16"``; ``"fp64"`` for checks); the caller's model stays where it is.
* Graphs (``graphs=True``): on the first call of a (level, batch size) pair the module is warmed up on a
  side stream and captured into a ``torch.cuda.CUDAGraph`` with static input and output buffers (one
  memory pool shared by all graphs); later calls copy the input into the static buffer, replay and copy
  the output out (any shape: logits, a detector's boxes and scores).  Replays are serialised by a lock
  (the buffers are shared).  Batch-1 eager CUDA is launch-bound, which graphs remove: the per-level
  latencies then keep the order of the levels' costs.
* ``fp32`` means fp32: cuDNN's default on Ampere and newer is TF32 for fp32 convolutions, which moves the
  logits away from the CPU's by more than the engine tests allow; ``tf32=True`` trades that for speed.  The setting is applied around each capture and eager call (a process-wide cuDNN flag,
  restored afterwards).
* ``graphs=False`` runs the modules eagerly; with ``device="cpu"`` this is the same code path on the CPU
  (used by the tests on machines without a GPU, and by ``dtype`` experiments).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from adaptive_csp.engines.base import Engine, refuse_onnx_levels
from adaptive_csp.models.static import input_shape, static_module

__all__ = ["CudaEngine", "have_cuda", "DTYPES"]

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp64": torch.float64,
          "float64": torch.float64}


def have_cuda() -> bool:
    return torch.cuda.is_available()


@contextmanager
def conv_tf32(allow: bool) -> Iterator[None]:
    """cuDNN's TF32 switch for fp32 convolutions, set for the ``with`` block and restored after."""
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = old


class _Graph:
    """One captured (level, batch size): static input / output buffers and the graph that links them."""

    def __init__(self, net: torch.nn.Module, x: torch.Tensor, pool: Any, warmup: int = 3):
        self.x = x.clone()
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(warmup):
                net(self.x)
        torch.cuda.current_stream(x.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph, pool=pool):
            self.y = net(self.x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.x.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.y


class CudaEngine(Engine):
    name = "cuda"

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cuda", dtype: str | torch.dtype = "fp32",
                 graphs: bool = True, graph_factory: Callable[..., Any] | None = None, tf32: bool = False):
        super().__init__(model)
        refuse_onnx_levels(model, self.name)
        self.device = torch.device(device)
        if self.device.type == "cuda" and not have_cuda():
            raise ValueError("engine='cuda' needs a CUDA device: torch.cuda.is_available() is False here")
        if isinstance(dtype, str):
            if dtype.lower() not in DTYPES:
                raise ValueError(f"dtype must be one of {sorted(set(DTYPES))}, got {dtype!r}")
            dtype = DTYPES[dtype.lower()]
        if dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
            raise ValueError(f"unsupported dtype {dtype}")
        self.dtype = dtype
        if graphs and self.device.type != "cuda" and graph_factory is None:
            raise ValueError("CUDA graphs need a CUDA device; pass graphs=False to run eagerly on "
                             f"{self.device}")
        self.use_graphs = bool(graphs)
        self.tf32 = bool(tf32)
        self._factory = graph_factory or _Graph
        self._lock = threading.Lock()
        self._nets: dict[int, torch.nn.Module] = {}
        self._graphs: dict[tuple[int, int], Any] = {}
        self._pool: Any = None

    def _net(self, level: int) -> torch.nn.Module:
        net = self._nets.get(level)
        if net is None:
            # a fresh export (or copy of a plain module): ours to move; the caller's model is never moved
            net = self._nets[level] = static_module(self.model, level).to(self.device, self.dtype)
        return net

    def _graph(self, level: int, x: torch.Tensor) -> Any:
        key = (level, x.shape[0])
        g = self._graphs.get(key)
        if g is None:
            if self._pool is None and self.device.type == "cuda":
                self._pool = torch.cuda.graph_pool_handle()
            g = self._graphs[key] = self._factory(self._net(level), x, self._pool)
        return g

    def run(self, x: np.ndarray | torch.Tensor, level: int) -> np.ndarray:
        xt = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
        with self._lock, conv_tf32(self.tf32):
            xt = xt.to(self.device, self.dtype, non_blocking=True)
            if self.use_graphs:
                y = self._graph(level, xt)(xt)
                y = y.float().cpu()  # copies out of the static buffer before the next replay
            else:
                with torch.inference_mode():
                    y = self._net(level)(xt)
                if y.device.type != "cpu" or y.dtype not in (torch.float32, torch.float64):
                    y = y.float().cpu()
        return y.numpy()

    def prepare(self, levels: Iterable[int] | None = None, batch_sizes: Iterable[int] = (1,)) -> CudaEngine:
        c, h, w = input_shape(self.model)
        for i in range(len(self.ladder)) if levels is None else levels:
            lv = self._check_level(i)
            for n in batch_sizes if self.use_graphs else (1,):
                self.run(np.zeros((int(n), c, h, w), np.float32), lv)
        return self

    @property
    def captured(self) -> list[tuple[int, int]]:
        """The (level, batch size) pairs captured so far."""
        return sorted(self._graphs)

    def refresh(self) -> None:
        with self._lock:
            self.ladder = self.model.levels if self.elastic else self.ladder
            self._graphs.clear()
            self._nets.clear()
            self._pool = None

    close = refresh

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""),
                "graphs": self.use_graphs, "tf32": self.tf32}

