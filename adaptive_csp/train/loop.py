"""One training loop for every task: epochs of seeded batches, a warm-up + cosine rate, resumable state.

The classifier (:mod:`adaptive_csp.train.sandwich`) and the detector (:mod:`adaptive_csp.train.detect`)
train the same way: every epoch a seeded permutation of the training items, one optimizer step per batch
(the task's loss over the levels it trains, see :func:`sandwich_levels`), the rate from
:func:`warmup_cosine` over the steps the run will make (a wall-clock budget may re-plan them after every
step, and the last epoch may then end early), per-level BN re-estimated and the cheap and full levels
evaluated at every epoch end, and a resumable checkpoint (:mod:`adaptive_csp.train.state`: safetensors +
JSON) after each epoch.  A task whose ``checkpoint_minutes`` is set also writes one inside an epoch that
often and on SIGTERM, and resumes where it stopped.  Under ``torchrun`` every rank runs the same loop and
every decision that depends on a clock (re-planning, checkpoints, a SIGTERM) is agreed over the ranks
(:mod:`adaptive_csp.train.distributed`); rank 0 writes the files.

What differs between tasks is a small object (:class:`Task`): how a batch is drawn and its loss over
levels stepped, how the run is planned, what an epoch's record holds and what goes into the checkpoint.

A trained model's metadata keeps its training record (recipe, per-epoch history, every invocation) under
:data:`HISTORY_KEY`; :func:`train_record` also reads files that named it ``"training"``.
"""

from __future__ import annotations

import json
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from adaptive_csp.levels import Level
from adaptive_csp.train.distributed import Dist, calibrate_bn, setup
from adaptive_csp.train.state import load_state, save_state

__all__ = ["HISTORY_KEY", "train_record", "warmup_cosine", "resolve_device", "start", "param_groups",
           "sandwich_levels", "epoch_end_eval", "Run", "Clock", "Task", "resume_run", "fit"]

#: the key of a trained model's training record (recipe, history, runs) in its metadata
HISTORY_KEY = "train"
#: the names older files gave that record (detectors trained before both trainers shared this loop)
OLD_HISTORY_KEYS = ("training",)


def train_record(meta: dict[str, Any]) -> dict[str, Any]:
    """The training record in a model's metadata (``meta["train"]``, or the older ``meta["training"]``);
    an empty dict when the model records none."""
    for key in (HISTORY_KEY, *OLD_HISTORY_KEYS):
        rec = meta.get(key)
        if isinstance(rec, dict):
            return rec
    return {}


def warmup_cosine(step: int, base: float, warmup: int, total: int, start: int = 0) -> float:
    """The rate of optimizer step ``step`` (from 0) of ``total``: a linear ramp over the first ``warmup``
    steps and a half cosine from ``base`` down to 0 between step ``start`` and ``total``.

    ``start = warmup``: the decay begins when the ramp ends (the classifier's schedule); ``start = 0``: the
    decay spans the whole run and the ramp multiplies it (the detector's).  The expressions are written so
    that each trainer's rates are the same floats as when each computed its own."""
    if step < start:  # a pure ramp before the decay (start == warmup)
        return base * (step + 1) / warmup
    ramp = min(1.0, (step + 1) / max(1, warmup))
    return base * ramp * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - start) / max(1, total - start))))


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else the CPU; anything else as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here")
    return dev


