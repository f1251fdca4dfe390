"""Ladder profiling: measure candidate levels on THIS device and on the model's own validation images, keep
the Pareto-optimal ones (latency ↓, accuracy ↑) as the model's ladder, recalibrate BN for them, store.

**Data.**  ``adaptive-csp profile MODEL`` reads the images the model was trained on: the folder its JSON
records (``data.source``, written by ``train --data``; the validation folder of ``train --val``, else the
same seeded split training held out), at the model's input size, colour and normalisation
(``preprocess``).  ``--data`` / ``--val`` override it; a recorded folder that is missing is an error naming
it.  A Fashion-MNIST model profiles on Fashion-MNIST.

**Screening rule (fast by default).**  Every candidate is *screened*: BN re-estimated on 32 training
images (``--screen-calib``), accuracy on a seeded 128 validation images (``--screen-val``), and a quick
batch-1 eager-torch latency (2 interleaved rounds, for ranking only).  Only candidates *near the screened
front* are *refined* — those no candidate at most as slow out-scored by more than ``--screen-margin``
points; the strict front first, the others spread in latency, at most ``--refine`` — with BN from
``--calib-images`` training images, accuracy on the whole validation split, and latency measured once on
every engine and batch below.  The ladder is chosen from the refined candidates.  Of candidates tied in
accuracy the cheaper is kept.  When the strict front has fewer than ``--min-rungs`` rungs (e.g. every
candidate at 100 %), rungs within ``--tolerance`` points of the front are added, spread in log latency,
each no less accurate than the rung below it (:func:`spread`).

Refined candidates' latency is measured on the engines given (default: the one the runner picks, ``auto`` — ONNX Runtime on a
CPU where installed — and eager torch), at batch 1 and batch 32, with ``latency_threads`` threads, by
:func:`adaptive_csp.runtime.calibrate.measure`: warm, interleaved round-robin over every (engine,
candidate) pair, the fastest of several rounds (its module docstring says why) — so drift of the machine
hits every candidate alike.  Every
rung stores each measurement in ``Rung.latency`` (``"ort:b1"``, ``"ort:b32"``, ``"torch:b1"``,
``"torch:b32"``); ``latency_ms`` / ``latency_ms_b32`` stay the eager-torch ones, as before.

The Pareto front is kept per (engine, batch): the ladder is every rung on the front of at least one
measured key (each key's front thinned to ``max_rungs``), ordered by batch-32 torch latency, the full level
last; :meth:`LevelLadder.view` then offers only one key's front (a rung dominated at batch 1 is not offered
at batch 1).  Accuracy is measured after per-level BN re-estimation on training images.

``--latency-only`` re-measures the latencies of an existing ladder (no accuracy, no BN: seconds) and writes
them into the model's JSON (the weights file is not touched) or, with ``--latency-cache``, into this
device's latency cache (:class:`adaptive_csp.runtime.calibrate.LatencyCache`, what ``runner.calibrate()``
reads).
"""

from __future__ import annotations

import functools
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from adaptive_csp.data.images import ImageSet
from adaptive_csp.levels import Level, LevelLadder, Rung, engine_key
from adaptive_csp.models.net import ElasticNet
from adaptive_csp.train.loop import train_record
from adaptive_csp.util.timing import interleaved_medians

__all__ = ["candidate_levels", "subsample", "measure_latency", "measure_engines", "latency_only", "pareto", "thin",
           "monotone", "union_front", "profile", "ProfileOptions", "profile_data", "plot"]

TORCH_B1, TORCH_B32 = "torch:b1", "torch:b32"  # what latency_ms / latency_ms_b32 hold


def candidate_levels(model: ElasticNet) -> list[Level]:
    """The levels profiling measures, at every width of the model: every per-stage depth vector at the
    static split ratio, plus every uniform depth at the other split ratios (blocks-off stages canonical).
    With one width this is every depth vector × every shared ratio, as before widths existed."""
    cfg = model.cfg
    out: dict[Level, None] = {}
    many = len(cfg.widths) > 1
    for w in cfg.widths:
        for depths in itertools.product(*(range(d + 1) for d in cfg.depths)):
            uniform = len(set(depths)) == 1
            for r in cfg.ratios:
                if many and r != cfg.split_ratio and not uniform:
                    continue
                out[Level([(r if b else cfg.split_ratio, b) for b in depths], w)] = None
    return list(out)


