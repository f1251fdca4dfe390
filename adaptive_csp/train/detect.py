"""Train one detector for every level: the sandwich rule over detector levels, resumable, any device.

Each step trains the full level, the cheapest level and ``n_random`` random levels on the same batch
(US-Nets' sandwich rule) against the ground truth — no in-place distillation: a detector's soft targets
would need the teacher's assignment per point, and the synthetic labels are exact.  AdamW with warm-up and
a cosine schedule; random horizontal flips on top of the scenes' own camera photometrics.  After every
epoch the full and cheapest levels get re-estimated BN statistics and are evaluated on the validation
scenes (COCO mAP); ``last.safetensors`` (+ JSON, no pickle) lets an interrupted run resume, and
``model.safetensors`` is the usable detector (``load_detector``).

``init_backbone`` (``--init-backbone csp_wide_fmnist | PATH``) starts the backbone from a trained classifier
of the same family (:mod:`adaptive_csp.detect.transfer`: grey stem replicated to RGB, the classifier's
normalisation, BN re-estimated on the training scenes before the first step).  ``budget_minutes`` caps
the wall time over all resumes: the cosine decays over the steps the budget holds at the measured step
time, and the last epoch may end early.  A checkpoint is also written inside an epoch every
``checkpoint_minutes`` and on SIGTERM (``kill PID``), so a stopped run resumes where it was, with any
``--threads`` or ``--device``.

Data: the synthetic Fashion-MNIST scenes (:mod:`adaptive_csp.detect.scenes`; ``scenes="belt"``: the square
belt scenes, ``"varied"``: scenes of every kind, letterboxed, one background family held out; train items
for training, validation items for validation) or your own COCO-format folder (``coco_images`` + ``coco_json``; a seeded
hold-out unless ``val_images`` + ``val_json`` are given).
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from adaptive_csp.data.detset import DetSet
from adaptive_csp.data.images import channel_stats
from adaptive_csp.detect.boxes import postprocess
from adaptive_csp.detect.checkpoint import save_detector
from adaptive_csp.detect.loss import distill_loss, fcos_loss
from adaptive_csp.detect.model import Detector, get_detector_cfg
from adaptive_csp.levels import Level
from adaptive_csp.train.distributed import SINGLE, Dist, calibrate_bn, sync_bn
from adaptive_csp.train.loop import (
    HISTORY_KEY,
    OLD_HISTORY_KEYS,
    Clock,
    Run,
    epoch_end_eval,
    fit,
    param_groups,
    resume_run,
    sandwich_levels,
    start,
    train_record,
)

__all__ = ["DetTrainCfg", "train_detector", "evaluate_detector", "detect_batches", "sample_det_level", "detect_data"]


class DetTrainCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = "csp_det"
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_steps: int = Field(300, ge=0)
    n_random: int = Field(2, ge=0)
    static_level: list | dict | None = None  # train only this Level — the "trained alone" baseline
    train_scenes: int = Field(16000, ge=1)
    val_scenes: int = Field(500, ge=1)
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    calib_images: int = Field(256, ge=1)  # training images for the per-epoch BN re-estimation
    coco_images: str | None = None  # your own data (COCO format) instead of the synthetic scenes
    coco_json: str | None = None
    val_images: str | None = None
    val_json: str | None = None
    val_fraction: float = Field(0.1, gt=0, lt=1)
    input_size: int | None = Field(None, ge=16)  # resize your own images to this square side
    scenes: Literal["belt", "varied"] = "belt"  # synthetic scenes: square belt / every kind, letterboxed
    init_backbone: str | None = None  # a classifier (shipped name or checkpoint path) to start the backbone from
    init: str | None = None  # a detector (shipped name or checkpoint path) to continue from: weights, ladder, meta
    cls_ce: float = Field(0.0, ge=0)  # weight of the softmax cross-entropy on the positives' class logits
    kd: float = Field(0.0, ge=0)  # weight of in-place distillation: lower levels learn the full level's scores
    budget_minutes: float | None = Field(None, gt=0)  # wall-clock cap over all resumes
    checkpoint_minutes: float = Field(10.0, gt=0)  # a resumable checkpoint inside an epoch this often
    sync_bn: bool = True  # under torchrun: batch norm over the global batch (False: each rank's shard)


def detect_data(cfg: DetTrainCfg) -> tuple[DetSet, DetSet]:
    """The (train, validation) sets a config trains and validates on: COCO-format folders or generated scenes."""
    if cfg.coco_images or cfg.coco_json:
        from adaptive_csp.data.coco import load_coco

        if not (cfg.coco_images and cfg.coco_json):
            raise ValueError("own data needs both coco_images (a folder) and coco_json (its annotations)")
        train = load_coco(cfg.coco_images, cfg.coco_json, cfg.input_size)
        if cfg.val_images and cfg.val_json:
            return train, load_coco(cfg.val_images, cfg.val_json, cfg.input_size)
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
        nv = max(1, int(len(train) * cfg.val_fraction))
        if nv >= len(train):
            raise ValueError(f"{len(train)} images are too few to hold out a validation set")
        return train.take(perm[nv:]), train.take(perm[:nv])
    from adaptive_csp.detect.scenes import fashion_mnist_scenes, varied_cfg

    scene = None
    if cfg.scenes == "varied":
        scene = varied_cfg(get_detector_cfg(cfg.model).input_size[0])
    return (fashion_mnist_scenes("train", cfg.train_scenes, cfg.seed, scene),
            fashion_mnist_scenes("val", cfg.val_scenes, cfg.seed + 1, scene))


def _normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (images.float() / 255.0 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def detect_batches(data: DetSet, model: Detector, batch_size: int = 64, limit: int | None = None):
    """``(normalised images, index slice)`` batches of ``data`` as the model's metadata says (eval order)."""
    pre = model.meta["preprocess"]
    mean, std = torch.tensor(pre["mean"]), torch.tensor(pre["std"])
    n = len(data) if limit is None else min(limit, len(data))
    for s in range(0, n, batch_size):
        yield _normalize(data.images[s:s + batch_size], mean, std), slice(s, min(n, s + batch_size))


