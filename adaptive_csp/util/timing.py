"""One timing loop for everything that compares speeds: warm, interleaved, repeated, medians.

Why this shape: in a fresh process the first calls run markedly slower (glibc hands large buffers back to
the OS and faults them in again), and timing candidates one after another lets machine drift invert the
ranking.  So every
function is warmed up first, then the functions are timed round-robin (A B C A B C …) for ``rounds``
rounds of ``iters`` calls each, and the median per-call time of each is returned.

Callers pass zero-argument callables and wrap the call in ``torch.inference_mode()`` themselves when timing
models::

    with torch.inference_mode():
        full_ms, small_ms = interleaved_medians([lambda: net(x, full), lambda: net(x, small)])

Uses only the standard library (floor 1: imports nothing from the package).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

__all__ = ["interleaved_medians", "interleaved_times"]


def interleaved_times(fns: Sequence[Callable[[], object]], rounds: int = 9, iters: int = 10,
                      warmup: int = 10) -> list[list[float]]:
    """Per-round milliseconds per call of each fn: ``out[i][r]`` is fn ``i`` in round ``r``.

    Each fn is called ``warmup`` times first (untimed), then the fns are timed round-robin; one round
    times ``iters`` consecutive calls of one fn and records their mean.
    """
    if rounds < 1 or iters < 1 or warmup < 0:
        raise ValueError(f"need rounds >= 1, iters >= 1, warmup >= 0 (got {rounds}, {iters}, {warmup})")
    for f in fns:
        for _ in range(warmup):
            f()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(iters):
                f()
            times[i].append((time.perf_counter() - t0) * 1000.0 / iters)
    return times


def interleaved_medians(fns: Sequence[Callable[[], object]], rounds: int = 9, iters: int = 10,
                        warmup: int = 10) -> list[float]:
    """Median milliseconds per call of each fn over ``rounds`` interleaved rounds (see :func:`interleaved_times`).

    For per-call latency (e.g. a batch-1 latency per frame) use ``iters=1`` and more ``rounds``.
    """
    return [statistics.median(t) for t in interleaved_times(fns, rounds, iters, warmup)]
