"""AdaptiveRunner: its own cost per call for each engine, level-switching cost and a memory soak.  Usage::

    python benchmarks/runner.py [--engine all|auto|torch|onnxruntime|cuda] [--soak 50000] [--threads 1]

1. The runner's own work at batch 1: ``runner.infer(frame)`` (a 28×28 uint8 frame: preprocessing,
   policy, engine, softmax, telemetry) against ``runner.engine.run(x, level)`` on the same preprocessed
   input, call pairs in A B B A order; the median of the per-pair differences is everything but the engine
   call.  At the full level (the default preset, no sensors: unconstrained) and at the cheapest level.
   Target: <= 30 µs.  Also shown: a 640×480 BGR camera frame (resizing included).
2. A call right after a level switch against a call at the same level held (random level pairs, order
   alternated, ``policy_tick_ms=0`` so the policy is asked on every call), median of per-pair ratios.
   Target: <= 1.05.
3. Soak: N calls at random levels over varying frames; RSS after a 2 000-call warm-up against the end.
   Target: growth < 5 %.

Timings follow FACTS.md: glibc malloc tunables (the script re-executes itself with them), warm-up,
interleaving, medians.  Run it through /work/tools/quiet.sh on the shared machine.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import reexec_with_malloc_tunables  # noqa: E402


def paired(fa, fb, pairs: int, warmup: int = 50) -> tuple[float, float, float, float]:
    """Median ms of ``fa`` and ``fb``, the median per-pair ratio a/b and the median per-pair difference
    a - b in µs, run A B B A A B ... (adjacent calls share the machine's load; neither side always first)."""
    for _ in range(warmup):
        fa()
        fb()
    ta, tb, ratios, diffs = [], [], [], []
    clock = time.perf_counter
    for k in range(pairs):
        first, second = (fa, fb) if k % 2 == 0 else (fb, fa)
        t0 = clock()
        first()
        t1 = clock()
        second()
        t2 = clock()
        a_s, b_s = ((t1 - t0), (t2 - t1)) if k % 2 == 0 else ((t2 - t1), (t1 - t0))
        ta.append(a_s * 1000)
        tb.append(b_s * 1000)
        ratios.append(a_s / b_s)
        diffs.append((a_s - b_s) * 1e6)
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios), statistics.median(diffs)


def steer_policy():
    from adaptive_csp.control.policy import Decision, Policy

    class Steer(Policy):
        name = "steer"
        level = 0

        def decide(self, readings, stats, ladder):  # ``level``: an engine-ladder index, mapped into the view
            return Decision(ladder.view_index(self.level), "bench")

    return Steer()


def engine_options(engine: str, threads: int) -> dict | None:
    return {"threads": threads} if engine == "onnxruntime" else None


def overhead(model, engine: str, frame, pairs: int, threads: int) -> list[dict]:
    """Section 1 for one engine: rows for the full level (default preset) and the cheapest level."""
    from adaptive_csp.runtime import AdaptiveRunner

    rows = []
    for which in ("full", "cheapest"):
        pol = "balanced" if which == "full" else steer_policy()
        with AdaptiveRunner(model, policy=pol, sensors=None, engine=engine,
                            engine_options=engine_options(engine, threads)) as r:
            x, _ = r.pre.array(frame)
            level = r.infer(frame).level
            run = r.engine.run
            infer_ms, eng_ms, ratio, diff_us = paired(lambda r=r: r.infer(frame),
                                                      lambda f=run, x=x, lv=level: f(x, lv), pairs)
            rows.append({"engine": r.engine.name, "level": level, "which": which, "engine_ms": eng_ms,
                         "infer_ms": infer_ms, "ratio": ratio, "own_us": diff_us})
    return rows


