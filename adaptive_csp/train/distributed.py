"""Data-parallel training across processes (``torchrun``): the process group, the shard of each global
batch, synchronised batch norm, one gradient all-reduce per step, and statistics agreed by all ranks.

``torchrun --nproc_per_node=N -m adaptive_csp train ...`` starts N processes with ``RANK`` /
``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` set; :func:`setup` joins them (NCCL on CUDA, one GPU per
local rank; gloo on the CPU).  Without those variables (``WORLD_SIZE`` unset or 1) everything here is
a no-op and a run is exactly a single-process run.

What makes N ranks train as one process with the same global batch:

* **Data.** Every rank draws the same per-epoch permutation and the same augmentation from generators
  seeded identically (the single-process run's own), augments the whole global batch and keeps every
  N-th sample of it (:meth:`Dist.shard`): the union of the ranks' shards is the single process's batch,
  sample for sample.  It is :class:`torch.utils.data.DistributedSampler`'s interleaved sharding applied
  per global batch, so a one-rank run keeps today's order and a checkpoint resumes at any world size.
* **Levels.** The sandwich's random levels come from the same seeded ``random.Random`` on every rank, so
  all ranks run the same levels each step.
* **Batch norm.** In training mode each ``ConvBN`` reduces its per-channel sum and sum of squares over
  the ranks (a differentiable all-reduce) and normalises with the global batch's statistics
  (:func:`adaptive_csp.nn.elastic.sync_batch_norm`, switched on by :func:`sync_bn`), as
  ``torch.nn.SyncBatchNorm`` does (which needs CUDA).
* **Gradients.** After the step's last backward pass (the sandwich runs one per level), the gradients
  are all-reduced once, flattened into one buffer and weighted by each rank's share of the batch
  (:meth:`Dist.average_gradients`).  A level that leaves parameters unused leaves them without a
  gradient on every rank alike (all ranks run the same levels), so exactly those are skipped, as in a
  single process where the optimizer skips them; this is what ``DistributedDataParallel`` with
  ``find_unused_parameters=True`` and ``no_sync()`` over the earlier passes does, without its per-pass
  graph walk.
* **BN re-estimation and validation.** Each rank runs its share of the calibration batches (whole
  batches, so the per-batch statistics are the single process's) and of the validation images; the
  sums are all-reduced (:meth:`Dist.all_sum`).
* **Time.** Budget decisions use the slowest rank's measured seconds (:meth:`Dist.agree_max`), so every
  rank re-plans the same schedule and stops at the same step.
* **Files.** Rank 0 writes checkpoints and logs; every rank's command line is recorded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Dist", "setup", "sync_bn", "SINGLE"]


@dataclass
class Dist:
    """This process's place in the run: ``rank`` of ``world`` (``world == 1``: a single process)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    commands: list[str] = field(default_factory=list)
    device: Any = "cpu"  # where collective tensors live: the rank's GPU under NCCL, the CPU under gloo

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's samples of a global batch: every ``world``-th, starting at ``rank``."""
        return x[self.rank::self.world] if self.active else x

    def all_sum(self, values: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """Element-wise sum over the ranks (float64 on the rank's collective device; a copy when single)."""
        t = torch.as_tensor(values, dtype=torch.float64, device=self.device).clone()
        if self.active:
            torch.distributed.all_reduce(t)
        return t

    def agree_max(self, value: float) -> float:
        """The largest ``value`` over the ranks (every rank gets the same number)."""
        if not self.active:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return float(t)

    def average_gradients(self, params: Iterable[torch.nn.Parameter], n_local: int, n_global: int) -> None:
        """Replace each gradient by the batch-weighted mean over the ranks: ``Σ_r (n_r / N) · g_r``, one
        flattened all-reduce.  Parameters without a gradient (unused by every level this step, on every
        rank alike) are left without one."""
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads]) * (float(n_local) / float(n_global))
        torch.distributed.all_reduce(flat)
        i = 0
        for g in grads:
            g.copy_(flat[i:i + g.numel()].view_as(g))
            i += g.numel()

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (as ``DistributedDataParallel`` does at start):
        the ranks begin from one model whatever each initialised."""
        if not self.active:
            return
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                torch.distributed.broadcast(t.data, src=0)

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()


SINGLE = Dist()


def setup(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group ``torchrun`` describes (nothing when ``WORLD_SIZE`` is unset or 1): NCCL with
    one GPU per local rank on CUDA, gloo on the CPU.  Returns the rank's :class:`Dist` and its device."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist(commands=[_command()]), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
    commands: list[Any] = [None] * world
    torch.distributed.all_gather_object(commands, _command())
    return Dist(rank, world, local, backend, [str(c) for c in commands], device if backend == "nccl" else "cpu"), device


def _command() -> str:
    import shlex

    return shlex.join([os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])


def sync_bn(model: torch.nn.Module, on: bool) -> None:
    """Turn the global-batch statistics of every ``ConvBN`` in ``model`` on or off
    (:func:`adaptive_csp.nn.elastic.sync_batch_norm`; on only while a process group runs)."""
    from adaptive_csp.nn.elastic import ConvBN

    for m in model.modules():
        if isinstance(m, ConvBN):
            m.sync = bool(on)


def is_main() -> bool:
    """True in a single process and on rank 0 of a process group (who writes files)."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or \
        torch.distributed.get_rank() == 0


def calibrate_bn(model: Any, levels: Sequence[Any], batches: Sequence[torch.Tensor], d: Dist) -> None:
    """``model.calibrate_bn(levels, batches)`` split over the ranks: each runs whole batches
    ``rank::world`` (so every batch's statistics are the single process's), then the per-level estimates
    are combined, weighted by the batches each rank ran: the cumulative average over all batches."""
    if not d.active or len(batches) < d.world:
        model.calibrate_bn(levels, batches)
        return
    mine = list(batches[d.rank::d.world])
    model.calibrate_bn(levels, mine)
    k = float(len(mine))
    total = float(d.all_sum([k])[0])
    for level in levels:
        stats = model.bn_stats[model.resolve(level).key]
        names = sorted(stats)
        parts = [t for n in names for t in stats[n]]
        flat = torch.cat([t.reshape(-1).double() for t in parts]) * k
        torch.distributed.all_reduce(flat)
        flat /= total
        i, out = 0, {}
        for n in names:
            mean, var = stats[n]
            m = flat[i:i + mean.numel()].view_as(mean).to(mean.dtype)
            i += mean.numel()
            v = flat[i:i + var.numel()].view_as(var).to(var.dtype)
            i += var.numel()
            out[n] = (m, v)
        model.bn_stats[model.resolve(level).key] = out
    model.invalidate()
