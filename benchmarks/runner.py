"""AdaptiveRunner overhead, level-switching cost and a memory soak.  Usage::

    python benchmarks/runner.py [--soak 50000] [--threads 1]

1. ``runner.infer(frame)`` against ``model(x, level)`` on the same preprocessed input at batch 1, same level
   (policy ``balanced``, no sensors: unconstrained, so the full level), call pairs in A B B A order, the
   median of the per-pair ratios.
   Target: ratio <= 1.05.  Also shown: a 640×480 BGR camera frame (preprocessing included).
2. A call right after a level switch against a call at the same level held (random level pairs, order
   alternated), median of per-pair ratios.  Target: ratio <= 1.05.  Also: the runner's own per-call work
   with a no-op model (warm caches), which separates it from the cache effects of a real forward pass.
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
    class Steer(Policy):
        name = "steer"
        level = 0

        def decide(self, readings, stats, ladder):
            return Decision(self.level, "bench")

    steer = Steer()
    sw = AdaptiveRunner(model, policy=steer, sensors=None)
    rng = random.Random(1)
    t_sw, t_fx, ratios = [], [], []
    clock = time.perf_counter

    def call(lv: int, k: int) -> float:
        steer.level = lv
        t0 = clock()
        sw.infer(frames[k & 255])
        return clock() - t0

    for k in range(a.pairs):
        lv = rng.randrange(n)
        other = rng.choice([i for i in range(n) if i != lv])
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
    print(f"\n2. a call right after a level switch vs the same level held ({a.pairs} pairs, random levels, "
          "order alternated; medians)")
    print(f"   switched  {statistics.median(t_sw):7.3f} ms")
    print(f"   held      {statistics.median(t_fx):7.3f} ms")
    print(f"   median ratio {statistics.median(ratios):.3f}   target <= 1.05   ({sw.stats()['switches']} switches)")
    sw.close()

    # 2b. the runner's own per-call work, without the model ---------------------------------------------------
    class Stub(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.levels, self.meta, self.out = model.levels, model.meta, torch.zeros(1, 10)

        def forward(self, x, level=None):
            return self.out

    with AdaptiveRunner(Stub(), policy="balanced", sensors=None, prepare=False) as st:
        stub_ms = interleaved_medians([lambda: st.infer(frame)], rounds=5, iters=2000, warmup=500)[0]
    print(f"   (runner's own work per call, no-op model, caches warm: {1000 * stub_ms:.0f} µs)")

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
