"""Benchmark-script helpers: the malloc re-exec, and the package's one timing loop (``util.timing``)."""

from __future__ import annotations

import os
import sys

from adaptive_csp.util.timing import interleaved_medians

__all__ = ["TUNABLES", "interleaved_medians", "reexec_with_malloc_tunables"]

TUNABLES = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"


def reexec_with_malloc_tunables() -> None:
    """Re-run this script with glibc malloc tunables that stop large buffers being returned to the OS."""
    if os.environ.get("GLIBC_TUNABLES") != TUNABLES and not os.environ.get("ADAPTIVE_CSP_NO_REEXEC"):
        env = dict(os.environ, GLIBC_TUNABLES=TUNABLES)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