@torch.no_grad()
def evaluate_detector(model: Detector, data: DetSet, level: Any, limit: int | None = None,
                      score_thresh: float = 0.05, dist: Dist = SINGLE) -> dict[str, float]:
    """COCO mAP (pycocotools) of ``level`` on ``data`` through the prepared (eval) path.  In a process
    group (``dist``) each rank predicts every ``world``-th batch; the predictions are gathered in order
    and every rank scores all of them (the same numbers everywhere)."""
    from adaptive_csp.detect.metrics import coco_map

    was = model.training
    model.eval()
    p = next(model.parameters())
    mine: dict[int, list] = {}
    try:
        for k, (x, _) in enumerate(detect_batches(data, model, limit=limit)):
            if k % dist.world != dist.rank:
                continue
            out = model(x.to(p.device, p.dtype), level)
            mine[k] = [tuple(t.float().cpu() for t in r) for r in postprocess(out, score_thresh, 0.6, 100, multi_label=True)]
    finally:
        model.train(was)
    if dist.active:
        parts: list[Any] = [None] * dist.world
        torch.distributed.all_gather_object(parts, mine)
        mine = {k: v for part in parts for k, v in part.items()}
    preds = [r for k in sorted(mine) for r in mine[k]]
    gt = data if limit is None else data.take(slice(0, len(preds)))
    return coco_map(gt, preds)


def sample_det_level(model: Detector, rng: random.Random) -> Level:
    cfg = model.cfg
    w = rng.choice(cfg.widths)
    return Level([(rng.choice(cfg.ratios), rng.randint(0, d)) for d in cfg.depths], w)


def _flip(x: torch.Tensor, boxes: list[torch.Tensor], gen: torch.Generator):
    flip = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    w = x.shape[-1]
    out = [torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1) if f else b for b, f in zip(boxes, flip.tolist())]
    return x, out


def _setup(cfg: DetTrainCfg, train: DetSet) -> tuple[Detector, dict | None]:
    """The detector, its preprocessing metadata and, with ``init_backbone``, the classifier's weights."""
    model = Detector(get_detector_cfg(cfg.model, num_classes=train.num_classes, input_size=train.input_size))
    mean, std = channel_stats(train.images[:2000])
    pre: dict[str, Any] = {"input_size": list(train.input_size), "in_chans": 3, "color": "rgb",
                           "mean": list(mean), "std": list(std)}
    if cfg.scenes == "varied" and not cfg.coco_images:
        pre.update(resize="letterbox", pad=0.0)  # the scenes are letterboxed frames: the runner must do the same
    model.meta.update(task="detect", class_names=list(train.class_names), preprocess=pre)
    if cfg.init:
        if cfg.init_backbone:
            raise ValueError("give init (a detector to continue from) or init_backbone, not both")
        return _continue_from(cfg, model)
    init = None
    if cfg.init_backbone:
        from adaptive_csp.detect.transfer import init_backbone
        from adaptive_csp.models.transfer import load_init

        clf, init = load_init(cfg.init_backbone)
        init.update(init_backbone(model, clf))
    return model, init


