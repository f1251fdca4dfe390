"""Ladder profiling: measure candidate levels on THIS device and on the validation split, keep the
Pareto-optimal ones (latency ↓, accuracy ↑) as the model's ladder, recalibrate BN for them, store.

Latency is measured on each candidate's prepared static module (what ``model(x, level)`` runs),
warm, interleaved round-robin over all candidates, median of several rounds — so drift of the machine
hits every candidate alike.  Accuracy is measured after per-level BN re-estimation on training images.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import time
from pathlib import Path

import torch

from adaptive_csp.data.images import ImageSet
from adaptive_csp.levels import Level, LevelLadder, Rung
from adaptive_csp.models.net import ElasticNet
from adaptive_csp.util.timing import interleaved_medians

__all__ = ["candidate_levels", "subsample", "measure_latency", "pareto", "thin", "monotone", "profile", "plot", "configure", "run", "main"]


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
            latency_threads: int | None = None) -> tuple[LevelLadder, list[dict]]:
    """Measure all candidates; returns (ladder, per-candidate records)."""
    from tqdm import tqdm

    from adaptive_csp.train.sandwich import evaluate

    model.eval()
    cands = subsample(candidate_levels(model), model, max_candidates)
    calib = _calib_batches(train, calib_images)
    in_shape = (model.cfg.in_chans, *model.cfg.input_size)
    records = []
    screen = val.take(slice(0, screen_val))
    for lv in tqdm(cands, desc="accuracy (BN re-estimated per level)", disable=not progress):
        model.calibrate_bn([lv], calib[:screen_calib_batches])
        records.append({"level": lv, "val_acc_screen": evaluate(model, screen, lv)})
    nets = [model.prepared(r["level"]) for r in records]
    threads = torch.get_num_threads()
    if latency_threads:
        torch.set_num_threads(latency_threads)
    for r, b1, b32 in zip(records, measure_latency(nets, 1, in_shape, rounds=9, iters=20),
                          measure_latency(nets, 32, in_shape, rounds=5, iters=3)):
        r["latency_ms"], r["latency_ms_b32"] = b1, b32
    lat_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    # Pareto on batch-32 latency (stable; FACTS: batch-1 timings of tiny nets are noise-dominated)
    front = pareto([(r["latency_ms_b32"], r["val_acc_screen"]) for r in records])
    costs = [r["latency_ms_b32"] for r in records]
    chosen = thin(front, costs, max_rungs)
    if len(chosen) < min_rungs:  # fill from the next fronts
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
                          accuracy=evaluate(model, val, lv),
                          extra={"val_images": len(val), "device": _device_name(lat_threads)}))
    model.levels = ladder = monotone(rungs, full)
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
    p.add_argument("--out", required=True, help="output checkpoint path (without suffix)")
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


def run(a: argparse.Namespace) -> int:
    from adaptive_csp.models.pretrained import load_model, save_model

    if a.threads:
        torch.set_num_threads(a.threads)
    model = load_model(a.checkpoint)
    train, val = _data(model, a)
    ladder, records = profile(model, train, val, min_rungs=a.min_rungs, max_rungs=a.max_rungs,
                              latency_threads=a.latency_threads, screen_val=a.screen_val,
                              max_candidates=a.max_candidates, screen_calib_batches=a.screen_calib_batches)
    meta = {"profile": {"candidates": len(records), "device": ladder.rungs[-1].extra["device"],
                        "pareto_on": "latency_ms_b32",
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
