"""AdaptiveRunner overhead, level-switching cost and a memory soak.  Usage::

    python benchmarks/runner.py [--soak 50000] [--threads 1]

1. ``runner.infer(frame)`` against ``model(x, level)`` on the same preprocessed input at batch 1, same level
   (policy ``balanced``, no sensors: unconstrained, so the full level), call pairs in A B B A order, the
   median of the per-pair ratios.
   Target: ratio <= 1.05.  Also shown: a 640×480 BGR camera frame (preprocessing included).
2. Level switched on every call (cycling through the ladder) against the same levels held in blocks of 50
   calls (same mix, so the same work).  Target: ratio <= 1.05.
3. Soak: N calls at random levels over varying frames; RSS after a 2 000-call warm-up against the end.
   Target: growth < 5 %.

Timings follow FACTS.md: glibc malloc tunables (the script re-executes itself with them), warm-up,
interleaving, medians.  On a machine shared with other jobs the absolute numbers are noisy; the ratios
interleave both sides, so they are the numbers to read.
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

from _timing import interleaved_medians, reexec_with_malloc_tunables  # noqa: E402


def paired(fa, fb, pairs: int, warmup: int = 50) -> tuple[float, float, float]:
    """Median ms of ``fa`` and ``fb`` and the median of per-pair ratios, run A B B A A B ... (adjacent
    calls share the machine's load, and the order alternates so neither side always runs first)."""
    for _ in range(warmup):
        fa()
        fb()
    ta, tb, ratios = [], [], []
    clock = time.perf_counter
    for k in range(pairs):
        first, second = (fa, fb) if k % 2 == 0 else (fb, fa)
        t0 = clock()
        first()
        t1 = clock()
        second()
        t2 = clock()
        a_ms, b_ms = ((t1 - t0), (t2 - t1)) if k % 2 == 0 else ((t2 - t1), (t1 - t0))
        ta.append(a_ms * 1000)
        tb.append(b_ms * 1000)
        ratios.append(a_ms / b_ms)
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--soak", type=int, default=50_000, help="soak calls (0 = skip)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds of the switching test")
    ap.add_argument("--pairs", type=int, default=2000, help="A/B pairs of the overhead test")
    a = ap.parse_args()
    reexec_with_malloc_tunables()

    import numpy as np
    import psutil
    import torch

    from adaptive_csp.control.policy import Decision, Policy
    from adaptive_csp.data.fashion_mnist import load_sample
    from adaptive_csp.models.pretrained import pretrained
    from adaptive_csp.runtime import AdaptiveRunner

    torch.set_num_threads(a.threads)
    model = pretrained().prepare()
    n = len(model.levels)
    sample = load_sample()
    frames = [sample.images[i, 0].numpy() for i in range(256)]
    frame = frames[0]
    print(f"adaptive-csp runner benchmark: torch {torch.__version__}, {a.threads} thread(s), {os.cpu_count()} "
          f"CPUs, cv2 preprocessing; GLIBC_TUNABLES set; ladder of {n} levels")

    # 1. overhead at batch 1 ------------------------------------------------------------------------------------
    runner = AdaptiveRunner(model, policy="balanced", sensors=None)
    x, _ = runner.pre(frame)
    level = runner.infer(frame).level
    assert level == n - 1, f"expected the unconstrained full level, got {level}"

    def direct() -> None:
        with torch.inference_mode():
            model(x, level)

    cam = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    infer_ms, model_ms, ratio = paired(lambda: runner.infer(frame), direct, a.pairs)
    cam_ms, model2_ms, cam_ratio = paired(lambda: runner.infer(cam), direct, a.pairs // 2)
    print("\n1. overhead, batch 1, level", level, f"({a.pairs} A/B pairs in ABBA order; medians)")
    print(f"   model(x, level)            {model_ms:8.3f} ms")
    print(f"   runner.infer(28×28 uint8)  {infer_ms:8.3f} ms   median ratio {ratio:.3f} "
          f"(+{1000 * (infer_ms - model_ms):.0f} µs)   target <= 1.05")
    print(f"   runner.infer(640×480 BGR)  {cam_ms:8.3f} ms   median ratio {cam_ratio:.3f} "
          "(includes resizing a camera frame)")
    runner.close()

    # 2. switching on every call ------------------------------------------------------------------------------
    class Cycle(Policy):
        name = "cycle"

        def __init__(self, block: int):
            self.block, self.i = block, 0

        def decide(self, readings, stats, ladder):
            self.i += 1
            return Decision((self.i // self.block) % len(ladder), "bench")

    block = 50
    sw = AdaptiveRunner(model, policy=Cycle(1), sensors=None)
    fx = AdaptiveRunner(model, policy=Cycle(block), sensors=None)
    per = block * n  # both see every level `block` times per run

    def run(r: AdaptiveRunner) -> None:
        for i in range(per):
            r.infer(frames[i & 255])

    sw_ms, fx_ms = interleaved_medians([lambda: run(sw), lambda: run(fx)], rounds=max(5, a.rounds // 2),
                                       iters=1, warmup=1)
    s1, s2 = sw.stats(), fx.stats()
    print(f"\n2. level switched on every call vs held in blocks of {block} (same mix of {n} levels)")
    print(f"   every call  {1000 * sw_ms / per:7.1f} µs/call  ({s1['switches']} switches)")
    print(f"   blocks      {1000 * fx_ms / per:7.1f} µs/call  ({s2['switches']} switches)")
    print(f"   ratio {sw_ms / fx_ms:.3f}   target <= 1.05")
    sw.close()
    fx.close()

    # 3. soak ------------------------------------------------------------------------------------------------
    if a.soak:
        class Random(Policy):
            name = "random"

            def __init__(self):
                self.rng = random.Random(0)

            def decide(self, readings, stats, ladder):
                return Decision(self.rng.randrange(len(ladder)), "random")

        proc = psutil.Process()
        warm = min(2000, a.soak // 10)
        with AdaptiveRunner(model, policy=Random(), sensors="auto", content=True) as r:
            batch = [frames[1], frames[2]]
            t0 = time.perf_counter()
            rss0 = None
            samples = []
            for i in range(a.soak):
                if i == warm:
                    rss0 = proc.memory_info().rss
                r.infer(batch if i % 100 == 0 else frames[i & 255])
                if i >= warm and i % 5000 == 0:
                    samples.append(proc.memory_info().rss)
            rss1 = proc.memory_info().rss
            wall = time.perf_counter() - t0
            st = r.stats()
        growth = 100.0 * (rss1 - rss0) / rss0
        print(f"\n3. soak: {a.soak} calls at random levels (every 100th a batch of 2), content demand on, "
              f"psutil sensors polled")
        print(f"   {wall:.0f} s, {1000 * wall / a.soak:.2f} ms/call; levels {st['per_level']}")
        print(f"   RSS after {warm} calls {rss0 / 2**20:.1f} MiB, at the end {rss1 / 2**20:.1f} MiB: "
              f"growth {growth:+.2f} %  (max during soak {max(samples + [rss1]) / 2**20:.1f} MiB)   target < 5 %")
        print(f"   telemetry window {st['window']} records (bounded), p50 {st['p50_ms']:.2f} ms, "
              f"p95 {st['p95_ms']:.2f} ms, median of samples {statistics.median(samples or [rss1]) / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
