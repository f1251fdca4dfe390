"""Engines per ladder level: torch, ONNX Runtime fp32 and int8 (and CUDA eager / graphs on a GPU).  Usage::

    python benchmarks/engines.py [--threads 1] [--pairs 2000]

1. Latency per level at batch 1 and 32, every engine interleaved (A B C A B C ...), medians over rounds.
   Targets: ONNX Runtime <= 0.30x the torch engine at batch 1 at the cheapest and the full level.  "ort
   fp32" runs every level in float32, "ort int8" every level as static QDQ int8 (calibrated on the
   checkpoint's own calibration images).
2. The shipped ladder's int8 rungs (``adaptive-csp profile --int8``) and ONNX Runtime's batch-1 and
   batch-32 views of the ladder with and without them.
3. ``runner.infer`` against a hand-written loop (``cv2.resize`` + normalise + ``session.run`` + argmax on
   the same ONNX file the runner's level runs) at every rung, for the 28×28 grey frame and a 640×480 BGR
   camera frame (target <= 1.15x), and the runner's own work: ``runner.infer`` minus
   ``engine.run_frame`` on the resized frame (target <= 30 µs).
4. A call right after a level switch against a held level (target <= 1.05): the runner on each engine,
   and bare ONNX Runtime sessions of every level under the session options tried (per-level arenas,
   one shared environment arena, no arena, IOBinding).  On a GPU the cuda engine's rows appear too.

Timings follow FACTS.md (malloc tunables, warm-up, interleaving, medians); run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import interleaved_medians, reexec_with_malloc_tunables  # noqa: E402


def data():
    """Inputs to time: 32 validation images (the shipped sample without the dataset)."""
    from adaptive_csp.data.fashion_mnist import DatasetNotFound, load_sample, load_split

    try:
        s = load_split("val")
    except DatasetNotFound:
        s = load_sample()
    return s.normalized(slice(0, 32))


def engines_for(model, threads: int, cache: str) -> dict:
    from adaptive_csp.engines import CudaEngine, OrtEngine, TorchEngine, have_cuda

    n = len(model.levels)
    out = {"torch": TorchEngine(model),
           "ort fp32": OrtEngine(model, threads=threads, cache=cache, int8=()),
           "ort int8": OrtEngine(model, threads=threads, cache=cache, int8=range(n))}  # the checkpoint's calib
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


def int8_table(model, lat: dict) -> None:
    """Section 2: the shipped ladder's int8 rungs (``adaptive-csp profile --int8``) and ONNX Runtime's views of
    the ladder with them and without them (each int8 rung back at its float32 latency)."""
    from adaptive_csp.levels import LevelLadder, Rung

    n = len(model.levels)
    rec = (model.meta.get("profile") or {}).get("int8") or {}
    print(f"\n2. int8 rungs on the shipped ladder (chosen by `{rec.get('command', 'adaptive-csp profile --int8')}`: "
          f"accuracy on {rec.get('val_images', '?')} validation images, calibrated on {rec.get('calib_images', '?')} "
          "training images stored in the checkpoint)")
    print("| level | shipped precision | fp32 acc % | int8 acc % | int8/fp32 b1 (this run) | int8/fp32 b32 (this run) |")
    print("|---|---|---|---|---|---|")
    rungs = model.levels.rungs
    for lv, r in enumerate(rungs):
        prec = r.extra.get("precision", "fp32")
        fa = r.accuracy
        qa = f"{100 * r.accuracy_on('onnxruntime'):.2f}" if prec == "int8" else "-"
        print(f"| {lv} | {prec} | {100 * fa:.2f} | {qa} | {lat[1, lv, 'ort int8'] / lat[1, lv, 'ort fp32']:.2f} | "
              f"{lat[32, lv, 'ort int8'] / lat[32, lv, 'ort fp32']:.2f} |")
    without = LevelLadder(Rung(level=r.level, macs=r.macs, params=r.params, accuracy=r.accuracy,
                               extra={}, latency={**r.latency, **({f"ort:{k}": v for k, v in r.extra["fp32_ort_ms"].items()}
                                                                  if "fp32_ort_ms" in r.extra else {})})
                          for r in rungs)
    for b in (1, 32):
        for tag, lad in (("with int8", model.levels), ("fp32 only", without)):
            v = lad.view("onnxruntime", b)
            ms = [rr.latency_ms for rr in v.rungs]
            print(f"   ORT view b{b}, {tag}: rungs {list(v.parent_indices)}, {ms[0]:.3f}-{ms[-1]:.3f} ms "
                  f"({ms[-1] / ms[0]:.1f}x span), full rung at {100 * v.rungs[-1].accuracy:.2f} %")
    top = n - 1
    print(f"   the full rung in this run: int8 {lat[1, top, 'ort int8']:.3f} ms vs fp32 {lat[1, top, 'ort fp32']:.3f} ms at "
          f"batch 1 ({lat[1, top, 'ort fp32'] / lat[1, top, 'ort int8']:.2f}x faster)")


def hand_loop(session, spec):
    """What a user writes without us: cv2 resize (area when shrinking) -> grey/RGB -> normalise -> run -> argmax."""
    import cv2
    import numpy as np

    h, w = spec["input_size"]
    grey = spec.get("color") == "grey"
    mul = np.float32(spec.get("scale", 1 / 255)) / np.asarray(spec["std"], np.float32)
    add = -np.asarray(spec["mean"], np.float32) / np.asarray(spec["std"], np.float32)
    name = session.get_inputs()[0].name
    run = session.run

    def loop(frame):
        if frame.shape[:2] != (h, w):
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        if frame.ndim == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if grey else cv2.COLOR_BGR2RGB)
        x = frame.astype(np.float32) * mul[0] + add[0] if grey else (frame.astype(np.float32) * mul + add).transpose(2, 0, 1)
        return int(run(None, {name: x.reshape(1, -1, h, w)})[0].argmax())

    return loop


def runner_tables(model, pairs: int, threads: int, cache: str) -> None:
    """Section 3: ``runner.infer`` against the hand-written loop and the runner's own work, at every rung."""
    import numpy as np
    import onnxruntime as ort
    import runner as bench_runner

    from adaptive_csp.data.fashion_mnist import load_sample
    from adaptive_csp.runtime import AdaptiveRunner

    frames = {"28×28 grey": load_sample().images[0, 0].numpy(),
              "640×480 BGR": np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)}
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    print(f"\n3. runner.infer vs a hand-written loop (cv2.resize + normalise + session.run + argmax on the same "
          f"ONNX file), batch 1, {threads} thread(s), {pairs} A/B pairs (ABBA), medians")
    print("| level | precision | frame | hand loop ms | runner.infer ms | runner / hand (target ≤ 1.15) | "
          "runner's own µs (target ≤ 30) |")
    print("|---|---|---|---|---|---|---|")
    worst, worst_own = 0.0, 0.0
    for lv in model.levels.view("onnxruntime", 1).parent_indices:  # the rungs the runner runs on this engine
        steer = bench_runner.steer_policy()
        steer.level = lv
        with AdaptiveRunner(model, policy=steer, sensors=None, engine="onnxruntime",
                            engine_options={"threads": threads, "cache": cache}) as r:
            hand = hand_loop(ort.InferenceSession(str(r.engine.paths[lv]), so, providers=["CPUExecutionProvider"]),
                             model.meta["preprocess"])
            for name, f in frames.items():
                assert r.infer(f).label == hand(f), "the hand loop and the runner disagree"
                assert r.infer(f).level == lv
                small, _ = r.pre.small(f)
                infer_ms, hand_ms, ratio, _ = bench_runner.paired(lambda r=r, f=f: r.infer(f), lambda f=f, hand=hand: hand(f), pairs)
                # own work: everything but the engine call (and, for the camera frame, the resize)
                pre = (lambda r=r, f=f, e=r.engine, lv=lv: e.run_frame(r.pre.small(f)[0], lv)) if f.ndim == 3 else \
                    (lambda e=r.engine, x=small, lv=lv: e.run_frame(x, lv))
                _, _, _, own = bench_runner.paired(lambda r=r, f=f: r.infer(f), pre, pairs)
                worst, worst_own = max(worst, ratio), max(worst_own, own)
                print(f"| {lv} | {r.engine.precision(lv)} | {name} | {hand_ms:.3f} | {infer_ms:.3f} | {ratio:.3f} | {own:.1f} |")
    print(f"   worst runner / hand: {worst:.3f} ({'met' if worst <= 1.15 else 'MISSED'}); worst own work {worst_own:.1f} µs "
          f"({'met' if worst_own <= 30 else 'MISSED'}); own work = runner.infer - (resize +) engine.run_frame")