def warm_own_us(model, frame, calls: int = 20000) -> float:
    """The runner's own work with a no-op engine (caches warm: no forward pass evicts them), µs per call."""
    import numpy as np

    from adaptive_csp.engines import Engine
    from adaptive_csp.runtime import AdaptiveRunner
    from adaptive_csp.util.timing import interleaved_medians

    class Null(Engine):
        name = "no-op"

        def __init__(self, m):
            super().__init__(m)
            self.out = np.zeros((1, len(model.meta.get("class_names") or range(10))), np.float32)

        def run(self, x, level):
            return self.out

    with AdaptiveRunner(model, policy="balanced", sensors=None, engine=Null(model)) as r:
        return 1000.0 * interleaved_medians([lambda: r.infer(frame)], rounds=5, iters=calls // 5, warmup=500)[0]


def switch_pairs(run, levels, pairs: int) -> dict:
    """``run(level, k)`` timed as a call right after a switch (from a random other of ``levels``) against a
    call at the same level held: random level pairs, the order alternated; medians."""
    rng = random.Random(1)
    t_sw, t_fx, ratios = [], [], []
    clock = time.perf_counter

    def call(lv: int, k: int) -> float:
        t0 = clock()
        run(lv, k)
        return clock() - t0

    for k in range(pairs):
        lv = rng.choice(levels)
        other = rng.choice([i for i in levels if i != lv])
        if k % 2 == 0:  # M, L (switched), L, L (held)
            call(other, k)
            s_ = call(lv, k)
            call(lv, k)
            f_ = call(lv, k)
        else:  # L, L (held), M, L (switched)
            call(lv, k)
            f_ = call(lv, k)
            call(other, k)
            s_ = call(lv, k)
        t_sw.append(s_ * 1000)
        t_fx.append(f_ * 1000)
        ratios.append(s_ / f_)
    return {"switched_ms": statistics.median(t_sw), "held_ms": statistics.median(t_fx),
            "ratio": statistics.median(ratios)}


def switching(model, engine: str, frames, pairs: int, threads: int) -> dict:
    """Section 2 for one engine: a switched call against a held one, random levels, order alternated."""
    from adaptive_csp.runtime import AdaptiveRunner

    steer = steer_policy()
    with AdaptiveRunner(model, policy=steer, sensors=None, engine=engine, policy_tick_ms=0,
                        engine_options=engine_options(engine, threads)) as sw:
        def run(lv: int, k: int) -> None:
            steer.level = lv
            sw.infer(frames[k & 255])

        out = switch_pairs(run, list(sw.view.parent_indices), pairs)  # the rungs this engine's runner runs
        return {"engine": sw.engine.name, **out, "switches": sw.stats()["switches"]}


def switching_bare(model, frames, pairs: int, threads: int) -> dict:
    """Bare ONNX Runtime frame-graph sessions of every level (what the runner's frame path runs), a switched
    call against a held one as in :func:`switching`, under each session option tried for cheaper switches."""
    import tempfile

    import numpy as np
    import onnxruntime as ort

    from adaptive_csp.engines import OrtEngine
    from adaptive_csp.engines.frame_graph import frame_model
    from adaptive_csp.engines.ort_engine import _bound_run

    n = len(model.levels)
    levels = list(model.levels.view("onnxruntime", 1).parent_indices)
    eng = OrtEngine(model, threads=threads, cache=tempfile.mkdtemp(prefix="adaptive-csp-switch-")).prepare()
    graphs = [frame_model(eng.paths[i], model.meta["preprocess"], 1).SerializeToString() for i in range(n)]
    try:
        ort.create_and_register_allocator(ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                                            ort.OrtMemType.DEFAULT), ort.OrtArenaCfg(0, -1, -1, -1))
    except Exception:  # noqa: BLE001 - registered already in this process: sessions share that one
        pass

    def options(arena=True, env=False):
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        so.enable_cpu_mem_arena = arena
        if env:
            so.add_session_config_entry("session.use_env_allocators", "1")
        return so

    variants = {"one arena per session (default), run()": (options(), False),
                "one shared environment arena, run()": (options(env=True), False),
                "no arena, run()": (options(arena=False), False),
                "one arena per session, IOBinding": (options(), True)}
    out = {}
    xs = [np.ascontiguousarray(f.reshape(1, *f.shape[:2], 1)) for f in frames]
    for name, (so, bound) in variants.items():
        ss = [ort.InferenceSession(g, so, providers=["CPUExecutionProvider"]) for g in graphs]
        fns = [_bound_run(s, "frame", np.zeros_like(xs[0])) if bound else
               (lambda x, s=s: s.run(None, {"frame": x})[0]) for s in ss]
        out[name] = switch_pairs(lambda lv, k, fns=fns: fns[lv](xs[k & 255]), levels, pairs)
    return out


