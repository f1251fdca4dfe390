"""Battery governor: state of charge and discharge slope → a level cap.

Two bounds, the lower wins:

- **thresholds**: above ``low_percent`` unconstrained; from ``low_percent`` down to ``critical_percent``
  the allowed relative cost falls linearly from 1 to the cheapest level's; at or below critical the
  cheapest level.
- **target runtime** (``target_hours`` = "last 8 h", or ``until`` = "18:00" local time): the highest
  level whose predicted drain lasts until the target.  Drain model: level ``i`` drains
  ``D_full·(idle + (1−idle)·cost(i))`` %/h, ``cost(i) = ladder.relative_cost(i)`` (∝ energy per
  inference) and ``idle = idle_fraction`` the share of full-level drain that does not depend on the
  level.  ``D_full`` comes from the observed discharge slope (least squares of SoC over ``window_s``,
  or ``battery_power_w / capacity_wh`` when both are known) divided by the model at the mean cost of
  the levels that ran meanwhile (SoC model: coulomb counting, FACTS.md "Models for simulation").

Plugged in or charging → unconstrained.  No battery → unconstrained, said once in the log.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from adaptive_csp.control.governors import Governor
from adaptive_csp.control.ladder import Slope, level_for_budget
from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings

__all__ = ["BatteryGovernor", "seconds_until"]


def seconds_until(hhmm: str, now: datetime | None = None) -> float:
    """Seconds from ``now`` (local wall clock) to the next ``HH:MM``."""
    h, m = (int(x) for x in hhmm.split(":"))
    now = now or datetime.now()
    target = now.replace(hour=h, minute=m, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    return (target - now).total_seconds()


class BatteryGovernor(Governor):
    name = "battery"
    signals = ("battery_percent", "battery_power_w", "plugged")

    def __init__(self, low_percent: float = 40.0, critical_percent: float = 10.0,
                 target_hours: float | None = None, until: str | None = None, idle_fraction: float = 0.3,
                 window_s: float = 600.0, min_window_s: float = 120.0, sample_s: float = 1.0,
                 capacity_wh: float | None = None, margin: float = 0.05, dead_band: float = 0.05,
                 wall_clock: Callable[[], datetime] | None = None):
        super().__init__()
        self.low, self.critical = float(low_percent), float(critical_percent)
        self.target_hours, self.until = target_hours, until
        self.idle = float(idle_fraction)
        self.window_s, self.min_window_s = float(window_s), float(min_window_s)
        self.sample_s, self.capacity_wh = float(sample_s), capacity_wh
        self.margin, self.dead_band = float(margin), float(dead_band)
        self.wall_clock = wall_clock or datetime.now
        self.reset()

    def reset(self) -> None:
        super().reset()
        self._ts = -math.inf
        self._deadline: float | None = None  # on the stats.now clock
        n = max(2, int(round(self.window_s / self.sample_s)))
        self._costs: deque[float] = deque(maxlen=n)  # cost of the level that ran, per sample
        self._slope = Slope(n)  # SoC over time
        self.drain_full: float | None = None  # %/h at the full level
        self.required: float | None = None  # %/h allowed to meet the target

    def _target_deadline(self, now: float) -> float | None:
        if self._deadline is None:
            if self.target_hours:
                self._deadline = now + 3600.0 * float(self.target_hours)
            elif self.until:
                self._deadline = now + seconds_until(self.until, self.wall_clock())
        return self._deadline

    def _observe(self, r: Readings, soc: float, cost: float) -> float | None:
        """Add a sample; return the observed drain in %/h (positive when discharging) or None."""
        self._costs.append(cost)
        self._slope.add(r.timestamp, soc)
        if self.capacity_wh and r.battery_power_w is not None:
            return 100.0 * r.battery_power_w / float(self.capacity_wh)
        if self._slope.span() < self.min_window_s:
            return None
        return -self._slope.slope() * 3600.0

    def update(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        ts = readings.timestamp
        if ts - self._ts < self.sample_s * 0.999:
            return self.cap
        self._ts = ts
        soc = readings.battery_percent
        if soc is None:
            self.absent("battery", "no battery: battery constraint inactive")
            self.cap, self.reason = None, "battery: none"
            return None
        if readings.plugged or (readings.battery_power_w is not None and readings.battery_power_w < 0):
            self._costs.clear()
            self._slope.reset()
            self.cap, self.reason, self.urgent = None, "battery: plugged in", False
            return None
        cur = ladder.clamp(stats.level)
        costs = ladder.costs
        self.urgent = soc <= self.critical
        cap, reason = ladder.full, f"battery: {soc:.0f}%"
        if soc <= self.critical:
            cap, reason = 0, f"battery: {soc:.0f}% <= critical {self.critical:g}%"
        elif soc < self.low:
            frac = (soc - self.critical) / (self.low - self.critical)
            budget = costs[0] + (1.0 - costs[0]) * frac
            cap = level_for_budget(costs, budget, cur, self.dead_band)
            reason = f"battery: {soc:.0f}% < {self.low:g}%"
        drain = self._observe(readings, soc, costs[cur])
        deadline = self._target_deadline(stats.now)
        if deadline is not None:
            hours = (deadline - stats.now) / 3600.0
            if hours <= 0:
                reason = f"{reason}, runtime target reached" if cap < ladder.full else "battery: target reached"
            elif drain is not None and drain > 0:
                mean_cost = sum(self._costs) / len(self._costs)
                self.drain_full = drain / (self.idle + (1.0 - self.idle) * mean_cost)
                self.required = soc / hours * (1.0 - self.margin)
                budget = (self.required / self.drain_full - self.idle) / (1.0 - self.idle)
                tcap = level_for_budget(costs, budget, cur, self.dead_band)
                if tcap < cap:
                    cap = tcap
                    reason = (f"battery: {soc:.0f}% for {hours:.1f} h more: drain {self.required:.1f}%/h "
                              f"allowed, full level {self.drain_full:.1f}%/h")
            elif self.cap is not None and self.cap < cap:  # estimating: keep the last target bound
                cap, reason = self.cap, self.reason
        self.reason = reason
        self.cap = None if cap >= ladder.full else cap
        return self.cap