def switch_tables(model, pairs: int, threads: int) -> None:
    """Section 4: the first call after a level switch against a held level: the runner per engine, then bare
    ONNX Runtime sessions of every level under the options tried."""
    import runner as bench_runner

    from adaptive_csp.data.fashion_mnist import load_sample
    from adaptive_csp.engines import available_engines

    frames = list(load_sample().images[:256, 0].numpy())
    print("\n4. a call right after a level switch vs the same level held (random level pairs, order alternated, medians)")
    print("| what runs | switched ms | held ms | median ratio (target ≤ 1.05) |")
    print("|---|---|---|---|")
    for eng in available_engines():
        s = bench_runner.switching(model, eng, frames, pairs, threads)
        print(f"| runner, {s['engine']} | {s['switched_ms']:.3f} | {s['held_ms']:.3f} | {s['ratio']:.3f} |")
    for opt, s in bench_runner.switching_bare(model, frames, pairs, threads).items():
        print(f"| bare ORT sessions, {opt} | {s['switched_ms']:.3f} | {s['held_ms']:.3f} | {s['ratio']:.3f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (torch and onnxruntime)")
    ap.add_argument("--pairs", type=int, default=2000, help="A/B pairs of the runner sections")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds per latency cell")
    ap.add_argument("--sections", default="1,2,3,4", help="which sections to run (2 needs 1)")
    a = ap.parse_args()
    reexec_with_malloc_tunables()

    import onnxruntime
    import torch

    from adaptive_csp.engines import available_engines
    from adaptive_csp.models.pretrained import pretrained

    torch.set_num_threads(a.threads)
    model = pretrained()
    n = len(model.levels)
    val = data()
    cache = tempfile.mkdtemp(prefix="adaptive-csp-bench-")
    engs = engines_for(model, a.threads, cache)
    for e in engs.values():
        e.prepare(batch_sizes=(1, 32))
    print(f"adaptive-csp engines benchmark: torch {torch.__version__}, onnxruntime {onnxruntime.__version__} "
          f"({', '.join(engs['ort fp32'].describe()['providers'])}), {a.threads} thread(s), {os.cpu_count()} CPUs, "
          f"GLIBC_TUNABLES set; {n} levels; engines here: {available_engines()}")
    if "cuda graphs" not in engs:
        print("no CUDA GPU here: the cuda engine's rows are absent")
    todo = {int(t) for t in a.sections.split(",") if t.strip()}
    if todo & {1, 2}:
        lat = latency_table(engs, val, n, a.rounds)
        if 2 in todo:
            int8_table(model, lat)
    if 3 in todo:
        runner_tables(model, a.pairs, a.threads, cache)
    if 4 in todo:
        switch_tables(model, a.pairs, a.threads)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
