"""Ladder profiling: measure candidate levels on THIS device and on the validation split, keep the
Pareto-optimal ones (latency ↓, accuracy ↑) as the model's ladder, recalibrate BN for them, store.

Latency is measured on the engines given (default: the one the runner picks, ``auto`` — ONNX Runtime on a
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

import argparse
import functools
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from adaptive_csp.data.images import ImageSet
from adaptive_csp.levels import Level, LevelLadder, Rung, engine_key
from adaptive_csp.models.net import ElasticNet
from adaptive_csp.util.timing import interleaved_medians

__all__ = ["candidate_levels", "subsample", "measure_latency", "measure_engines", "latency_only", "pareto", "thin",
           "monotone", "union_front", "profile", "plot", "configure", "run", "main"]

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
    from adaptive_csp.engines import make_engine
    from adaptive_csp.runtime.calibrate import LatencyCache, measure

    threads = int(threads or torch.get_num_threads())
    with tempfile.TemporaryDirectory(prefix="adaptive-csp-profile-") as tmp:
        engs = []
        try:
            for name in _engine_names(model, engines):
                opts = {"threads": threads, "cache": cache or tmp} if name == "onnxruntime" else {}
                engs.append(make_engine(model, name, **opts).prepare())
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


def profile(model: ElasticNet, train: ImageSet, val: ImageSet, *, min_rungs: int = 6, max_rungs: int = 10,
            calib_images: int = 2048, screen_val: int = 2500, progress: bool = True,
            max_candidates: int | None = None, screen_calib_batches: int = 4,
            latency_threads: int | None = None, engines: Sequence[str] = ("auto", "torch"),
            latency_rounds: int | None = None, latency_stat: str = "min") -> tuple[LevelLadder, list[dict]]:
    """Measure all candidates; returns (ladder, per-candidate records).  ``engines``: where latency is
    measured (torch is always added: ``latency_ms`` / ``latency_ms_b32`` are its)."""
    from tqdm import tqdm

    from adaptive_csp.train.sandwich import evaluate

    model.eval()
    cands = subsample(candidate_levels(model), model, max_candidates)
    calib = _calib_batches(train, calib_images)
    records = []
    screen = val.take(slice(0, screen_val))
    for lv in tqdm(cands, desc="accuracy (BN re-estimated per level)", disable=not progress):
        model.calibrate_bn([lv], calib[:screen_calib_batches])
        records.append({"level": lv, "val_acc_screen": evaluate(model, screen, lv)})
    lat_threads = int(latency_threads or torch.get_num_threads())
    measured = _measure_candidates(model, [r["level"] for r in records], (*engines, "torch"), lat_threads,
                                   latency_rounds, latency_stat)
    for r, lat in zip(records, measured, strict=True):
        r["latency"], r["latency_ms"], r["latency_ms_b32"] = lat, lat[TORCH_B1], lat[TORCH_B32]
    keys = sorted(set.intersection(*(set(r["latency"]) for r in records)))
    chosen: list[int] = []
    for key in keys:  # the front of every (engine, batch), each thinned to max_rungs
        front = pareto([(r["latency"][key], r["val_acc_screen"]) for r in records])
        chosen += [i for i in thin(front, [r["latency"][key] for r in records], max_rungs) if i not in chosen]
    costs = [r["latency_ms_b32"] for r in records]
    chosen.sort(key=lambda i: costs[i])
    if len(chosen) < min_rungs:  # fill from the next fronts (batch-32 torch latency, the ladder's order)
        rest = [i for i in range(len(records)) if i not in chosen]
        while len(chosen) < min_rungs and rest:
            nxt = pareto([(records[i]["latency_ms_b32"], records[i]["val_acc_screen"]) for i in rest])
            chosen += [rest[j] for j in nxt][: min_rungs - len(chosen)]
            rest = [i for i in rest if i not in chosen]
        chosen.sort(key=lambda i: costs[i])
    # final numbers for the rungs: BN from more images, accuracy on the whole validation split
    rung_levels = [records[i]["level"] for i in chosen]
    full = model.full_level()
    if full not in rung_levels:
        rung_levels.append(full)
    model.bn_stats = {}
    model.calibrate_bn(rung_levels, calib)
    rungs = []
    for lv in rung_levels:
        rec = next(r for r in records if r["level"] == lv)
        rungs.append(Rung(level=lv, macs=model.macs(lv), params=model.params(lv),
                          latency_ms=round(rec["latency_ms"], 4), latency_ms_b32=round(rec["latency_ms_b32"], 4),
                          accuracy=evaluate(model, val, lv), latency=rec["latency"],
                          extra={"val_images": len(val), "device": _device_name(lat_threads)}))
    model.levels = ladder = union_front(rungs, full, keys)
    for r in records:
        r["on_ladder"] = r["level"] in set(ladder)
    model.bn_stats = {k: v for k, v in model.bn_stats.items() if k in {lv.key for lv in ladder}}
    return ladder, records


def monotone(rungs: list[Rung], full: Level) -> LevelLadder:
    """The final Pareto front: rungs ordered by batch-32 latency, each more accurate (whole validation
    split, per-level BN) than every cheaper one, the full level last — so stepping up always buys
    accuracy.  A rung at least as accurate as the full level, or slower than it, is dropped."""
    top = next(r for r in rungs if r.level == full)
    rest = [r for r in rungs if r.level != full and r.latency_ms_b32 < top.latency_ms_b32
            and r.accuracy < top.accuracy]
    front = pareto([(r.latency_ms_b32, r.accuracy) for r in rest])
    return LevelLadder([rest[i] for i in front] + [top])


def union_front(rungs: list[Rung], full: Level, keys: Sequence[str]) -> LevelLadder:
    """The ladder kept per (engine, batch): every rung on the final front (:func:`monotone`'s rule, whole
    validation split) of at least one latency ``key``, ordered by batch-32 torch latency, the full level
    last.  Each key's :meth:`LevelLadder.view` is then that key's front.  No keys: :func:`monotone`."""
    top = next(r for r in rungs if r.level == full)
    keys = [k for k in keys if all(k in r.latency for r in rungs)]
    if not keys:
        return monotone(rungs, full)
    keep: set[Level] = set()
    for key in keys:
        rest = [r for r in rungs if r.level != full and r.latency[key] < top.latency[key]
                and r.accuracy < top.accuracy]
        keep |= {rest[i].level for i in pareto([(r.latency[key], r.accuracy) for r in rest])}
    below = [r for r in rungs if r.level in keep and r.latency_ms_b32 < top.latency_ms_b32]
    return LevelLadder(sorted(below, key=lambda r: r.latency_ms_b32) + [top])


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
    xs = [r["latency_ms_b32"] for r in records]
    ys = [100 * r["val_acc_screen"] for r in records]
    ax.scatter(xs, ys, s=10, c="0.6", label="candidate levels")
    lad = sorted((r for r in records if r.get("on_ladder")), key=lambda r: r["latency_ms_b32"])
    ax.plot([r["latency_ms_b32"] for r in lad], [100 * r["val_acc_screen"] for r in lad], "o-", c="C3",
            label="ladder (Pareto)")
    ax.set_xscale("log")
    ax.set_xlabel("latency, batch 32 (ms, this CPU, log scale)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Candidate levels: accuracy vs measured latency")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="model .safetensors (with its .json)")
    p.add_argument("--out", default=None, help="output checkpoint path (without suffix); required unless "
                   "--latency-only, which writes the checkpoint's own JSON when --out is not given")
    p.add_argument("--latency-only", action="store_true",
                   help="re-measure the existing ladder's latencies only (no accuracy, no BN; seconds) and "
                   "store them in the model JSON (the weights file is not rewritten)")
    p.add_argument("--latency-cache", action="store_true",
                   help="with --latency-only: store in this device's latency cache (what runner.calibrate() "
                   "reads) instead of the model JSON")
    p.add_argument("--engines", default="auto,torch",
                   help="engines to time, comma-separated (auto = the runner's choice; torch always added "
                   "for a full profile)")
    p.add_argument("--batches", default="1,32", help="batch sizes to time with --latency-only")
    p.add_argument("--latency-rounds", type=int, default=None,
                   help="interleaved timing rounds (default 9 at batch 1, 5 above)")
    p.add_argument("--latency-stat", choices=("median", "min"), default="min",
                   help="per level, the fastest interleaved round (the level's own cost "
                   "on a CPU other processes share) or the median one")
    p.add_argument("--plot", default=None, help="write accuracy-vs-latency PNG here")
    p.add_argument("--threads", type=int, default=None, help="threads for BN calibration and accuracy")
    p.add_argument("--latency-threads", type=int, default=None, help="threads for the latency measurements")
    p.add_argument("--min-rungs", type=int, default=6)
    p.add_argument("--max-rungs", type=int, default=10)
    p.add_argument("--screen-val", type=int, default=2500, help="validation images per candidate screen")
    p.add_argument("--max-candidates", type=int, default=None,
                   help="measure at most N candidates (evenly spread; each width's ends always kept)")
    p.add_argument("--screen-calib-batches", type=int, default=4,
                   help="256-image batches for each candidate's BN re-estimation while screening")
    p.add_argument("--records", default=None, help="write every candidate's measurements (JSON) here")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="the model's own image folder (one sub-folder per class); default: Fashion-MNIST")
    p.add_argument("--val", default=None, metavar="DIR", help="validation folder (default: the seeded "
                   "split of --data that training held out)")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST folder (default: the Debian package's)")


def _data(model: ElasticNet, a: argparse.Namespace) -> tuple[ImageSet, ImageSet]:
    if a.data is None:
        from adaptive_csp.data.fashion_mnist import as_imageset, load_split

        return as_imageset(load_split("train", a.data_dir)), as_imageset(load_split("val", a.data_dir))
    from adaptive_csp.data.folder import load_folder
    from adaptive_csp.data.images import holdout

    names = model.meta.get("class_names")
    size = tuple(model.cfg.input_size)
    data = load_folder(a.data, input_size=size, color=model.cfg.in_chans == 3, class_names=names)
    if a.val:
        val = load_folder(a.val, input_size=size, color=model.cfg.in_chans == 3, class_names=names)
    else:
        tcfg = model.meta.get("train", {}).get("cfg", {})
        val, data = holdout(data, tcfg.get("val_fraction", 0.1), tcfg.get("seed", 0))
    pre = model.meta.get("preprocess", {})  # normalise as the model was trained
    if pre.get("mean") and pre.get("std"):
        m, s = tuple(pre["mean"]), tuple(pre["std"])
        data, val = (ImageSet(d.images, d.labels, d.class_names, m, s, d.info) for d in (data, val))
    return data, val


def _csv(text: str, kind: type = str) -> list:
    try:
        out = [kind(t.strip()) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"expected a comma-separated list, got {text!r}") from None
    if not out:
        raise ValueError(f"expected a comma-separated list, got {text!r}")
    return out


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


def _run_latency_only(a: argparse.Namespace) -> int:
    import shlex
    import sys

    if a.threads:
        torch.set_num_threads(a.threads)
    command = "adaptive-csp profile " + shlex.join(getattr(a, "_argv", sys.argv[2:]))
    ladder, path = latency_only(a.checkpoint, engines=_csv(a.engines), batches=_csv(a.batches, int),
                                threads=a.latency_threads, rounds=a.latency_rounds, out=a.out,
                                to_cache=a.latency_cache, command=command, stat=a.latency_stat)
    keys = sorted(set().union(*(r.latency for r in ladder.rungs)))
    print(f"latencies of {len(ladder)} rungs (ms) -> {path}")
    print("  " + f"{'level':<36}" + "".join(f"{k:>11}" for k in keys))
    for r in ladder.rungs:
        print(f"  {r.level.key:<36}" + "".join(f"{r.latency.get(k, float('nan')):11.3f}" for k in keys))
    for k in keys:
        eng, _, b = k.partition(":b")
        v = ladder.view(eng, int(b))
        print(f"  view {k}: rungs {list(v.parent_indices)}")
    return 0


def run(a: argparse.Namespace) -> int:
    import sys

    from adaptive_csp.models.pretrained import load_model, save_model

    if a.latency_cache and not a.latency_only:
        print("adaptive-csp profile: --latency-cache needs --latency-only", file=sys.stderr)
        return 2
    if a.latency_only:
        return _run_latency_only(a)
    if a.out is None:
        print("adaptive-csp profile: a full profile needs --out (only --latency-only writes the checkpoint's "
              "own JSON)", file=sys.stderr)
        return 2
    if a.threads:
        torch.set_num_threads(a.threads)
    model = load_model(a.checkpoint)
    train, val = _data(model, a)
    ladder, records = profile(model, train, val, min_rungs=a.min_rungs, max_rungs=a.max_rungs,
                              latency_threads=a.latency_threads, screen_val=a.screen_val,
                              max_candidates=a.max_candidates, screen_calib_batches=a.screen_calib_batches,
                              engines=_csv(a.engines), latency_rounds=a.latency_rounds,
                              latency_stat=a.latency_stat)
    meta = {"profile": {"candidates": len(records), "device": ladder.rungs[-1].extra["device"],
                        "pareto_on": "every latency key (Rung.latency); order: latency_ms_b32",
                        "time": time.strftime("%Y-%m-%d %H:%M:%S")}}
    path = save_model(model, a.out, **meta)
    print(f"ladder of {len(ladder)} rungs from {len(records)} candidates -> {path}")
    for r in ladder.rungs:
        print(f"  {r.level.key:<30} MACs {r.macs / 1e6:6.2f}M  b1 {r.latency_ms:6.3f} ms  "
              f"b32 {r.latency_ms_b32:7.3f} ms  val {100 * r.accuracy:5.2f}%")
    if a.records:
        Path(a.records).write_text(json.dumps([{**r, "level": r["level"].key} for r in records], indent=1))
    if a.plot:
        plot(records, a.plot)
        print(f"plot -> {a.plot}")
    return 0


def main(argv: list[str]) -> int:
    """Legacy ``main(argv)`` entry."""
    p = argparse.ArgumentParser(prog="adaptive-csp profile",
                                description="Measure candidate levels here; keep the Pareto ladder.")
    configure(p)
    return run(p.parse_args(argv))
