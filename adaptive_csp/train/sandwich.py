"""Training one set of weights for every level: the sandwich rule with in-place distillation.

Every step (after ``full_only_epochs`` of plain training of the full level, as OFA's progressive
shrinking starts from a trained full network):

* the full level learns from the labels (label-smoothed cross-entropy, weight 1);
* the cheapest level (every stage's blocks off) and ``n_random`` random levels learn from the full
  level's detached soft predictions (in-place distillation, US-Nets), each weighted ``kd_weight``;
* random levels draw each stage's block count and split ratio independently, with more blocks more
  likely (``depth_bias``) so the blocks keep learning real features instead of staying identities.

``static_level`` trains a single level only (the individually trained baselines, same recipe).
Checkpoints are safetensors + JSON (no pickle) after every epoch, inside an epoch every
``checkpoint_minutes`` and on SIGTERM (the run then stops without a model file); ``resume=True``
continues from the last one, inside an epoch where it stopped, to the weights of an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from adaptive_csp.data.camera import camera_augment
from adaptive_csp.data.fashion_mnist import as_imageset, augment, load_split
from adaptive_csp.data.images import ImageSet, from_dataset, holdout
from adaptive_csp.levels import Level
from adaptive_csp.models import create_model
from adaptive_csp.models.net import ElasticNet
from adaptive_csp.train.distributed import SINGLE, Dist, sync_bn
from adaptive_csp.train.loop import (
    Clock,
    Run,
    epoch_end_eval,
    fit,
    param_groups,
    resolve_device,
    resume_run,
    sandwich_levels,
    start,
)

__all__ = ["TrainCfg", "train", "evaluate", "sample_level", "resolve_device", "train_meta", "plan_epochs",
           "resolve_cfg"]


class TrainCfg(BaseModel):
    """The training recipe.  Fields left at None are planned by :func:`resolve_cfg` from the data's size
    and from whether the run starts from trained weights (``init``); the resolved values are recorded."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field("csp_small", description="architecture preset (with init: the init model's)")
    init: str | None = Field(None, description="start from trained weights: 'pretrained' (the shipped "
                             "model), 'pretrained:NAME', or a checkpoint path; None: from scratch")
    init_head: Literal["probe", "random"] = Field("probe", description="with init: the new head fitted as a "
                                                  "linear probe on the source's features, or random")
    epochs: int | None = Field(None, ge=1, description="None: at least 30, and enough for min-steps "
                               "optimizer steps")
    min_steps: int = Field(500, ge=1, description="planned epochs give at least this many optimizer steps")
    batch_size: int | None = Field(None, ge=1, description="None: the power of two nearest to "
                                   "training images / 8, within 16 … 128")
    lr: float | None = Field(None, gt=0, description="None: 0.1 from scratch, 0.005 with init")
    weight_decay: float = Field(5e-4, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    warmup_epochs: float | None = Field(None, ge=0, description="linear warm-up of the rate; None: 1 epoch "
                                        "from scratch, 0.25 with init (the probed head needs little)")
    full_only_epochs: int | None = Field(None, ge=0, description="plain epochs of the full level before the "
                                         "sandwich; None: 3 from scratch, 0 with init")
    n_random: int = Field(2, ge=0)
    kd_weight: float = Field(1.0, ge=0)
    full_weight: float = Field(1.0, ge=0)  # weight of the full level's label loss in sandwich steps
    depth_bias: float = Field(1.0, ge=0)  # P(blocks = k) ∝ (k + 1) ** depth_bias
    static_level: list | dict | None = None  # train only this Level (list or {"width", "stages"}) — baselines
    seed: int = 0
    threads: int | None = None
    channels_last: bool = True
    subset: int | None = Field(None, ge=1)  # train on the first N images (smoke tests)
    data_dir: str | None = None  # Fashion-MNIST folder (default: the Debian package's)
    device: str = "auto"  # auto: CUDA when present, else the CPU
    camera_aug: bool = True  # camera photometrics + geometry (data/camera.py); False: shift + flip only
    calib_images: int = Field(2000, ge=1)  # training images for the per-epoch BN re-estimation
    val_fraction: float = Field(0.1, gt=0, lt=1)  # held out when a dataset comes without validation data
    sync_bn: bool = Field(True, description="under torchrun: batch norm over the global batch (every rank's "
                          "samples; equals one process) rather than each rank's own shard (faster on gloo)")
    budget_minutes: float | None = Field(None, gt=0, description="wall-clock cap over all resumes, "
                                         "transfer preparation included (see plan_epochs)")
    checkpoint_minutes: float = Field(10.0, gt=0, description="a resumable checkpoint inside an epoch this "
                                      "often, and one on SIGTERM before the run stops")


def resolve_cfg(cfg: TrainCfg, n_train: int) -> TrainCfg:
    """``cfg`` with every None planned from the training set's size ``n_train``:

    * ``batch_size``: the power of two nearest to ``n_train / 8``, within 16 … 128 (a folder of a few
      hundred images still gets several steps an epoch; Fashion-MNIST gets 128);
    * ``epochs``: at least 30, and enough that the run makes ``min_steps`` optimizer steps
      (``ceil(min_steps / steps_per_epoch)``), so a small folder trains as long as a large one needs;
    * ``lr``: 0.1 from scratch, 0.005 with ``init`` (fine-tuning trained features: at 0.02 the first
      steps' updates — gradient norms 10–23 on a new folder — undid the probed head and the run collapsed
      to chance on the README's walkthrough folder; at 0.005 it reached 100 %);
    * ``full_only_epochs``: 3 from scratch, 0 with ``init`` (the source already trains every level);
    * ``warmup_epochs``: 1 from scratch, 0.25 with ``init``.

    ``budget_minutes`` then shortens the planned epochs (:func:`plan_epochs`)."""
    if n_train < 1:
        raise ValueError("no training images")
    up: dict = {}
    bs = cfg.batch_size
    if bs is None:
        bs = int(min(128, max(16, 2 ** round(math.log2(max(1.0, n_train / 8))))))
        up["batch_size"] = bs
    if cfg.epochs is None:
        up["epochs"] = max(30, math.ceil(cfg.min_steps / math.ceil(n_train / bs)))
    if cfg.lr is None:
        up["lr"] = 0.005 if cfg.init else 0.1
    if cfg.full_only_epochs is None:
        up["full_only_epochs"] = 0 if cfg.init else 3
    if cfg.warmup_epochs is None:
        up["warmup_epochs"] = 0.25 if cfg.init else 1.0
    return cfg.model_copy(update=up)


def sample_level(model: ElasticNet, rng: random.Random, depth_bias: float) -> Level:
    """A random level: a width (uniform over the model's widths), then per stage a block count (more
    blocks more likely, ``depth_bias``) and a split ratio."""
    cfg = model.cfg
    width = rng.choice(cfg.widths) if len(cfg.widths) > 1 else 1.0
    stages = []
    for d in cfg.depths:
        weights = [(k + 1) ** depth_bias for k in range(d + 1)]
        b = rng.choices(range(d + 1), weights)[0]
        r = rng.choice(cfg.ratios) if b else cfg.split_ratio
        stages.append((r, b))
    return Level(stages, width)


@torch.no_grad()
def evaluate(model: ElasticNet, split, level, batch_size: int = 500, limit: int | None = None,
             dist: Dist = SINGLE) -> float:
    """Top-1 accuracy of ``model`` at ``level`` on ``split`` (an ImageSet or Fashion-MNIST Split; eval
    mode, prepared path, on the model's device and dtype).  In a process group (``dist``) each rank scores
    every ``world``-th batch and the counts are summed over the ranks."""
    was = model.training
    model.eval()
    p = next(model.parameters())
    n = len(split) if limit is None else min(limit, len(split))
    correct = 0
    for k, i in enumerate(range(0, n, batch_size)):
        if k % dist.world != dist.rank:
            continue
        x = split.normalized(slice(i, min(n, i + batch_size))).to(p.device, p.dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        correct += int((model(x, level).argmax(1).cpu() == split.labels[i:i + x.shape[0]]).sum())
    model.train(was)
    if dist.active:
        correct = int(dist.all_sum([correct])[0])
    return correct / max(1, n)


def plan_epochs(cfg: TrainCfg, history: list[dict], spent_before: float = 0.0) -> int:
    """How many epochs the run will have, re-planned after every epoch when ``cfg.budget_minutes`` is set.

    A learning-rate schedule that is cut off is not annealed: a run that must end by a deadline (a lent
    GPU, a night) is better off with a shorter schedule that ends at lr ≈ 0.  The plan is the epochs done
    plus as many more as the remaining budget holds at the last epoch's wall time (training + BN
    calibration + validation, ``history[i]["seconds"]``), at most ``cfg.epochs``; the cosine decay is then
    stretched over that many epochs.  An epoch after the full-only ones is costed at (2 + ``n_random``)
    full-only epochs, a conservative guess corrected one epoch later.  During training the plan is
    refined after every step at the measured step time (:func:`_budget_steps`): the cosine then decays over
    the steps the budget holds, and the last epoch may end early, at the step that fits.
    ``spent_before``: seconds spent
    outside the epochs (a transfer start's BN re-estimation and probe), charged to the budget.  ``cfg``
    must be resolved (:func:`resolve_cfg`).
    """
    done = len(history)
    if cfg.budget_minutes is None or not history:
        return cfg.epochs
    spent = spent_before + sum(float(r.get("seconds", 0.0)) for r in history)
    per = float(history[-1].get("seconds", 0.0))
    if cfg.static_level is None and done == cfg.full_only_epochs:
        per *= 2 + cfg.n_random
    more = int((cfg.budget_minutes * 60.0 - spent) // per) if per > 0 else cfg.epochs
    return max(done, min(cfg.epochs, done + max(0, more)))


def _soft_ce(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    return -(target_probs * F.log_softmax(logits, 1)).sum(1).mean()


def _data(cfg: TrainCfg, dataset, val_dataset) -> tuple[ImageSet, ImageSet]:
    """Training / validation ImageSets: the given datasets (validation: given, else a seeded split of
    ``cfg.val_fraction``), or Fashion-MNIST's train / val splits."""
    if dataset is None:
        tr = as_imageset(load_split("train", cfg.data_dir))
        va = as_imageset(load_split("val", cfg.data_dir))
    else:
        tr = from_dataset(dataset)
        if val_dataset is not None:
            va = from_dataset(val_dataset, class_names=tr.class_names, input_size=tr.input_size)
        else:
            va, tr = holdout(tr, cfg.val_fraction, cfg.seed)
        if va.class_names != tr.class_names or va.images.shape[1:] != tr.images.shape[1:]:
            raise ValueError("validation data must have the training data's classes, channels and size")
        va = ImageSet(va.images, va.labels, tr.class_names, tr.mean, tr.std, tr.info)
    if cfg.subset:
        tr = tr.take(slice(0, cfg.subset))
        va = va.take(slice(0, max(200, cfg.subset // 5)))
    return tr, va


def _batch(data: ImageSet, idx: torch.Tensor, cfg: TrainCfg, gen: torch.Generator) -> torch.Tensor:
    x = data.images[idx].float() / 255.0
    if cfg.camera_aug:
        x = camera_augment(x, gen)
    else:
        x = augment(x, gen)
    return data.normalize(x)


def _build(cfg: TrainCfg, train_set: ImageSet, val_set: ImageSet):
    """The model to train (fresh, or adapted from ``cfg.init``) and the data normalised for it."""
    names, c, size = train_set.class_names, train_set.in_chans, train_set.input_size
    if not cfg.init:
        return create_model(cfg.model, num_classes=len(names), in_chans=c, input_size=size), train_set, val_set, None
    from adaptive_csp.models.transfer import adapt_model, adapt_norm, load_init

    source, info = load_init(cfg.init)
    if "model" in cfg.model_fields_set and cfg.model != source.cfg.name:
        raise ValueError(f"--model {cfg.model} conflicts with --init {cfg.init} (a {source.cfg.name}): with "
                         "init the architecture is the init model's")
    model = adapt_model(source, len(names), c, size)
    pre = source.meta.get("preprocess") or {}
    if pre.get("mean") and pre.get("std"):  # the source's normalisation: its features see what they saw
        m, s = adapt_norm(list(pre["mean"]), list(pre["std"]), c)
        train_set, val_set = (ImageSet(d.images, d.labels, d.class_names, m, s, d.info) for d in (train_set, val_set))
    stem = "copied"
    if source.cfg.in_chans == 1 and c > 1:
        stem = f"grey kernel replicated over {c} channels, divided by {c}"
    elif c == 1 and source.cfg.in_chans > 1:
        stem = f"kernels summed over the source's {source.cfg.in_chans} channels"
    info.update({"stem": stem, "head": "new", "normalisation": "the source's" if pre.get("mean") else "the data's"})
    return model, train_set, val_set, info


def train(cfg: TrainCfg, out_dir: str | Path, resume: bool = True, progress: bool = True,
          dataset=None, val_dataset=None, command: str | None = None,
          on_step: Callable[[int, ElasticNet], None] | None = None) -> ElasticNet:
    """Train and return the model; ``out_dir/last.safetensors`` (+ .json) after every epoch.

    ``dataset``: any map-style Dataset of ``(image tensor, label)`` or an :class:`ImageSet` (default:
    Fashion-MNIST); the model's classes, input size, channels and normalisation come from it and land
    in ``model.meta`` for the runner's preprocessing.  ``cfg.init``: start from a trained model instead
    (:mod:`adaptive_csp.train.transfer`: stem adapted, new head, BN re-estimated; the source's
    normalisation kept), recorded in ``model.meta["train"]["init"]``.  ``command``: how this invocation
    was started; every invocation (first run and each resume) is listed in ``model.meta["train"]["runs"]``
    with its device, first epoch and init.  Fields of ``cfg`` left at None are planned by
    :func:`resolve_cfg`; ``model.meta["train"]["cfg"]`` holds the resolved recipe.  ``on_step(step,
    model)`` runs after every optimizer step (``step`` counts from 1 over the whole run).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank runs this with the same arguments and the ranks
    train as one process with the same global batch (``cfg.batch_size``), see
    :mod:`adaptive_csp.train.distributed`; rank 0 writes the files.  The epochs run in
    :func:`adaptive_csp.train.loop.fit`.
    """
    out, dist, device = start(out_dir, cfg.threads, cfg.device)  # torchrun: this rank's place and device
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    progress = progress and dist.main
    train_set, val_set = _data(cfg, dataset, val_dataset)
    cfg = resolve_cfg(cfg, len(train_set))
    model, train_set, val_set, init = _build(cfg, train_set, val_set)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=fmt)
    dist.broadcast_module(model)  # one starting point on every rank
    sync_bn(model, dist.active and cfg.sync_bn)
    opt = torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=0.9, nesterov=True)
    ckpt = out / "last.safetensors"
    got = resume_run(ckpt, model, opt, gen, rng) if resume else None
    run = got[0] if got is not None else Run(init=init)
    run.runs.append({"command": command, "device": str(device), "start_epoch": run.epoch, "init": cfg.init,
                     "world_size": dist.world, **({"rank_commands": dist.commands} if dist.active else {})})
    calib = [train_set.normalized(slice(i, min(cfg.calib_images, i + 250))).to(device)
             for i in range(0, min(cfg.calib_images, len(train_set)), 250)]
    if run.init is not None and run.epoch == 0 and "bn" not in run.init:
        from adaptive_csp.train.transfer import prepare_finetune

        run.init.update(prepare_finetune(model, train_set, calib, cfg.init_head))
        if progress:
            tqdm.write(json.dumps({"init": run.init}))
    task = _ClassifyTask(cfg, model, opt, (train_set, val_set, calib), (gen, rng, dist, device, fmt), progress,
                         on_step)
    finished = fit(task, run, ckpt)
    sync_bn(model, False)
    model.eval()
    model.meta.update(train_meta(train_set, cfg, run.history, device, run.runs, run.init))
    if not finished:  # a SIGTERM: the checkpoint holds the run, this model is not its result
        model.meta["train"]["stopped_at_step"] = run.step
    return model


class _ClassifyTask:
    """The classifier's part of :func:`adaptive_csp.train.loop.fit`: SGD steps of the sandwich rule with
    in-place distillation (see the module docstring), epoch-aligned steps, a budget re-planned by
    :func:`_budget_steps`, top-1 accuracy of the full and cheapest levels at every epoch end."""

    decay_after_warmup = True  # the cosine starts when the warm-up ends
    whole_epochs = True  # an epoch cut short by the budget is the run's last; a resume starts the next one

    def __init__(self, cfg: TrainCfg, model: ElasticNet, opt: torch.optim.Optimizer, data: tuple, env: tuple,
                 progress: bool, on_step: Callable | None) -> None:
        self.cfg, self.model, self.opt, self.progress, self.on_step = cfg, model, opt, progress, on_step
        self.train_set, self.val_set, self.calib = data
        self.gen, self.rng, self.dist, self.device, self.fmt = env
        self.n_train, self.batch_size, self.epochs, self.lr = len(self.train_set), cfg.batch_size, cfg.epochs, cfg.lr
        self.checkpoint_minutes = cfg.checkpoint_minutes  # and on SIGTERM (train.loop.fit)
        self.spe = math.ceil(self.n_train / cfg.batch_size)
        self.warmup = int(cfg.warmup_epochs * self.spe)
        self.static = Level.parse(cfg.static_level) if cfg.static_level else None
        if self.static is not None:
            model.validate(self.static)
        self.full, self.cheap = model.full_level(), model.cheapest_level()
        self.before, self.planned, self.cut = 0.0, cfg.epochs, None

    def total_steps(self, run: Run) -> int:
        self.before = float((run.init or {}).get("seconds", 0.0))  # a transfer start's preparation
        self.planned = plan_epochs(self.cfg, run.history, self.before)
        return self.planned * self.spe  # the steps the cosine decays over (a budget may cut it)

    def begin_epoch(self, run: Run, total: int) -> None:
        self.sandwich = self.static is None and run.epoch >= self.cfg.full_only_epochs
        self.bar = tqdm(total=self.spe, desc=f"epoch {run.epoch + 1}/{self.planned}", disable=not self.progress,
                        mininterval=2.0)
        self.t0, self.seen, self.loss_sum, self.cut = time.perf_counter(), 0, 0.0, None

    def step(self, run: Run, idx: torch.Tensor, k: int) -> None:
        cfg, dist, model = self.cfg, self.dist, self.model
        # every rank augments the whole global batch (the same draws) and keeps its shard of it
        x = dist.shard(_batch(self.train_set, idx, cfg, self.gen)).to(self.device).contiguous(memory_format=self.fmt)
        y = dist.shard(self.train_set.labels[idx]).to(self.device)
        self.opt.zero_grad(set_to_none=True)
        logits = model(x, self.static if self.static is not None else self.full)
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        (loss * (cfg.full_weight if self.sandwich else 1.0)).backward()
        if self.sandwich:  # the other levels learn the full level's soft predictions
            soft = F.softmax(logits.detach(), 1)
            for lv in sandwich_levels(model, cfg.n_random, lambda: sample_level(model, self.rng, cfg.depth_bias))[1:]:
                (cfg.kd_weight * _soft_ce(model(x, lv), soft)).backward()
        dist.average_gradients(model.parameters(), len(y), len(idx))
        self.opt.step()
        if self.on_step is not None:
            self.on_step(run.step + 1, model)
        self.seen += len(y)
        self.loss_sum += float(loss.detach()) * len(y)

    def replan(self, run: Run, clock: Clock, k: int, total: int) -> int:
        if self.cfg.budget_minutes is None:
            return total
        elapsed = self.dist.agree_max(clock.epoch_seconds())  # every rank plans the same steps
        done = run.step - run.epoch * self.spe  # this epoch's steps, those before a resume included (as elapsed)
        self.planned, total = _budget_steps(self.cfg, run.history, self.before, elapsed, done, self.spe, run.epoch)
        last = total - run.epoch * self.spe
        self.cut = last if last < self.spe else None  # this epoch ends early, after `cut` steps
        return total

    def log_step(self, run: Run, k: int, total: int, lr: float) -> None:
        self.bar.update(1)
        if k % 20 == 0:
            self.bar.set_postfix(loss=f"{self.loss_sum / self.seen:.3f}",
                                 ips=f"{self.seen / (time.perf_counter() - self.t0):.0f}")

    def end_epoch(self, run: Run, clock: Clock, cut: bool, total: int) -> tuple[dict, int]:
        self.bar.close()
        dist, loss_sum, seen = self.dist, self.loss_sum, self.seen
        if dist.active:  # the epoch's loss and images over every rank; its time the slowest rank's
            loss_sum, seen = (float(v) for v in dist.all_sum([loss_sum, seen]))
        train_s = dist.agree_max(clock.epoch_seconds())
        rec = {"epoch": run.epoch, "loss": loss_sum / max(1, seen),  # seen: since a resume inside the epoch
               "img_per_s": seen / max(1e-9, train_s - clock.before),
               "steps": self.spe if self.cut is None else self.cut, "train_seconds": train_s}
        if self.cut is not None:
            rec["cut_by_budget"] = True
        evals = {"val_full": self.static or self.full} if self.static is not None else \
            {"val_full": self.full, "val_cheapest": self.cheap}
        rec.update(epoch_end_eval(self.model, evals, self.calib,
                                  lambda lv: evaluate(self.model, self.val_set, lv, dist=dist), dist))
        rec["seconds"] = dist.agree_max(clock.epoch_seconds())
        if self.cfg.budget_minutes is None:
            self.planned = plan_epochs(self.cfg, [*run.history, rec], self.before)
            total = self.planned * self.spe
        elif self.cut is not None:
            self.planned = run.epoch
        rec["planned_epochs"] = self.planned
        return rec, total

    def checkpoint_extra(self) -> dict:
        return {}

    def saved(self, run: Run, clock: Clock) -> None:
        pass


def _overhead(history: list[dict], step_s: float, steps_per_epoch: int) -> float:
    last = history[-1] if history else {}
    if "train_seconds" in last:
        return max(0.0, float(last["seconds"]) - float(last["train_seconds"]))
    return 0.2 * step_s * steps_per_epoch


def _budget_steps(cfg: TrainCfg, history: list[dict], before: float, elapsed: float, done: int,
                  steps_per_epoch: int, epoch: int) -> tuple[int, int]:
    """(epochs, total optimizer steps) the budget holds, re-planned during an epoch at its measured step
    time: the rest of this epoch, whole epochs, then a last partial epoch of at least a quarter epoch
    (each epoch also pays its validation: the last epoch's, else a fifth of its training time); a full-only
    epoch costs later sandwich steps at (2 + ``n_random``) of its own; at most ``cfg.epochs``."""
    step_s = elapsed / done
    ov = _overhead(history, step_s, steps_per_epoch)
    t = cfg.budget_minutes * 60.0 - before - sum(float(r.get("seconds", 0.0)) for r in history) - elapsed
    rest = steps_per_epoch - done
    if t < rest * step_s + ov:
        return epoch + 1, epoch * steps_per_epoch + done + max(0, int((t - ov) // step_s))
    t -= rest * step_s + ov
    if cfg.static_level is None and epoch < cfg.full_only_epochs:  # later sandwich steps cost more
        step_s *= 2 + cfg.n_random
    per = steps_per_epoch * step_s + ov
    whole = int(t // per)
    epochs, total = epoch + 1 + whole, (epoch + 1 + whole) * steps_per_epoch
    k = int((t - whole * per - ov) // step_s)
    if k >= max(1, steps_per_epoch // 4):
        epochs, total = epochs + 1, total + min(k, steps_per_epoch)
    if epochs >= cfg.epochs:
        return cfg.epochs, cfg.epochs * steps_per_epoch
    return epochs, total


def train_meta(data: ImageSet, cfg: TrainCfg, history: list, device: torch.device,
               runs: list | None = None, init: dict | None = None) -> dict:
    """What a trained model's JSON carries: classes, preprocessing, data provenance, the recipe (and, for
    a transfer start, ``train.init``: the source model, its file's SHA-256, what was adapted)."""
    rec = {"cfg": cfg.model_dump(), "history": history, "device": str(device), "runs": runs or []}
    if init:
        rec["init"] = init
    return {"class_names": list(data.class_names), "preprocess": data.preprocess_meta(), "data": dict(data.info),
            "train": rec}
