"""Predicted cost of every rung from what the running rung measures: the governors' shared model.

A governor turns its constraint into a budget and picks the highest rung whose *predicted* cost fits it
(:meth:`ServiceModel.fit`), instead of stepping one rung per reading.

Service time
    The **slowdown** is a measured latency divided by the profiled latency of the rung that produced it
    (``ladder.rungs[i].latency_ms``: absolute ms of the ladder view the runner or simulator hands the
    policy; where a rung has none, ``relative cost × the full rung's profiled latency``, or the relative
    cost alone, which is the same prediction since only ratios count).  The last ``window`` slowdowns are
    kept (the samples are judged against the rung that ran when they were measured, so a level change
    does not throw them away).  Rung ``j``'s predicted p-th percentile is ``slowdown_p · profiled(j)``,
    its predicted mean ``slowdown_mean · profiled(j)``.  The percentile is robust to one hiccup: below 20
    samples it is the second-largest slowdown, never the largest.  Contention, throttling and a slower
    device all show up as slowdown, so one reading of a loaded CPU predicts every rung at once.

Power (share of the full rung's power)
    ``power ≈ idle + (active − idle) · busy``, ``busy_j = min(1, predicted mean latency_j × frame rate)``.
    Normalised to the full rung, ``p_j = (i + (1 − i)·busy_j) / (i + (1 − i)·busy_full)`` with
    ``i = idle_fraction`` (idle over active board power).  Without a frame rate the busy fraction is taken
    proportional to the profiled latency (``busy_j / busy_full = profiled(j) / profiled(full)``).
    Running every ``k``-th frame divides the busy fraction by ``k``.

New samples: none when the caller hands the same window object again; else as many as the window grew,
or (a full rolling window) the distance back to the previous call's newest latency, at least one (the
runner adds one per frame; the simulator a tick's worth), at most ``window`` per call.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence

from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.levels import LevelLadder

__all__ = ["ServiceModel", "profiled_ms", "accuracies", "efficient_rungs", "rung_for_power"]

_INF = float("inf")


def profiled_ms(ladder: LevelLadder) -> tuple[float, ...]:
    """Profiled latency (ms, or relative units when none was measured) of every rung of ``ladder``."""
    costs = ladder.costs
    full = ladder.rungs[-1].latency_ms
    ref = float(full) if full is not None and full > 0 else 1.0
    out = []
    for r, c in zip(ladder.rungs, costs, strict=True):
        v = r.latency_ms
        out.append(float(v) if v is not None and v > 0 else c * ref)
    return tuple(out)


def accuracies(ladder: LevelLadder) -> tuple[float | None, ...]:
    """Each rung's measured accuracy (None where not measured)."""
    return tuple(r.accuracy for r in ladder.rungs)


def efficient_rungs(powers: Sequence[float], accuracies: Sequence[float | None]) -> tuple[int, ...]:
    """Rungs on the upper concave hull of accuracy against predicted power, cheapest first.

    A rung below the chord between two others is never worth holding: a mix of those two gives more
    accuracy for the same energy; a rung that costs more power than another for no more accuracy neither.
    Every rung when an accuracy is unknown."""
    n = len(powers)
    if any(a is None for a in accuracies):
        return tuple(range(n))
    pts = sorted(range(n), key=lambda j: (powers[j], -accuracies[j]))
    hull: list[int] = []
    for j in pts:
        if hull and accuracies[j] <= accuracies[hull[-1]]:
            continue  # more power, no more accuracy
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b under the chord a-j: (acc_b - acc_a)·(p_j - p_a) <= (acc_j - acc_a)·(p_b - p_a)
            if (accuracies[b] - accuracies[a]) * (powers[j] - powers[a]) <= \
                    (accuracies[j] - accuracies[a]) * (powers[b] - powers[a]):
                hull.pop()
            else:
                break
        hull.append(j)
    return tuple(hull)


def rung_for_power(powers: Sequence[float], rungs: Sequence[int], budget: float, current: int,
                   dead_band: float = 0.05) -> int:
    """The most accurate of ``rungs`` (cheapest first) whose predicted power fits ``budget``; a rung above
    ``current`` must fit with ``dead_band`` to spare (no flipping on a budget hovering at a rung's power).
    The cheapest of ``rungs`` when none fits."""
    up = 1.0 + dead_band
    for j in reversed(rungs):
        p = powers[j] * up if j > current else powers[j]
        if p <= budget:
            return j
    return rungs[0]


