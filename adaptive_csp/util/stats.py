"""The one percentile the package uses: nearest rank.

The p-th percentile of ``n`` values is the value at 0-based rank ``ceil(p/100 · n) − 1`` of the sorted
values: always one of the measured values, never an interpolation between two (NumPy calls this
definition ``method="inverted_cdf"``).  Policies judge a deadline on it, the runner's telemetry reports it
and the simulator scores runs with it, so the p95 a policy controls is the p95 that gets reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["rank_index", "percentile", "grouped_percentile"]


def _check_p(p: float) -> float:
    p = float(p)
    if not 0.0 < p <= 100.0:
        raise ValueError(f"percentile p must be in (0, 100], got {p!r}")
    return p


def rank_index(n: int, p: float) -> int:
    """0-based index of the p-th percentile among ``n`` sorted values (nearest rank)."""
    if n < 1:
        raise ValueError("a percentile of no values is undefined")
    return max(0, min(n - 1, math.ceil(_check_p(p) / 100.0 * n) - 1))


def percentile(values: Iterable[float] | np.ndarray, p: float) -> float:
    """Nearest-rank p-th percentile of ``values`` (not modified).  Empty → ValueError.

    A NumPy array is answered with one partial sort (``np.partition``): the same definition, for the
    simulator's millions of frame latencies."""
    if isinstance(values, np.ndarray):
        v = values.ravel()
        k = rank_index(v.size, p)
        return float(np.partition(v, k)[k])
    s = sorted(values)
    return float(s[rank_index(len(s), p)])


def grouped_percentile(values: np.ndarray, groups: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-rank p-th percentile of ``values`` within each group label: ``(labels, percentiles)``.

    The same definition as :func:`percentile`, vectorised (one sort for all groups), for the simulator's
    per-window scores.
    """
    v, g = np.asarray(values, dtype=float), np.asarray(groups)
    if v.shape != g.shape or v.ndim != 1:
        raise ValueError("values and groups must be 1-D arrays of one length")
    if not v.size:
        return g[:0], v[:0]
    q = _check_p(p) / 100.0
    order = np.lexsort((v, g))
    gs, vs = g[order], v[order]
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    counts = np.diff(np.r_[starts, gs.size])
    idx = starts + np.clip(np.ceil(q * counts).astype(np.int64) - 1, 0, counts - 1)
    return gs[starts], vs[idx]