def soak(model, engine: str, frames, calls: int, threads: int) -> None:
    import psutil

    from adaptive_csp.control.policy import Decision, Policy
    from adaptive_csp.runtime import AdaptiveRunner

    class Random(Policy):
        name = "random"

        def __init__(self):
            self.rng = random.Random(0)

        def decide(self, readings, stats, ladder):
            return Decision(self.rng.randrange(len(ladder)), "random")

    proc = psutil.Process()
    warm = min(2000, calls // 10)
    with AdaptiveRunner(model, policy=Random(), sensors="auto", content=True, engine=engine, policy_tick_ms=0,
                        engine_options=engine_options(engine, threads)) as r:
        batch = [frames[1], frames[2]]
        t0 = time.perf_counter()
        rss0 = None
        samples = []
        for i in range(calls):
            if i == warm:
                rss0 = proc.memory_info().rss
            r.infer(batch if i % 100 == 0 else frames[i & 255])
            if i >= warm and i % 5000 == 0:
                samples.append(proc.memory_info().rss)
        rss1 = proc.memory_info().rss
        wall = time.perf_counter() - t0
        st = r.stats()
    growth = 100.0 * (rss1 - rss0) / rss0
    print(f"\n3. soak ({st['engine']}): {calls} calls at random levels (every 100th a batch of 2), content demand on, "
          "psutil sensors polled")
    print(f"   {wall:.0f} s, {1000 * wall / calls:.2f} ms/call; levels {st['per_level']}")
    print(f"   RSS after {warm} calls {rss0 / 2**20:.1f} MiB, at the end {rss1 / 2**20:.1f} MiB: "
          f"growth {growth:+.2f} %  (max during soak {max(samples + [rss1]) / 2**20:.1f} MiB)   target < 5 %")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", default="all", help="all (every engine available here), auto or one engine name")
    ap.add_argument("--soak", type=int, default=50_000, help="soak calls (0 = skip)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (torch and onnxruntime)")
    ap.add_argument("--pairs", type=int, default=2000, help="A/B pairs of the overhead and switching tests")
    a = ap.parse_args()
    reexec_with_malloc_tunables()

    import numpy as np
    import torch

    from adaptive_csp.data.fashion_mnist import load_sample
    from adaptive_csp.engines import available_engines
    from adaptive_csp.models.pretrained import pretrained
    from adaptive_csp.runtime import AdaptiveRunner

    torch.set_num_threads(a.threads)
    model = pretrained()
    engines = available_engines() if a.engine == "all" else [a.engine]
    sample = load_sample()
    frames = [sample.images[i, 0].numpy() for i in range(256)]
    print(f"adaptive-csp runner benchmark: torch {torch.__version__}, {a.threads} thread(s), {os.cpu_count()} CPUs; "
          f"GLIBC_TUNABLES set; ladder of {len(model.levels)} levels; engines {engines}")

    print(f"\n1. the runner's own work per call at batch 1 (28×28 uint8 frame; {a.pairs} A/B pairs, ABBA; medians)")
    print("| engine | level | engine.run ms | runner.infer ms | ratio | runner's own µs (target ≤ 30) |")
    print("|---|---|---|---|---|---|")
    for eng in engines:
        for row in overhead(model, eng, frames[0], a.pairs, a.threads):
            print(f"| {row['engine']} | {row['level']} ({row['which']}) | {row['engine_ms']:.3f} | "
                  f"{row['infer_ms']:.3f} | {row['ratio']:.3f} | {row['own_us']:.1f} |")
    print(f"   the same work with a no-op engine (caches warm, nothing evicts them): "
          f"{warm_own_us(model, frames[0]):.1f} µs per call")
    cam = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    with AdaptiveRunner(model, policy="balanced", sensors=None, engine=engines[0],
                        engine_options=engine_options(engines[0], a.threads)) as r:
        x, _ = r.pre.array(frames[0])
        lv = r.infer(frames[0]).level
        cam_ms, eng_ms, cam_ratio, cam_us = paired(lambda: r.infer(cam), lambda: r.engine.run(x, lv), a.pairs // 2)
    print(f"   640×480 BGR frame ({r.engine.name}, level {lv}): {cam_ms:.3f} ms vs engine {eng_ms:.3f} ms: "
          f"+{cam_us:.0f} µs (resizing a camera frame included)")

    print(f"\n2. a call right after a level switch vs the same level held ({a.pairs} pairs, random levels, "
          "order alternated; medians)")
    print("| engine | switched ms | held ms | median ratio (target ≤ 1.05) |")
    print("|---|---|---|---|")
    for eng in engines:
        s = switching(model, eng, frames, a.pairs, a.threads)
        print(f"| {s['engine']} | {s['switched_ms']:.3f} | {s['held_ms']:.3f} | {s['ratio']:.3f} |")

    if a.soak:
        soak(model, engines[-1] if a.engine == "all" else engines[0], frames, a.soak, a.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