class ServiceModel:
    """Slowdown window and per-rung predictions (see the module docstring)."""

    def __init__(self, window: int = 32, percentile: float = 95.0):
        self.window = max(4, int(window))
        self.p = float(percentile)
        self.reset()

    def reset(self) -> None:
        self.ratios: deque[float] = deque(maxlen=self.window)
        self._sorted: list[float] = []  # the same slowdowns, sorted (for the percentile)
        self._sum = 0.0
        self._ladder: LevelLadder | None = None
        self.prof: tuple[float, ...] = ()
        self._stats: RuntimeStats | None = None
        self._prev: tuple[float, ...] | None = None
        self._prev_last: float | None = None
        self._prev_len = 0
        self._p: float | None = None
        self._mean: float | None = None
        self.fps: float | None = None

    # observing --------------------------------------------------------------------------------------
    def bind(self, ladder: LevelLadder) -> None:
        if ladder is not self._ladder:
            self._ladder = ladder
            self.prof = profiled_ms(ladder)

    def _new_count(self, lat: tuple[float, ...]) -> int:
        n = len(lat)
        if not n or lat is self._prev:
            return 0
        last = self._prev_last
        if last is None:
            return min(n, self.window)
        if n > self._prev_len:
            return min(n - self._prev_len, self.window)
        for j in range(1, min(n, self.window + 1)):  # a new window holds at least one new latency
            if lat[n - 1 - j] == last:
                return j
        return min(n, self.window)

    def observe(self, stats: RuntimeStats, ladder: LevelLadder) -> None:
        """Take the latencies new since the last call (idempotent for one ``stats`` object)."""
        if stats is self._stats and ladder is self._ladder:
            return
        self._stats = stats
        self.bind(ladder)
        fps = stats.fps
        self.fps = float(fps) if fps is not None and 0 < fps < _INF else None
        lat = stats.latencies_ms
        k = self._new_count(lat)
        if lat:
            self._prev, self._prev_last, self._prev_len = lat, lat[-1], len(lat)
        if not k:
            return
        lv, top = stats.level, len(self.prof) - 1
        prof = self.prof[0 if lv < 0 else (top if lv > top else lv)]
        q, srt, full = self.ratios, self._sorted, self.window
        for x in lat[len(lat) - k:]:
            if 0.0 < x < _INF:
                r = x / prof
                if len(q) == full:
                    old = q[0]
                    del srt[bisect_left(srt, old)]
                    self._sum -= old
                q.append(r)
                insort(srt, r)
                self._sum += r
        self._p = self._mean = None

    # predicting -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ratios)

    @property
    def slowdown_p(self) -> float | None:
        """The ``percentile`` slowdown (second-largest below 20 samples); None without samples."""
        if self._p is None and self.ratios:
            s = self._sorted
            n = len(s)
            k = -(-int(self.p * n) // 100)  # ceil(p·n/100), 1-based
            k = min(k, n - 1) if n >= 2 and n < 20 else max(1, min(k, n))
            self._p = s[k - 1]
        return self._p

    @property
    def slowdown_mean(self) -> float | None:
        if self._mean is None and self.ratios:
            self._mean = self._sum / len(self.ratios)
        return self._mean

    def predict_ms(self, j: int) -> float | None:
        """Predicted percentile latency (ms) of rung ``j``; None without samples."""
        s = self.slowdown_p
        return None if s is None else s * self.prof[j]

    def fit(self, limit_ms: float, up_to: int | None = None) -> int:
        """Highest rung (≤ ``up_to``) whose predicted percentile latency is ≤ ``limit_ms``; −1 if none."""
        s = self.slowdown_p
        top = len(self.prof) - 1 if up_to is None else up_to
        if s is None:
            return top
        prof = self.prof
        for j in range(top, -1, -1):
            if s * prof[j] <= limit_ms:
                return j
        return -1

    def _busy(self, j: int) -> float:
        """Predicted busy fraction of rung ``j`` every frame (relative to the full rung's without a rate)."""
        s, fps, prof = self.slowdown_mean, self.fps, self.prof
        if s is not None and fps is not None:
            return min(1.0, s * prof[j] * fps / 1000.0)
        return prof[j] / prof[-1]

    def idle_share(self, idle_fraction: float) -> float:
        """The idle board power as a share of the full rung's predicted power."""
        i = idle_fraction
        return i / (i + (1.0 - i) * self._busy(len(self.prof) - 1))

    def powers(self, idle_fraction: float, interval: int = 1) -> tuple[float, ...]:
        """Predicted power of every rung as a share of the full rung's (every frame), running every
        ``interval``-th frame."""
        i = idle_fraction
        full = i + (1.0 - i) * self._busy(len(self.prof) - 1)
        return tuple((i + (1.0 - i) * self._busy(j) / interval) / full for j in range(len(self.prof)))
