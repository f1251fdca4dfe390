"""Shared timing helpers for the benchmarks (see FACTS.md: warm up, interleave, median, malloc tunables)."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

TUNABLES = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"


def reexec_with_malloc_tunables() -> None:
    """Re-run this script with glibc malloc tunables that stop large buffers being returned to the OS."""
    if os.environ.get("GLIBC_TUNABLES") != TUNABLES and not os.environ.get("ADAPTIVE_CSP_NO_REEXEC"):
        env = dict(os.environ, GLIBC_TUNABLES=TUNABLES)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def interleaved_medians(fns: Sequence[Callable[[], object]], rounds: int = 9, iters: int = 10,
                        warmup: int = 10) -> list[float]:
    """Median milliseconds per call of each fn, timed A B C A B C ... after ``warmup`` calls each."""
    for f in fns:
        for _ in range(warmup):
            f()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(iters):
                f()
            times[i].append((time.perf_counter() - t0) * 1000 / iters)
    return [statistics.median(t) for t in times]
