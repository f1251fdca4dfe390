"""Latency governor in the style of Android's Performance Hint: a target work duration (the deadline)
and the actual durations reported every frame (FACTS.md "Governor and thermal reference constants").

The p-th percentile (default p95, judged over a window — not the mean) of the latencies measured *at
the current level* is compared with the deadline:

- overrun (p95 > deadline) → bound at once to the highest level predicted to fit, at least one step
  down; the prediction scales p95 by ``relative_cost(i) / relative_cost(current)``;
- slack (the next level up is predicted to fit with ``margin`` to spare) held for ``up_hold_s`` →
  allow the highest level predicted to fit with that margin (the hold is the slow part of recovery: a
  load that has gone should not cost one hold per rung);
- otherwise hold.

Only latencies measured since the level last changed count (one latency per ``decide`` call is
assumed): the first ``min_samples_down`` judge an overrun, ``min_samples`` are needed to judge slack.
An overrun also needs ``min_over`` (2) latencies above the deadline: over fewer than 20 samples the p95
is the slowest one, and one scheduling hiccup on a busy CPU must not throw the level to the bottom.
Optionally (``dvfs``) it requests a DVFS frequency schedutil-style: ``f = 1.25 · f_cur · p95/deadline``.
"""

from __future__ import annotations

import math

from adaptive_csp.control.governors import Governor
from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.util.stats import percentile

__all__ = ["LatencyGovernor"]


class LatencyGovernor(Governor):
    name = "latency"
    signals = ()
    recover_s = 0.5  # a deadline that fits again fits at once: the ladder may climb back quickly

    def __init__(self, deadline_ms: float | None = None, window: int = 120, percentile: float = 95.0,
                 margin: float = 0.1, up_hold_s: float = 4.0, min_samples: int = 10,
                 min_samples_down: int = 3, dvfs: bool = False, min_frequency: float = 0.3, min_over: int = 2):
        super().__init__()
        self.deadline_ms = deadline_ms
        self.window, self.p = int(window), float(percentile)
        self.margin, self.up_hold_s = float(margin), float(up_hold_s)
        self.min_samples, self.min_samples_down = int(min_samples), int(min_samples_down)
        self.dvfs, self.min_frequency = bool(dvfs), float(min_frequency)
        self.min_over = max(1, int(min_over))
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.fresh = 0
        self.p_ms: float | None = None
        self.frequency: float | None = None
        self._level: int | None = None
        self._slack_since: float | None = None

    def update(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        deadline = self.deadline_ms or stats.deadline_ms
        if not deadline or deadline <= 0:
            self.absent("latency", "latency policy without a deadline: latency constraint inactive")
            self.reason = "latency: no deadline"
            return self.cap
        cur = ladder.clamp(stats.level)
        if cur != self._level:
            self._level, self.fresh, self._slack_since = cur, 0, None
        lat = stats.latencies_ms
        self.fresh = min(self.fresh + 1, self.window)
        n = min(self.fresh, len(lat))
        if n < self.min_samples_down:
            return self.cap
        vals = [x for x in lat[-n:] if x >= 0.0 and x < math.inf]  # drops NaN and negatives
        if not vals:
            return self.cap
        p95 = self.p_ms = percentile(vals, self.p)
        if self.dvfs and stats.frequency:
            self.frequency = max(self.min_frequency, min(1.0, 1.25 * stats.frequency * p95 / deadline))
        costs = ladder.costs
        c_cur = costs[cur]
        if p95 > deadline and (len(vals) >= 20 or sum(x > deadline for x in vals) >= self.min_over):
            self._slack_since = None
            target = 0
            room = deadline * (1.0 - self.margin * 0.5)
            for i in range(cur - 1, -1, -1):
                if p95 * costs[i] / c_cur <= room:
                    target = i
                    break
            self.cap = target
            self.reason = f"latency: p{self.p:g} {p95:.1f}ms > deadline {deadline:g}ms"
            self._level, self.fresh = cur, 0  # judge the next move on new samples only
            return self.cap
        if self.cap is None or cur < self.cap or n < self.min_samples:
            self._slack_since = None
            return self.cap
        room = deadline * (1.0 - self.margin)
        if cur + 1 <= ladder.full and p95 * costs[cur + 1] / c_cur <= room:
            if self._slack_since is None:
                self._slack_since = stats.now
            if stats.now - self._slack_since >= self.up_hold_s:
                top = max(i for i in range(cur + 1, ladder.full + 1) if p95 * costs[i] / c_cur <= room)
                self.cap = None if top >= ladder.full else top
                self._slack_since = None
                self.reason = f"latency: p{self.p:g} {p95:.1f}ms leaves slack under {deadline:g}ms"
        else:
            self._slack_since = None
            self.reason = f"latency: p{self.p:g} {p95:.1f}ms fits {deadline:g}ms, no room to rise"
        return self.cap