def start(out_dir: str | Path, threads: int | None, device: str) -> tuple[Path, Dist, torch.device]:
    """The run folder (created), torch's thread count, and this process's place and device (under
    ``torchrun`` the rank's; :func:`adaptive_csp.train.distributed.setup`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    dist, dev = setup(resolve_device(device))
    return out, dist, dev


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weights (ndim > 1) only, not on biases and BN affine parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def sandwich_levels(model: Any, n_random: int, draw: Callable[[], Level], static: Level | None = None) -> list[Level]:
    """The levels one step trains (US-Nets' sandwich rule): the full level, the cheapest, ``n_random``
    levels from ``draw``; only ``static`` when a single level is trained (the "trained alone" baselines)."""
    if static is not None:
        return [static]
    return [model.full_level(), model.cheapest_level(), *(draw() for _ in range(n_random))]


def epoch_end_eval(model: Any, levels: dict[str, Level], calib: Sequence[torch.Tensor],
                   score: Callable[[Level], Any], dist: Dist) -> dict[str, Any]:
    """Per-level BN re-estimated on ``calib`` for each of ``levels`` (the shared running statistics mix
    levels), then ``score(level)`` of each, by name."""
    calibrate_bn(model, list(levels.values()), calib, dist)
    return {name: score(lv) for name, lv in levels.items()}


@dataclass
class Run:
    """Where a run stands: epoch, optimizer step, history, the invocations, the transfer start (``init``),
    the epoch's order when a checkpoint was written inside it, and the stop flag SIGTERM sets."""

    epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    init: dict | None = None
    perm: list[int] | None = None
    offset: int = 0
    epoch_secs: float = 0.0
    stop: bool = False

    def meta(self, cfg: Any) -> dict[str, Any]:
        """The checkpoint's JSON record (``cfg``: the pydantic recipe)."""
        m: dict[str, Any] = {"epoch": self.epoch, "step": self.step, "cfg": cfg.model_dump(),
                             "history": self.history, "runs": self.runs}
        if self.init is not None:
            m["init"] = self.init
        if self.perm is not None:
            m.update(perm=self.perm, offset=self.offset, epoch_seconds=round(self.epoch_secs, 1))
        return m

    def load(self, meta: dict[str, Any]) -> None:
        """Continue from a checkpoint's record (classifier checkpoints before this loop carry no step: it
        is the epoch's first then, see :func:`fit`)."""
        self.epoch, self.step = int(meta["epoch"]), int(meta.get("step", 0))
        self.history, self.runs, self.init = list(meta["history"]), list(meta.get("runs", [])), meta.get("init")
        self.perm = meta.get("perm")
        self.offset, self.epoch_secs = int(meta.get("offset", 0)), float(meta.get("epoch_seconds", 0.0))

    def spent(self) -> float:
        """Seconds the finished epochs took, plus a transfer start's preparation."""
        return sum(float(r.get("seconds", 0.0)) for r in self.history) + float((self.init or {}).get("seconds", 0))


class Clock:
    """Wall time of this invocation: since it began (less the epoch-end evaluations), in this epoch (with
    the part an interrupted run spent before it resumed), and since the last checkpoint."""

    def __init__(self, run: Run) -> None:
        self.t_start = self.t_ckpt = time.perf_counter()
        self.step0, self.eval_secs = run.step, 0.0
        self.t0, self.before, self.t_eval = self.t_start, 0.0, self.t_start

    def begin_epoch(self, before: float) -> None:
        self.t0, self.before = time.perf_counter(), before

    def epoch_seconds(self) -> float:
        """Seconds of this epoch so far (training; the evaluation too once it ran)."""
        return self.before + time.perf_counter() - self.t0

    def train_seconds(self) -> float:
        """Seconds this invocation has spent stepping (evaluations excluded)."""
        return time.perf_counter() - self.t_start - self.eval_secs

    def since_checkpoint(self) -> float:
        return time.perf_counter() - self.t_ckpt

    def checkpointed(self) -> None:
        self.t_ckpt = time.perf_counter()

    def evaluating(self) -> None:
        """The epoch's steps are done; its evaluation begins."""
        self.t_eval = time.perf_counter()

    def evaluated(self) -> None:
        """The epoch-end evaluation and checkpoint are done: they do not count as step time."""
        self.t_ckpt = time.perf_counter()
        self.eval_secs += self.t_ckpt - self.t_eval


class Task(Protocol):
    """What one kind of training adds to :func:`fit`.

    Attributes: ``cfg`` (the pydantic recipe, recorded in checkpoints), ``model``, ``opt``, ``gen`` (the
    torch generator of orders and augmentations), ``rng`` (Python's, for levels), ``dist``, ``n_train``
    (training items), ``batch_size`` (global), ``epochs`` (at most), ``lr`` (peak rate), ``warmup``
    (ramp steps), ``decay_after_warmup`` (see :func:`warmup_cosine`), ``whole_epochs`` (the schedule's
    step count jumps to the next epoch's first step when an epoch is cut short), ``checkpoint_minutes``
    (None: checkpoints at epoch ends only, SIGTERM not caught), ``progress``."""

    cfg: Any
    model: Any
    opt: torch.optim.Optimizer
    gen: torch.Generator
    rng: random.Random
    dist: Dist
    n_train: int
    batch_size: int
    epochs: int
    lr: float
    warmup: int
    decay_after_warmup: bool
    whole_epochs: bool
    checkpoint_minutes: float | None
    progress: bool

    def total_steps(self, run: Run) -> int:
        """The run's planned optimizer steps at its start."""

    def begin_epoch(self, run: Run, total: int) -> None:
        """Reset the epoch's statistics."""

    def step(self, run: Run, idx: torch.Tensor, k: int) -> None:
        """Optimizer step ``run.step`` on the global batch ``idx`` (batch ``k`` of the epoch): draw its
        augmentation and levels, the loss over the levels, one update."""

    def replan(self, run: Run, clock: Clock, k: int, total: int) -> int:
        """The planned steps after batch ``k`` (a budget re-plans at the measured step time)."""

    def log_step(self, run: Run, k: int, total: int, lr: float) -> None:
        """Progress after a step."""

    def end_epoch(self, run: Run, clock: Clock, cut: bool, total: int) -> tuple[dict, int]:
        """BN re-estimation and validation at the end of epoch ``run.epoch`` (counted from 1 now): the
        epoch's history record and the planned steps."""

    def checkpoint_extra(self) -> dict[str, Any]:
        """What the checkpoint's JSON holds besides :meth:`Run.meta`."""

    def saved(self, run: Run, clock: Clock) -> None:
        """After rank 0 wrote the epoch's checkpoint (e.g. the usable model beside it)."""


def resume_run(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
               rng: random.Random) -> tuple[Run, dict[str, Any]] | None:
    """The :class:`Run` the checkpoint at ``path`` holds, restored into ``model``, ``opt`` and the
    generators, with the checkpoint's record; None when there is no checkpoint."""
    if not path.exists():
        return None
    meta = load_state(path, model, opt, gen, rng)
    run = Run()
    run.load(meta)
    return run, meta


def fit(task: Task, run: Run, ckpt: Path) -> bool:
    """Train ``task`` from ``run`` until its planned steps or epochs are done, writing ``ckpt`` after every
    epoch; False when a SIGTERM stopped it (a checkpoint written first)."""
    steps_per_epoch = math.ceil(task.n_train / task.batch_size)
    if task.whole_epochs:  # the epoch's first step, or the step a checkpoint inside the epoch stopped at
        run.step = run.epoch * steps_per_epoch + (math.ceil(run.offset / task.batch_size) if run.perm is not None else 0)
    clock = Clock(run)
    total = task.total_steps(run)
    old = _on_sigterm(run) if task.checkpoint_minutes is not None else None
    try:
        while run.epoch < task.epochs and run.step < total:
            total, stopped = _epoch(task, run, ckpt, clock, total)
            if stopped:
                return False
            if task.whole_epochs:
                run.step = run.epoch * steps_per_epoch
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return True


def _epoch(task: Task, run: Run, ckpt: Path, clock: Clock, total: int) -> tuple[int, bool]:
    """One epoch (or the rest of one, resumed); returns the planned steps and whether a SIGTERM (agreed
    by every rank) stopped it."""
    task.model.train()
    if run.perm is not None:  # resuming inside an epoch
        perm, first, before = torch.tensor(run.perm), run.offset, run.epoch_secs
    else:
        perm, first, before = torch.randperm(task.n_train, generator=task.gen), 0, 0.0
    clock.begin_epoch(before)
    task.begin_epoch(run, total)
    bs, n, cut = task.batch_size, task.n_train, False
    for k, s in enumerate(range(first, n, bs)):
        lr = warmup_cosine(run.step, task.lr, task.warmup, total, task.warmup if task.decay_after_warmup else 0)
        for g in task.opt.param_groups:
            g["lr"] = lr
        task.step(run, perm[s:s + bs], k)
        run.step += 1
        total = task.replan(run, clock, k, total)
        task.log_step(run, k, total, lr)
        if run.step >= total and s + bs < n:
            cut = True
            break
        if task.checkpoint_minutes is not None and _checkpoint_due(task, run, clock):
            run.perm, run.offset, run.epoch_secs = perm.tolist(), s + bs, clock.epoch_seconds()
            _save(task, run, ckpt)
            clock.checkpointed()
            if run.stop:
                print(f"stopped (SIGTERM) at epoch {run.epoch + 1} step {run.step}: resume with the same command",
                      flush=True)
                return total, True
    run.perm = None
    run.epoch += 1
    clock.evaluating()
    rec, total = task.end_epoch(run, clock, cut, total)
    run.history.append(rec)
    if task.progress:
        _log(json.dumps(rec))
    _save(task, run, ckpt)
    if task.dist.main:
        task.saved(run, clock)
    task.dist.barrier()
    clock.evaluated()
    return total, False


def _log(line: str) -> None:
    import sys

    from tqdm import tqdm

    tqdm.write(line)  # above a progress bar, if one is drawn
    sys.stdout.flush()


def _save(task: Task, run: Run, ckpt: Path) -> None:
    if task.dist.main:  # rank 0 writes; the others hold the same state
        save_state(ckpt, task.model, task.opt, task.gen, task.rng, {**run.meta(task.cfg), **task.checkpoint_extra()})


def _checkpoint_due(task: Task, run: Run, clock: Clock) -> bool:
    """A SIGTERM or the checkpoint clock; on any rank, then all ranks act on it together."""
    due = clock.since_checkpoint() > task.checkpoint_minutes * 60
    if task.dist.active:
        run.stop = task.dist.agree_max(float(run.stop)) > 0
        due = task.dist.agree_max(float(due)) > 0
    return run.stop or due


def _on_sigterm(run: Run):
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, frame):
        run.stop = True

    return signal.signal(signal.SIGTERM, stop)