def subsample(cands: list[Level], model: ElasticNet, limit: int | None) -> list[Level]:
    """At most ``limit`` candidates, evenly spread over the list, always keeping each width's blocks-off
    and full-depth levels (the ends of every width's range)."""
    if not limit or len(cands) <= limit:
        return cands
    cfg = model.cfg
    off = [(cfg.split_ratio, 0)] * len(cfg.depths)
    deep = [(cfg.split_ratio, d) for d in cfg.depths]
    anchors = [Level(stages, w) for w in cfg.widths for stages in (off, deep)]
    rest = [c for c in cands if c not in anchors]
    k = max(0, limit - len(anchors))
    picked = [rest[i * len(rest) // k] for i in range(k)]
    return list(dict.fromkeys(anchors + picked))


def measure_latency(nets: list[torch.nn.Module], batch: int, in_shape: tuple[int, ...], rounds: int = 7,
                    iters: int = 5, warmup: int = 3) -> list[float]:
    """Median ms per forward of each net, interleaved round-robin (warm), on the nets' device / dtype."""
    p = next(nets[0].parameters())
    x = torch.randn(batch, *in_shape, device=p.device, dtype=p.dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        return interleaved_medians([functools.partial(net, x) for net in nets], rounds, iters, warmup)


def _engine_names(model: torch.nn.Module, engines: Sequence[str]) -> list[str]:
    from adaptive_csp.engines import ENGINES, choose_engine

    names = []
    for e in engines:
        name = choose_engine(model) if e == "auto" else {"ort": "onnxruntime"}.get(e, e)
        if name not in ENGINES:
            raise ValueError(f"unknown engine {e!r}: choose from {', '.join(ENGINES)}, ort or auto")
        names.append(name)
    return list(dict.fromkeys(names))


def measure_engines(model: torch.nn.Module, engines: Sequence[str] = ("auto", "torch"),
                    batches: Sequence[int] = (1, 32), threads: int | None = None, rounds: int | None = None,
                    cache: str | Path | None = None, keyed: bool = False, stat: str = "min"):
    """Every level of ``model.levels`` timed on each engine (``"auto"`` = the runner's choice) at each
    batch size, ``threads`` intra-op threads, all interleaved: one ``{"ort:b1": ms, ...}`` per level.
    ONNX files go to ``cache`` (default: a temporary folder, removed after).  ``keyed=True`` also returns
    ``{engine key: latency-cache entry keys}`` (see :class:`adaptive_csp.runtime.calibrate.LatencyCache`)."""
    from adaptive_csp.engines import create_engine
    from adaptive_csp.runtime.calibrate import LatencyCache, measure

    threads = int(threads or torch.get_num_threads())
    with tempfile.TemporaryDirectory(prefix="adaptive-csp-profile-") as tmp:
        engs = []
        try:
            for name in _engine_names(model, engines):
                opts = {"threads": threads, "cache": cache or tmp} if name == "onnxruntime" else {}
                engs.append(create_engine(model, name, **opts).prepare())
            saved = torch.get_num_threads()
            torch.set_num_threads(threads)  # entry keys of torch engines read torch's thread count
            try:
                keys = {engine_key(e.name): LatencyCache.entry_keys(e) for e in engs}
            finally:
                torch.set_num_threads(saved)
            out = measure(engs, batches, threads=threads, rounds=rounds, stat=stat)
        finally:
            for e in engs:
                e.close()
    return (out, keys) if keyed else out


def _measure_candidates(model: ElasticNet, levels: list[Level], engines: Sequence[str], threads: int | None,
                        rounds: int | None, stat: str = "min") -> list[dict[str, float]]:
    """:func:`measure_engines` over candidate levels (the model's ladder is swapped in and restored; a
    level given twice is measured once)."""
    saved, uniq = model.levels, list(dict.fromkeys(levels))
    model.levels = LevelLadder(uniq)
    try:
        by = dict(zip(uniq, measure_engines(model, engines, (1, 32), threads, rounds, stat=stat), strict=True))
    finally:
        model.levels = saved
    return [dict(by[lv]) for lv in levels]


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (lower cost, higher accuracy), sorted by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    keep, best = [], -1.0
    for i in order:
        if points[i][1] > best:
            keep.append(i)
            best = points[i][1]
    return keep


def thin(idx: list[int], costs: list[float], max_rungs: int) -> list[int]:
    """Keep at most ``max_rungs`` of the cost-sorted ``idx``: first, last, and evenly spread in log-cost."""
    if len(idx) <= max_rungs:
        return idx
    import math

    lo, hi = math.log(costs[idx[0]]), math.log(costs[idx[-1]])
    chosen = [idx[0]]
    for k in range(1, max_rungs - 1):
        target = lo + (hi - lo) * k / (max_rungs - 1)
        cand = min((i for i in idx if i not in chosen and i != idx[-1]),
                   key=lambda i: abs(math.log(costs[i]) - target))
        chosen.append(cand)
    chosen.append(idx[-1])
    return sorted(set(chosen), key=lambda i: costs[i])


def _calib_batches(train: ImageSet, n: int, bs: int = 256) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1234)
    idx = torch.randperm(len(train), generator=g)[:n]
    return [train.normalized(idx[i:i + bs]).contiguous(memory_format=torch.channels_last)
            for i in range(0, len(idx), bs)]


def _sample(data: ImageSet, n: int) -> ImageSet:
    """A seeded random ``n`` of ``data`` (all of it when smaller): a folder is read class by class, so its
    first ``n`` images would be a few classes only."""
    if n >= len(data):
        return data
    return data.take(torch.randperm(len(data), generator=torch.Generator().manual_seed(4321))[:n].sort().values)


def near_front(points: Sequence[Sequence[tuple[float, float]]], margin: float, cap: int | None) -> list[int]:
    """The candidates worth refining.  ``points[k][i]`` = (latency on key k, screened accuracy) of
    candidate i.  Candidate i is near key k's front when no candidate at most as slow on k is more accurate
    by more than ``margin`` (a fraction).  Every key's strict front (:func:`pareto`, ties to the cheaper)
    comes first; the other near candidates are added spread in log latency on the last key (:func:`thin`)
    up to ``cap`` in all (None: no cap)."""
    strict: list[int] = []
    near: set[int] = set()
    for pts in points:
        strict += [i for i in pareto(list(pts)) if i not in strict]
        best = -1.0
        for i in sorted(range(len(pts)), key=lambda i: (pts[i][0], -pts[i][1])):
            if pts[i][1] >= best - margin:
                near.add(i)
            best = max(best, pts[i][1])
    rest = sorted(near - set(strict), key=lambda i: points[-1][i][0])
    room = len(rest) if cap is None else max(0, cap - len(strict))
    if room < len(rest):
        rest = thin(rest, [p[0] for p in points[-1]], room) if room >= 2 else rest[:room]
    return strict + rest


def _screen(model: ElasticNet, cands: list[Level], calib: list[torch.Tensor], screen: ImageSet,
            progress: bool, threads: int) -> list[dict]:
    """Each candidate's accuracy on the few ``screen`` images after BN re-estimation on ``calib``, and its
    batch-1 eager-torch latency (2 interleaved rounds over chunks of 32 candidates: a ranking, not a
    measurement to keep)."""
    from tqdm import tqdm

    from adaptive_csp.train.sandwich import evaluate

    out = []
    for lv in tqdm(cands, desc=f"screen on {len(screen)} images (BN re-estimated per level)", disable=not progress):
        model.calibrate_bn([lv], calib)
        out.append({"level": lv, "val_acc_screen": evaluate(model, screen, lv)})
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for i in range(0, len(cands), 32):
            nets = [model.export(lv).eval() for lv in cands[i:i + 32]]
            ms = measure_latency(nets, 1, (model.cfg.in_chans, *model.cfg.input_size), rounds=2, iters=2, warmup=1)
            for r, v in zip(out[i:i + 32], ms, strict=True):
                r["latency_ms_screen"] = v
    finally:
        torch.set_num_threads(saved)
    return out


@dataclass(frozen=True)
class ProfileOptions:
    """How :func:`profile` screens, refines and keeps candidates (one field per ``adaptive-csp profile``
    flag of the same name)."""

    min_rungs: int = 4  # at least this many rungs (rungs within ``tolerance`` points added, :func:`spread`)
    max_rungs: int = 10  # at most this many rungs per latency key's front
    tolerance: float = 1.0  # accuracy points a ``min_rungs`` rung may lie below the front
    calib_images: int = 512  # training images for the refined candidates' BN re-estimation
    screen_val: int = 128  # validation images each candidate is screened on
    screen_calib: int = 32  # training images for each candidate's BN re-estimation while screening
    screen_margin: float = 3.0  # points: refine a candidate no one at most as slow screened this much better than
    refine: int | None = 16  # refine at most this many candidates
    progress: bool = True
    max_candidates: int | None = None  # measure at most this many candidates (evenly spread)
    latency_threads: int | None = None  # threads for the latency measurements (None: torch's)
    engines: Sequence[str] = ("auto", "torch")  # engines to time (torch always added)
    latency_rounds: int | None = None  # interleaved timing rounds (None: the measurer's default)
    latency_stat: str = "min"  # per level, the fastest interleaved round or the median one


def profile(model: ElasticNet, train: ImageSet, val: ImageSet, options: ProfileOptions | None = None,
            **fields: Any) -> tuple[LevelLadder, list[dict]]:
    """Profile ``model`` here; returns (ladder, per-candidate records).  ``options`` (default
    :class:`ProfileOptions`), with keyword ``fields`` of it laid over: ``profile(m, tr, va, min_rungs=3)``.

    1. **Screen** every candidate: BN re-estimated on ``screen_calib`` training images, accuracy on a
       seeded ``screen_val`` validation images, and a quick batch-1 torch latency.
    2. **Refine** the candidates near the screened front (:func:`near_front`: no candidate at most as
       slow screened more than ``screen_margin`` points better; the strict front first, the others spread
       in latency, at most ``refine``): BN re-estimated on ``calib_images`` training images, accuracy on
       the whole validation split, latency measured once on ``engines`` (torch always added:
       ``latency_ms`` / ``latency_ms_b32`` are its) at batch 1 and 32 (:func:`_measure_candidates`).
    3. The ladder: each key's front of the refined rungs (:func:`union_front`, ties to the cheaper rung,
       each front thinned to ``max_rungs``), the full level last; when that has fewer than ``min_rungs``
       rungs, :func:`spread` adds rungs within ``tolerance`` points of the front."""
    o = replace(options or ProfileOptions(), **fields)
    model.eval()
    cands = subsample(candidate_levels(model), model, o.max_candidates)
    calib = _calib_batches(train, o.calib_images)
    lat_threads = int(o.latency_threads or torch.get_num_threads())
    records = _screen(model, cands, [calib[0][:o.screen_calib]], _sample(val, o.screen_val), o.progress, lat_threads)
    picked = near_front([[(r["latency_ms_screen"], r["val_acc_screen"]) for r in records]], o.screen_margin / 100,
                        o.refine)
    full = model.full_level()
    picked += [i for i, r in enumerate(records) if r["level"] == full and i not in picked]
    chosen = [records[i] for i in picked]
    measured = _measure_candidates(model, [r["level"] for r in chosen], (*o.engines, "torch"), lat_threads,
                                   o.latency_rounds, o.latency_stat)
    model.bn_stats = {}
    model.calibrate_bn([r["level"] for r in chosen], calib)
    rungs = _refined_rungs(model, chosen, measured, val, lat_threads)
    keys = sorted(set.intersection(*(set(r.latency) for r in rungs)))
    ladder = union_front(rungs, full, keys, o.max_rungs)
    if len(ladder) < o.min_rungs:
        ladder = spread(ladder, rungs, o.min_rungs, o.tolerance / 100)
    model.levels = ladder
    for r in records:
        r["on_ladder"] = r["level"] in set(ladder)
    model.bn_stats = {k: v for k, v in model.bn_stats.items() if k in {lv.key for lv in ladder}}
    return ladder, records


def _refined_rungs(model: ElasticNet, chosen: list[dict], measured: list[dict[str, float]], val: ImageSet,
                   threads: int) -> list[Rung]:
    """The refined candidates as rungs: their measured latencies and whole-split accuracy (the records
    get both)."""
    from adaptive_csp.train.sandwich import evaluate

    rungs = []
    for rec, lat in zip(chosen, measured, strict=True):
        rec["latency"], rec["latency_ms"], rec["latency_ms_b32"] = lat, lat[TORCH_B1], lat[TORCH_B32]
        rec["val_acc"] = evaluate(model, val, rec["level"])
        rungs.append(Rung(level=rec["level"], macs=model.macs(rec["level"]), params=model.params(rec["level"]),
                          latency_ms=round(rec["latency_ms"], 4), latency_ms_b32=round(rec["latency_ms_b32"], 4),
                          accuracy=rec["val_acc"], latency=lat,
                          extra={"val_images": len(val), "device": _device_name(threads)}))
    return rungs


def monotone(rungs: list[Rung], full: Level) -> LevelLadder:
    """The final Pareto front: rungs ordered by batch-32 latency, each more accurate (whole validation
    split, per-level BN) than every cheaper one, the full level last — so stepping up never loses
    accuracy.  Of rungs tied in accuracy the cheaper is kept, also when tied with the full level; a rung
    more accurate than the full level, or slower than it, is dropped."""
    top = next(r for r in rungs if r.level == full)
    rest = [r for r in rungs if r.level != full and r.latency_ms_b32 < top.latency_ms_b32
            and r.accuracy <= top.accuracy]
    front = pareto([(r.latency_ms_b32, r.accuracy) for r in rest])
    return LevelLadder([rest[i] for i in front] + [top])


def union_front(rungs: list[Rung], full: Level, keys: Sequence[str], max_rungs: int | None = None) -> LevelLadder:
    """The ladder kept per (engine, batch): every rung on the final front (:func:`monotone`'s rule, whole
    validation split, ties to the cheaper rung) of at least one latency ``key`` — each key's front thinned
    to ``max_rungs`` (:func:`thin`) — ordered by batch-32 torch latency, the full level last.  Each key's
    :meth:`LevelLadder.view` is then that key's front.  No keys: :func:`monotone`."""
    top = next(r for r in rungs if r.level == full)
    keys = [k for k in keys if all(k in r.latency for r in rungs)]
    if not keys:
        return monotone(rungs, full)
    keep: set[Level] = set()
    for key in keys:
        rest = [r for r in rungs if r.level != full and r.latency[key] < top.latency[key]
                and r.accuracy <= top.accuracy] + [top]
        front = pareto([(r.latency[key], r.accuracy) for r in rest[:-1]]) + [len(rest) - 1]
        if max_rungs:
            front = thin(front, [r.latency[key] for r in rest], max_rungs)
        keep |= {rest[i].level for i in front[:-1]}
    below = [r for r in rungs if r.level in keep and r.latency_ms_b32 < top.latency_ms_b32]
    return LevelLadder(sorted(below, key=lambda r: r.latency_ms_b32) + [top])


def spread(ladder: LevelLadder, pool: Sequence[Rung], min_rungs: int, tolerance: float) -> LevelLadder:
    """``ladder`` filled up to ``min_rungs`` rungs from ``pool`` (refined rungs), when the strict front is
    shorter.  A pool rung is eligible when its accuracy is within ``tolerance`` (a fraction: 0.01 = one
    point) of the most accurate pool rung at most as slow (batch-32 torch latency, the ladder's order) and
    not above the full level's.  Until ``min_rungs`` is reached, the widest gap in log latency between
    neighbouring rungs gets the eligible rung nearest its geometric middle (the cheaper one on a tie) whose
    accuracy lies between the gap's two ends, so a step up never loses accuracy (a rung less accurate than
    a cheaper one would be dropped by every :meth:`LevelLadder.view`); a gap with no such rung is skipped.
    So the rungs added are mostly ties (every candidate at 100 %); the tolerance bars rungs far below a
    cheaper candidate the ladder left out (more accurate than the full level, or thinned by ``max_rungs``)."""
    import math

    rungs = sorted(ladder.rungs[:-1], key=lambda r: r.latency_ms_b32) + [ladder.rungs[-1]]
    top = rungs[-1]
    by_cost = sorted(pool, key=lambda r: (r.latency_ms_b32, -r.accuracy))
    best, ok = -1.0, []
    for r in by_cost:
        best = max(best, r.accuracy)
        if r.accuracy >= best - tolerance and r.accuracy <= top.accuracy and r.level not in set(ladder):
            ok.append(r)
    while len(rungs) < min_rungs and ok:
        gaps = sorted(range(len(rungs) - 1), key=lambda g: -math.log(rungs[g + 1].latency_ms_b32
                                                                        / rungs[g].latency_ms_b32))
        for g in gaps:
            lo, hi = rungs[g], rungs[g + 1]
            fit = [r for r in ok if lo.latency_ms_b32 < r.latency_ms_b32 < hi.latency_ms_b32
                   and lo.accuracy <= r.accuracy <= hi.accuracy]
            if fit:
                mid = math.sqrt(lo.latency_ms_b32 * hi.latency_ms_b32)
                pick = min(fit, key=lambda r: (abs(math.log(r.latency_ms_b32 / mid)), r.latency_ms_b32))
                rungs.insert(g + 1, pick)
                ok.remove(pick)
                break
        else:
            break
    return LevelLadder(rungs)


def _device_name(threads: int | None = None) -> str:
    import platform

    threads = threads or torch.get_num_threads()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {threads} threads"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {threads} threads"


def plot(records: list[dict], path: str | Path) -> None:
    """Accuracy against measured latency, the ladder marked (matplotlib's Figure API: no global backend)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    xs = [r["latency_ms_screen"] for r in records]
    ys = [100 * r["val_acc_screen"] for r in records]
    ax.scatter(xs, ys, s=10, c="0.6", label="candidate levels")
    lad = sorted((r for r in records if r.get("on_ladder")), key=lambda r: r["latency_ms_screen"])
    ax.plot([r["latency_ms_screen"] for r in lad], [100 * r["val_acc_screen"] for r in lad], "o-", c="C3",
            label="ladder (Pareto)")
    ax.set_xscale("log")
    ax.set_xlabel("screening latency, torch batch 1 (ms, this CPU, log scale)")
    ax.set_ylabel("screened validation accuracy (%)")
    ax.set_title("Candidate levels: accuracy vs measured latency")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _recorded_dirs(model: ElasticNet) -> tuple[Path | None, Path | None]:
    """(training folder, validation folder or None) recorded in the model's JSON by ``train --data``:
    ``meta["data"]["source"]`` (the folder, resolved), the validation folder from ``meta["data"]["val_source"]``
    or the ``--val`` of the last recorded ``train`` command.  (None, None) for a Fashion-MNIST model; a
    ValueError when the JSON records no folder for a model Fashion-MNIST cannot feed."""
    import shlex

    info = model.meta.get("data") or {}
    if info.get("name") == "Fashion-MNIST" or (not info and tuple(model.cfg.input_size) == (28, 28)
                                               and model.cfg.in_chans == 1):
        return None, None
    src = info.get("source")
    if not src:
        raise ValueError(f"the model's JSON records no data folder (data: {info or 'none'}); pass --data DIR")
    train_dir = Path(src)
    if not train_dir.is_dir():
        raise ValueError(f"{train_dir}: the folder this model was trained on (recorded in its JSON) is not "
                         "here; pass --data DIR")
    val = info.get("val_source")
    for run in reversed(train_record(model.meta).get("runs") or []):
        if val is None and "--val" in (words := shlex.split(run.get("command") or "")):
            val = words[words.index("--val") + 1] if words.index("--val") + 1 < len(words) else None
            break
    if val is not None and not Path(val).is_dir():
        raise ValueError(f"{val}: the validation folder this model was trained with is not here; pass --val DIR")
    return train_dir, (Path(val) if val is not None else None)


def profile_data(model: ElasticNet, a: Any) -> tuple[ImageSet, ImageSet]:
    """(training, validation) images to profile on, read as the model was trained: ``a.data`` / ``a.val``
    (folders; ``a`` is anything with ``data``, ``val`` and ``data_dir``, e.g. the parsed flags of
    ``adaptive-csp profile``) when given, else the folders its JSON records (:func:`_recorded_dirs`), else
    Fashion-MNIST (from ``a.data_dir``); the model's input size, colour, class order and normalisation
    (``meta["preprocess"]``)."""
    data_dir, val_dir = (Path(a.data), Path(a.val) if a.val else None) if a.data else _recorded_dirs(model)
    if a.val and not a.data:
        val_dir = Path(a.val)
    if data_dir is None:
        from adaptive_csp.data.fashion_mnist import as_imageset, load_split

        return as_imageset(load_split("train", a.data_dir)), as_imageset(load_split("val", a.data_dir))
    from adaptive_csp.data.folder import load_folder
    from adaptive_csp.data.images import holdout

    pre = model.meta.get("preprocess", {})
    names = model.meta.get("class_names")
    size = tuple(model.cfg.input_size)
    colour = model.cfg.in_chans == 3
    data = load_folder(data_dir, input_size=size, color=colour, class_names=names)
    if val_dir is not None:
        val = load_folder(val_dir, input_size=size, color=colour, class_names=list(data.class_names))
    else:  # the seeded split training held out
        tcfg = train_record(model.meta).get("cfg", {})
        val, data = holdout(data, tcfg.get("val_fraction", 0.1), tcfg.get("seed", 0))
    if pre.get("mean") and pre.get("std"):  # normalise as the model was trained
        m, s = tuple(pre["mean"]), tuple(pre["std"])
        data, val = (ImageSet(d.images, d.labels, d.class_names, m, s, d.info) for d in (data, val))
    return data, val


_data = profile_data  # the name tests and older callers use


def latency_only(checkpoint: str | Path, *, engines: Sequence[str] = ("auto", "torch"),
                 batches: Sequence[int] = (1, 32), threads: int | None = None, rounds: int | None = None,
                 out: str | Path | None = None, to_cache: bool = False, command: str | None = None,
                 stat: str = "min"):
    """Re-measure a checkpoint's ladder latencies here (:func:`measure_engines`) and store them: in the
    checkpoint's JSON (or ``out``'s, the weights copied beside it), or with ``to_cache`` in this device's
    latency cache.  Returns (ladder with the new ``Rung.latency``, the path written)."""
    from adaptive_csp.models.pretrained import _paths, _read_meta, load_model
    from adaptive_csp.runtime.calibrate import LatencyCache, device_id

    model = load_model(checkpoint)
    threads = int(threads or torch.get_num_threads())
    measured, keys = measure_engines(model, engines, batches, threads, rounds, keyed=True, stat=stat)
    ladder = model.levels.with_latency(measured)
    if to_cache:
        lc = LatencyCache()
        for ek, entry in keys.items():
            lc.put(entry, [{k: v for k, v in m.items() if k.startswith(ek + ":")} for m in measured])
        return ladder, lc.path
    tpath, jpath = _paths(checkpoint)
    doc = _read_meta(jpath)
    doc["ladder"] = ladder.to_dict()
    doc.setdefault("profile", {})["latency"] = {
        "keys": sorted(set().union(*measured)), "device": device_id().split("|")[0], "threads": threads,
        "method": f"interleaved round-robin over every (engine, level), warm, {stat} of "
                  f"{rounds or 'default'} rounds (adaptive_csp.runtime.calibrate.measure)",
        "time": time.strftime("%Y-%m-%d %H:%M:%S"), **({"command": command} if command else {})}
    if out is not None:
        otpath, jpath = _paths(out)
        otpath.parent.mkdir(parents=True, exist_ok=True)
        if otpath.resolve() != tpath.resolve():
            shutil.copyfile(tpath, otpath)
    jpath.write_text(json.dumps(doc, indent=1) + "\n")
    return ladder, jpath


