"""Engines per ladder level: torch, ONNX Runtime fp32 and int8 (and CUDA eager / graphs on a GPU).  Usage::

    python benchmarks/engines.py [--threads 1] [--val 2000] [--pairs 2000]

1. Latency per level at batch 1 and 32, every engine interleaved (A B C A B C ...), medians over rounds.
   Targets: ONNX Runtime <= 0.30x the torch engine at batch 1 at the cheapest and the full level.
2. int8 rungs on ONNX Runtime (static QDQ, calibrated on 256 validation images): validation accuracy
   (``--val`` other validation images) fp32 against int8, and which int8 rungs join the ladder
   (``adaptive_csp.quant.int8_ladder``: faster at batch 1 by >= 3 % and accuracy within 0.2 points).
3. The runner's own work per call at batch 1 for each engine (benchmarks/runner.py section 1; target
   <= 30 µs) and a level switch against a held level (section 2; target <= 1.05).  On a GPU the cuda
   engine's row compares the runner with a bare CUDA-graph replay (target <= 1.2x).

Timings follow FACTS.md (malloc tunables, warm-up, interleaving, medians); run it through quiet.sh.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import interleaved_medians, reexec_with_malloc_tunables  # noqa: E402


def data(n_val: int):
    """(calibration batch, scored images, labels): the validation split, else the shipped sample."""
    from adaptive_csp.data.fashion_mnist import DatasetNotFound, load_sample, load_split

    try:
        s, where = load_split("val"), "validation split"
    except DatasetNotFound:
        s, where = load_sample(), "shipped test sample (dataset not installed)"
    n = min(len(s) - 256, n_val)
    return s.normalized(slice(0, 256)), s.normalized(slice(256, 256 + n)), s.labels[256:256 + n], where


def engines_for(model, calib, threads: int, cache: str) -> dict:
    from adaptive_csp.engines import CudaEngine, OrtEngine, TorchEngine, have_cuda

    n = len(model.levels)
    out = {"torch": TorchEngine(model),
           "ort fp32": OrtEngine(model, threads=threads, cache=cache),
           "ort int8": OrtEngine(model, threads=threads, cache=cache, calib=[calib], int8=range(n))}
    if have_cuda():
        out["cuda eager"] = CudaEngine(model, graphs=False)
        out["cuda graphs"] = CudaEngine(model, graphs=True)
    return out


def latency_table(engs: dict, val, n: int, rounds: int) -> dict:
    """Section 1: median ms per (batch, level, engine), printed as a table."""
    names = list(engs)
    print("\n1. latency per level, ms (medians of interleaved rounds)")
    print(f"| batch | level | {' | '.join(names)} | ORT fp32 / torch | ORT int8 / fp32 |")
    print("|---" * (len(names) + 4) + "|")
    lat: dict[tuple[int, int, str], float] = {}
    for b in (1, 32):
        x = val[:b].numpy()
        for lv in range(n):
            fns = [lambda e=e, lv=lv, x=x: e.run(x, lv) for e in engs.values()]
            ms = interleaved_medians(fns, rounds=rounds, iters=10 if b == 1 else 3, warmup=10)
            for name, m in zip(names, ms):
                lat[b, lv, name] = m
            print(f"| {b} | {lv} | {' | '.join(f'{m:.3f}' for m in ms)} | "
                  f"{lat[b, lv, 'ort fp32'] / lat[b, lv, 'torch']:.2f} | "
                  f"{lat[b, lv, 'ort int8'] / lat[b, lv, 'ort fp32']:.2f} |")
    for lv, tag in ((0, "cheapest"), (n - 1, "full")):
        r = lat[1, lv, "ort fp32"] / lat[1, lv, "torch"]
        print(f"   target ORT/torch at batch 1, {tag}: {r:.2f} (<= 0.30: {'met' if r <= 0.30 else 'MISSED'})")
    return lat


def int8_table(model, engs: dict, lat: dict, val, labels, where: str) -> None:
    """Section 2: fp32 vs int8 accuracy per level and the int8 rungs on the measured Pareto front."""
    from adaptive_csp.levels import Rung
    from adaptive_csp.quant import int8_ladder

    n = len(model.levels)
    print(f"\n2. int8 rungs on ONNX Runtime: accuracy on {len(labels)} images of the {where}, calibrated on 256 others")
    y, xv = labels.numpy(), val.numpy()
    variants: dict[str, list] = {"ort fp32": [], "ort int8": []}
    acc = {}
    for lv, rung in enumerate(model.levels.rungs):
        for name, rungs in variants.items():
            acc[lv, name] = float((engs[name].run(xv, lv).argmax(1) == y).mean())
            rungs.append(Rung(level=rung.level, latency_ms=lat[1, lv, name], latency_ms_b32=lat[32, lv, name],
                              accuracy=acc[lv, name]))
    lad = int8_ladder(variants["ort fp32"], variants["ort int8"])
    joined = {r.level for r in lad.rungs if r.extra.get("precision") == "int8"}
    kept = {r.level for r in lad.rungs}
    print("| level | fp32 acc % | int8 acc % | int8/fp32 b1 | int8/fp32 b32 | on the ladder |")
    print("|---|---|---|---|---|---|")
    for lv, rung in enumerate(model.levels.rungs):
        state = "int8 joins" if rung.level in joined else ("fp32 kept" if rung.level in kept else "dropped (dominated)")
        print(f"| {lv} | {100 * acc[lv, 'ort fp32']:.2f} | {100 * acc[lv, 'ort int8']:.2f} | "
              f"{lat[1, lv, 'ort int8'] / lat[1, lv, 'ort fp32']:.2f} | "
              f"{lat[32, lv, 'ort int8'] / lat[32, lv, 'ort fp32']:.2f} | {state} |")
    print(f"   int8 rungs joining: {len(joined)} of {n}; the ladder would have {len(lad)} rungs")


def runner_tables(model, pairs: int, threads: int) -> None:
    """Section 3: benchmarks/runner.py sections 1 and 2 for every engine available here."""
    import runner as bench_runner

    from adaptive_csp.data.fashion_mnist import load_sample
    from adaptive_csp.engines import available_engines

    frames = list(load_sample().images[:256, 0].numpy())
    print(f"\n3. the runner's own work per call at batch 1 (28×28 uint8 frame, {pairs} A/B pairs, medians)")
    print("| engine | level | engine.run ms | runner.infer ms | ratio | runner's own µs (target ≤ 30) |")
    print("|---|---|---|---|---|---|")
    for eng in available_engines():
        for row in bench_runner.overhead(model, eng, frames[0], pairs, threads):
            print(f"| {row['engine']} | {row['level']} ({row['which']}) | {row['engine_ms']:.3f} | "
                  f"{row['infer_ms']:.3f} | {row['ratio']:.3f} | {row['own_us']:.1f} |")
    print(f"   the same work with a no-op engine (caches warm, nothing evicts them): "
          f"{bench_runner.warm_own_us(model, frames[0]):.1f} µs per call")
    print("\n   a call right after a level switch vs the same level held (random levels, order alternated)")
    print("| engine | switched ms | held ms | median ratio (target ≤ 1.05) | extra per switch (sim SWITCH_COST) |")
    print("|---|---|---|---|---|")
    for eng in available_engines():
        s = bench_runner.switching(model, eng, frames, pairs, threads)
        print(f"| {s['engine']} | {s['switched_ms']:.3f} | {s['held_ms']:.3f} | {s['ratio']:.3f} | "
              f"{s['ratio'] - 1.0:.3f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (torch and onnxruntime)")
    ap.add_argument("--val", type=int, default=2000, help="validation images scored for int8 accuracy")
    ap.add_argument("--pairs", type=int, default=2000, help="A/B pairs of the runner sections")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds per latency cell")
    a = ap.parse_args()
    reexec_with_malloc_tunables()

    import onnxruntime
    import torch

    from adaptive_csp.engines import available_engines
    from adaptive_csp.models.pretrained import pretrained

    torch.set_num_threads(a.threads)
    model = pretrained()
    n = len(model.levels)
    calib, val, labels, where = data(a.val)
    engs = engines_for(model, calib, a.threads, tempfile.mkdtemp(prefix="adaptive-csp-bench-"))
    for e in engs.values():
        e.prepare(batch_sizes=(1, 32))
    print(f"adaptive-csp engines benchmark: torch {torch.__version__}, onnxruntime {onnxruntime.__version__} "
          f"({', '.join(engs['ort fp32'].describe()['providers'])}), {a.threads} thread(s), {os.cpu_count()} CPUs, "
          f"GLIBC_TUNABLES set; {n} levels; engines here: {available_engines()}")
    if "cuda graphs" not in engs:
        print("no CUDA GPU here: the cuda engine's rows are absent")
    lat = latency_table(engs, val, n, a.rounds)
    int8_table(model, engs, lat, val, labels, where)
    runner_tables(model, a.pairs, a.threads)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