def _continue_from(cfg: DetTrainCfg, fresh: Detector) -> tuple[Detector, dict]:
    """``init``: a trained detector to go on from (weights, per-level BN, ladder, metadata), checked against
    the architecture and classes this run builds.  Its record names it and how it was trained."""
    from adaptive_csp.models.factory import checkpoint_path, pretrained
    from adaptive_csp.util.files import sha256_file

    model = pretrained(cfg.init)
    if not isinstance(model, Detector) or model.cfg != fresh.cfg:
        what = f"a {model.cfg.name} for {getattr(model.cfg, 'num_classes', '?')} classes" if isinstance(model, Detector) \
            else "not a detector"
        raise ValueError(f"init {cfg.init!r} is {what}; this run builds a {fresh.cfg.name} for "
                         f"{fresh.cfg.num_classes} classes at {fresh.cfg.input_size}")
    prior = train_record(model.meta)
    model.meta = {k: v for k, v in model.meta.items() if k not in (HISTORY_KEY, *OLD_HISTORY_KEYS)}
    return model.train(), {"init": str(cfg.init), "init_command": prior.get("command"),
                           "init_epochs": prior.get("epochs"), "init_sha256": sha256_file(checkpoint_path(cfg.init))}


def _planned_steps(cfg: DetTrainCfg, run: Run, steps_per_epoch: int, step_s: float, epoch_elapsed: float) -> int:
    """Total optimizer steps of the run: ``epochs`` worth, or what ``budget_minutes`` holds at ``step_s``
    per step, each remaining epoch end paying the last one's evaluation time (else a fifth of an epoch)."""
    full = cfg.epochs * steps_per_epoch
    if cfg.budget_minutes is None or step_s <= 0:
        return full
    last = run.history[-1] if run.history else {}
    ov = (float(last["seconds"]) - float(last.get("train_seconds", last["seconds"]))) if last \
        else 0.2 * step_s * steps_per_epoch
    left = cfg.budget_minutes * 60.0 - run.spent() - epoch_elapsed
    n = left / step_s
    for _ in range(2):  # the epoch ends inside the steps left, each with its evaluation
        ends = 1 + int((run.step % steps_per_epoch + n) // steps_per_epoch)
        n = (left - ends * ov) / step_s
    return max(run.step + 1 if left > ov else run.step, min(full, run.step + int(max(0.0, n))))


def train_detector(cfg: DetTrainCfg, out_dir: str | Path, resume: bool = True, progress: bool = True,
                   data: tuple[DetSet, DetSet] | None = None, command: str | None = None) -> Detector:
    """Train (or resume) into ``out_dir``; returns the detector with calibrated BN at full/cheapest.

    ``command``: how this invocation was started; every invocation (first run and each resume) is listed
    with its device and first epoch under ``train.runs`` in the saved model's JSON (and in the returned
    model's ``meta["train"]``).  The epochs run in :func:`adaptive_csp.train.loop.fit`."""
    out, dist, dev = start(out_dir, cfg.threads, cfg.device)  # torchrun: this rank's place and device
    progress = progress and dist.main
    train, val = data if data is not None else detect_data(cfg)
    model, init = _setup(cfg, train)
    model.to(dev)
    dist.broadcast_module(model)  # one starting point on every rank (the detector's init is not seeded)
    sync_bn(model, dist.active and cfg.sync_bn)
    static = model.validate(Level.parse(cfg.static_level)) if cfg.static_level is not None else None
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    last = out / "last.safetensors"
    got = resume_run(last, model, opt, gen, rng) if resume else None
    if got is not None:
        run, meta = got
        model.meta["preprocess"] = meta["preprocess"]
        if dist.main:
            print(f"resumed from {last} at epoch {run.epoch} step {run.step}", flush=True)
    else:
        run = Run(init=_start_backbone(model, train, init, cfg, progress))
    run.runs.append({"command": command, "device": str(dev), "threads": torch.get_num_threads(),
                     "start_epoch": run.epoch, "start_step": run.step, "world_size": dist.world,
                     **({"rank_commands": dist.commands} if dist.active else {})})
    task = _DetectTask(cfg, model, opt, (train, val), (gen, rng, dist, dev), static, progress, out)
    fit(task, run, last)
    sync_bn(model, False)
    model.meta[HISTORY_KEY] = _record(cfg, run, dev, time.perf_counter() - task.t_start)
    return model.eval()


def _start_backbone(model: Detector, train: DetSet, init: dict | None, cfg: DetTrainCfg, progress: bool):
    """With ``init_backbone``: the backbone's BN re-estimated on the training scenes before the first step
    (its record, with the seconds it took, is the run's ``init``)."""
    if init is None or cfg.init:  # nothing to re-estimate when continuing from a trained detector
        if init is not None and progress:
            print(json.dumps({"init": init}), flush=True)
        return init
    t = time.time()
    from adaptive_csp.detect.transfer import reestimate_backbone_bn

    reestimate_backbone_bn(model, [x for x, _ in detect_batches(train, model, 64, cfg.calib_images)])
    init["seconds"] = round(time.time() - t, 1)
    if progress:
        print(json.dumps({"init_backbone": init}), flush=True)
    return init


class _DetectTask:
    """The detector's part of :func:`adaptive_csp.train.loop.fit`: AdamW steps of the sandwich rule on
    the ground truth (:func:`_step`), random flips, the warm-up multiplying a cosine over the whole run, a
    budget re-planned by :func:`_planned_steps`, checkpoints inside epochs, COCO mAP at every epoch end."""

    decay_after_warmup = False  # the warm-up ramp multiplies a cosine over the whole run
    whole_epochs = False  # the step count is the optimizer's: a cut epoch ends the run, a resume goes on

    def __init__(self, cfg: DetTrainCfg, model: Detector, opt: torch.optim.Optimizer, data: tuple, env: tuple,
                 static: Level | None, progress: bool, out: Path) -> None:
        self.cfg, self.model, self.opt, self.static, self.progress, self.out = cfg, model, opt, static, progress, out
        self.train, self.val = data
        self.gen, self.rng, self.dist, self.dev = env
        self.n_train, self.batch_size, self.epochs, self.lr = len(self.train), cfg.batch_size, cfg.epochs, cfg.lr
        self.warmup, self.checkpoint_minutes = cfg.warmup_steps, cfg.checkpoint_minutes
        self.spe = math.ceil(self.n_train / cfg.batch_size)
        self.mean, self.std = (torch.tensor(model.meta["preprocess"][k]) for k in ("mean", "std"))
        self.t_start = time.perf_counter()
        self.n_levels = 1

    def total_steps(self, run: Run) -> int:
        return _planned_steps(self.cfg, run, self.spe, 0.0, 0.0)

    def begin_epoch(self, run: Run, total: int) -> None:
        self.t0, self.seen, self.agg = time.perf_counter(), 0, {}

    def step(self, run: Run, idx: torch.Tensor, k: int) -> None:
        train, dist = self.train, self.dist
        x = _normalize(train.images[idx], self.mean, self.std)
        x, boxes = _flip(x, [train.boxes[i] for i in idx.tolist()], self.gen)  # the global batch's draws
        labels = [train.labels[i] for i in idx.tolist()]
        x, boxes, labels = dist.shard(x).to(self.dev), boxes[dist.rank::dist.world], labels[dist.rank::dist.world]
        levels = sandwich_levels(self.model, self.cfg.n_random, lambda: sample_det_level(self.model, self.rng),
                                 self.static)
        self.n_levels = len(levels)
        _step(self.model, self.opt, x, boxes, labels, levels, self.agg, dist, self.cfg.cls_ce, self.cfg.kd)
        self.seen += len(idx)

    def replan(self, run: Run, clock: Clock, k: int, total: int) -> int:
        done_here = run.step - clock.step0
        if done_here < 5:
            return total
        # every rank plans with the slowest rank's times: the same steps everywhere
        return _planned_steps(self.cfg, run, self.spe, self.dist.agree_max(clock.train_seconds() / done_here),
                              self.dist.agree_max(clock.epoch_seconds()))

    def log_step(self, run: Run, k: int, total: int, lr: float) -> None:
        if self.progress and run.step % 50 == 0:
            n = 50 * self.n_levels
            print(f"epoch {run.epoch + 1} step {run.step}/{total} lr {lr:.2e} " +
                  " ".join(f"{k} {v / n:.3f}" for k, v in self.agg.items()) +
                  f" {self.seen / (time.perf_counter() - self.t0):.0f} img/s", flush=True)
            self.agg = {}

    def end_epoch(self, run: Run, clock: Clock, cut: bool, total: int) -> tuple[dict, int]:
        train_secs = clock.epoch_seconds()
        rec = _epoch_end(self.model, self.train, self.val, self.cfg, self.static, run.epoch,
                         self.dist.agree_max(train_secs), self.dist)
        rec.update(train_seconds=round(train_secs, 1), steps=run.step, seconds=round(clock.epoch_seconds(), 1))
        if cut:
            rec["cut_by_budget"] = True
        return rec, total

    def checkpoint_extra(self) -> dict:
        return {"preprocess": self.model.meta["preprocess"]}

    def saved(self, run: Run, clock: Clock) -> None:
        save_detector(self.model, self.out / "model",
                      **{HISTORY_KEY: _record(self.cfg, run, self.dev, time.perf_counter() - self.t_start)})


def _step(model: Detector, opt: torch.optim.Optimizer, x: torch.Tensor, boxes: list, labels: list,
          levels: list[Level], agg: dict[str, float], dist: Dist = SINGLE, cls_ce: float = 0.0,
          kd: float = 0.0) -> None:
    """One sandwich step: every level's loss on the same batch, gradients summed, one update.  With
    ``kd`` > 0 the levels after the first (the full level, :func:`sandwich_levels`) also learn its detached
    score maps (:func:`adaptive_csp.detect.loss.distill_loss`, US-Nets' in-place distillation).  Across
    ranks the loss's normalisers are the ranks' mean (:func:`adaptive_csp.detect.loss.fcos_loss`) and the
    gradients are averaged once, before clipping."""
    opt.zero_grad(set_to_none=True)
    norm = None
    if dist.active:
        def norm(n: float, c: float) -> tuple[float, float]:
            t = dist.all_sum([n, c]) / dist.world
            return float(t[0]), float(t[1])
    teacher: list[torch.Tensor] | None = None
    n_pos = 1.0
    for lv in levels:
        maps = model.raw(x, lv)
        loss, parts = fcos_loss(maps, boxes, labels, model.cfg, norm, cls_ce)
        if teacher is not None:
            l_kd = distill_loss(maps, teacher, n_pos)
            loss = loss + kd * l_kd
            parts["kd"] = l_kd.item()
        elif kd > 0 and len(levels) > 1:
            teacher, n_pos = [m.detach() for m in maps], parts["pos"] * len(boxes)
            if norm is not None:  # the ranks' mean, as for the ground-truth terms
                n_pos = norm(n_pos, 0.0)[0]
        loss.backward()
        for k, v in parts.items():
            agg[k] = agg.get(k, 0.0) + v
    dist.average_gradients(model.parameters(), 1, dist.world)  # the loss is normalised globally already
    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    opt.step()


def _epoch_end(model: Detector, train: DetSet, val: DetSet, cfg: DetTrainCfg, static: Level | None,
               epoch: int, secs: float, dist: Dist = SINGLE) -> dict:
    levels = {"static": static} if static is not None else {"full": model.full_level(),
                                                              "cheapest": model.cheapest_level()}
    calib = [x for x, _ in detect_batches(train, model, 64, cfg.calib_images)]
    rec: dict[str, Any] = {"epoch": epoch, "seconds": round(secs, 1)}
    for name, m in epoch_end_eval(model, levels, calib, lambda lv: evaluate_detector(model, val, lv, dist=dist),
                                  dist).items():
        rec[f"{name}_map50"], rec[f"{name}_map"] = round(m["map50"], 4), round(m["map"], 4)
    # the ladder's other rungs too: the saved file runs each with statistics of these weights, not of
    # the ones it started from (--init) or the levels' mixed running statistics
    done = {lv.key for lv in levels.values()}
    others = [lv for lv in model.levels if lv.key not in done]
    if static is None and others:
        calibrate_bn(model, others, calib, dist)
    return rec


def _record(cfg: DetTrainCfg, run: Run, dev: torch.device, secs: float) -> dict:
    """The training record of the model's JSON (``meta["train"]``): how to run it again, the history and
    every invocation."""
    return {
        "command": "adaptive-csp train-detector " + " ".join(
            f"--{k.replace('_', '-')} {json.dumps(v) if not isinstance(v, str) else v}"
            for k, v in cfg.model_dump().items() if v is not None and v != DetTrainCfg.model_fields[k].default),
        "device": str(dev), "epochs": len(run.history), "steps": run.step, "seconds_this_run": round(secs),
        "history": run.history, "runs": run.runs, ("init" if cfg.init else "init_backbone"): run.init}
