"""Latency governor: predict every rung's p95 from the running rung's measured slowdown, pick the highest
that meets the deadline (Android Performance Hint's target work duration, FACTS.md "Governor and thermal
reference constants"; p95 over a window, not the mean).

The shared :class:`~adaptive_csp.control.predict.ServiceModel` keeps the last ``window`` slowdowns
(measured latency / the profiled latency of the rung that ran): rung ``j``'s predicted p95 is
``slowdown_p95 · profiled(j)``.  One decision:

- overrun (the running rung's predicted p95 > deadline) → bound at once to the highest rung predicted to
  fit ``deadline·(1 − margin/2)``: a loaded CPU lands on the middle rung that still meets the deadline in
  this one decision, not one step down and not the bottom;
- slack (a higher rung predicted to fit ``deadline·(1 − margin)``, its first frame after the switch
  included: ``× (1 + switch_cost)``) held for ``up_hold_s`` → allow the highest such rung;
- otherwise hold.

``min_samples_down`` slowdowns are needed to judge an overrun, ``min_samples`` to judge slack; below 20
samples the percentile is the second-largest slowdown, so one scheduling hiccup does not drop the level.
``switch_cost`` (default :data:`SWITCH_COST`): the extra share of a call that the first ONNX Runtime call
after a level change costs over a held call (the runner benchmark's switch measurement,
docs/results/engines.md); the margin must cover it.
Optionally (``dvfs``) it requests a DVFS frequency schedutil-style: ``f = 1.25 · f_cur · p95/deadline``.
"""

from __future__ import annotations

from adaptive_csp.control.governors import Governor
from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.control.predict import ServiceModel
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings

__all__ = ["LatencyGovernor"]

#: extra time of the first call after a level change, as a share of a held call on ONNX Runtime
#: (``python benchmarks/runner.py``, the level-switch section)
SWITCH_COST = 0.09


class LatencyGovernor(Governor):
    name = "latency"
    signals = ()
    recover_s = 0.5  # a deadline that fits again fits at once: the ladder may climb back quickly

    def __init__(self, deadline_ms: float | None = None, window: int = 32, percentile: float = 95.0,
                 margin: float = 0.1, up_hold_s: float = 4.0, min_samples: int = 10,
                 min_samples_down: int = 3, dvfs: bool = False, min_frequency: float = 0.3, min_over: int = 2,
                 switch_cost: float = SWITCH_COST):
        super().__init__()
        self.deadline_ms = deadline_ms
        self.p = float(percentile)
        self.margin, self.up_hold_s = float(margin), float(up_hold_s)
        self.min_samples, self.min_samples_down = int(min_samples), max(int(min_samples_down), int(min_over))
        self.dvfs, self.min_frequency = bool(dvfs), float(min_frequency)
        self.switch_cost = float(switch_cost)
        self.service = ServiceModel(min(int(window), 256), self.p)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.service.reset()
        self.p_ms: float | None = None
        self.frequency: float | None = None
        self._slack_since: float | None = None

    def update(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        deadline = self.deadline_ms or stats.deadline_ms
        if not deadline or deadline <= 0:
            self.absent("latency", "latency policy without a deadline: latency constraint inactive")
            self.reason = "latency: no deadline"
            return self.cap
        sm = self.service
        sm.observe(stats, ladder)
        n = len(sm.ratios)
        if n < self.min_samples_down:
            return self.cap
        full = len(sm.prof) - 1
        cur = stats.level
        cur = 0 if cur < 0 else (full if cur > full else cur)
        p95 = self.p_ms = sm.predict_ms(cur)
        if self.dvfs and stats.frequency:
            self.frequency = max(self.min_frequency, min(1.0, 1.25 * stats.frequency * p95 / deadline))
        if p95 > deadline:
            self._slack_since = None
            target = max(0, sm.fit(deadline * (1.0 - self.margin * 0.5), cur))
            self.cap = None if target >= full else target
            self.reason = (f"latency: p{self.p:g} {p95:.1f}ms > deadline {deadline:g}ms, "
                           f"L{target} predicted {sm.predict_ms(target):.1f}ms")
            return self.cap
        if self.cap is None or n < self.min_samples:
            self._slack_since = None
            return self.cap
        top = sm.fit(deadline * (1.0 - self.margin) / (1.0 + self.switch_cost))
        if top > self.cap:
            if self._slack_since is None:
                self._slack_since = stats.now
            if stats.now - self._slack_since >= self.up_hold_s:
                self.cap = None if top >= full else top
                self._slack_since = None
                self.reason = (f"latency: p{self.p:g} {p95:.1f}ms leaves slack under {deadline:g}ms: "
                               f"L{top} predicted {sm.predict_ms(top):.1f}ms")
        else:
            self._slack_since = None
            self.reason = f"latency: p{self.p:g} {p95:.1f}ms fits {deadline:g}ms, no room to rise"
        return self.cap
