"""Battery governor: an energy-per-second budget from the remaining charge and a runtime, spent evenly.

Budget.  The charge above ``critical_percent`` is spread evenly over the time left to the target:
``required = (SoC − critical) / hours_left · (1 − margin)`` %/h.  The target is ``target_hours`` ("last
8 h") or ``until`` ("18:00" local time); the budget is re-planned from the charge left at every sample,
so a rung that under-spends raises it (the level mixes two adjacent rungs) and the target is met.  Without
a target, once the SoC is below ``low_percent``, the default horizon is ``stretch ×`` the runtime the full
level would give (``stretch`` = 1.5: a 50 % longer life than running flat out): a constant budget of
``1/stretch`` of the full level's power, so the level holds one rung for the whole discharge.

Prediction.  The full level's drain ``D_full`` is the observed discharge (``battery_power_w /
capacity_wh`` when both are known, else the least-squares SoC slope over ``window_s``) divided by the
predicted power share of the rungs that ran meanwhile; rung ``j``'s drain is ``D_full · p_j`` with
``p_j`` the shared power model (:meth:`~adaptive_csp.control.predict.ServiceModel.powers`: idle share
``idle_fraction`` plus the busy share, predicted latency × frame rate).  The cap is the most accurate rung
on the accuracy/power hull whose predicted drain fits the budget (dead-banded): the level holds at the rung (or the mix of two adjacent
rungs, as the budget re-plans) that lasts, instead of full-then-cheapest.  When even the cheapest rung
does not fit, :attr:`interval` asks for running every k-th frame (the policy bounds it by ``min_fps``).

At or below ``critical_percent``: the cheapest level (urgent).  Plugged in or charging → unconstrained.
No battery → unconstrained, said once in the log.  SoC model: coulomb counting, FACTS.md "Models for
simulation".
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from adaptive_csp.control.governors import Governor
from adaptive_csp.control.ladder import Slope
from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.control.predict import ServiceModel, efficient_rungs, rung_for_power
from adaptive_csp.control.predict import accuracies as _accuracies
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings

__all__ = ["BatteryGovernor", "seconds_until", "interval_for_budget"]


def seconds_until(hhmm: str, now: datetime | None = None) -> float:
    """Seconds from ``now`` (local wall clock) to the next ``HH:MM``."""
    h, m = (int(x) for x in hhmm.split(":"))
    now = now or datetime.now()
    target = now.replace(hour=h, minute=m, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    return (target - now).total_seconds()


def interval_for_budget(p_cheapest: float, idle_share: float, budget: float, most: int = 8) -> int:
    """Smallest frame interval k (≤ ``most``) at which the cheapest rung's power
    ``idle_share + (p_cheapest − idle_share)/k`` fits ``budget`` (``most`` when none does)."""
    active = p_cheapest - idle_share
    if active <= 0 or budget >= p_cheapest:
        return 1
    if budget <= idle_share:
        return most
    return min(most, max(1, math.ceil(active / (budget - idle_share) - 1e-9)))


class BatteryGovernor(Governor):
    name = "battery"
    signals = ("battery_percent", "battery_power_w", "plugged")

    def __init__(self, low_percent: float = 40.0, critical_percent: float = 10.0,
                 target_hours: float | None = None, until: str | None = None, idle_fraction: float = 0.3,
                 window_s: float = 600.0, min_window_s: float = 120.0, sample_s: float = 1.0,
                 capacity_wh: float | None = None, margin: float = 0.05, dead_band: float = 0.05,
                 wall_clock: Callable[[], datetime] | None = None, stretch: float = 1.5):
        super().__init__()
        self.low, self.critical = float(low_percent), float(critical_percent)
        self.target_hours, self.until = target_hours, until
        self.idle = float(idle_fraction)
        self.window_s, self.min_window_s = float(window_s), float(min_window_s)
        self.sample_s, self.capacity_wh = float(sample_s), capacity_wh
        self.margin, self.dead_band = float(margin), float(dead_band)
        self.stretch = float(stretch)
        self.wall_clock = wall_clock or datetime.now
        self.service = ServiceModel()
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.service.reset()
        self._ts = -math.inf
        self._deadline: float | None = None  # on the stats.now clock
        n = max(2, int(round(self.window_s / self.sample_s)))
        self._shares: deque[float] = deque(maxlen=n)  # predicted power share of what ran, per sample
        self._slope = Slope(n)  # SoC over time
        self.drain_full: float | None = None  # %/h at the full level
        self.required: float | None = None  # %/h allowed to meet the target
        self.budget: float | None = None  # share of the full level's power
        self.interval = 1

    def _target_deadline(self, now: float) -> float | None:
        if self._deadline is None:
            if self.target_hours:
                self._deadline = now + 3600.0 * float(self.target_hours)
            elif self.until:
                self._deadline = now + seconds_until(self.until, self.wall_clock())
        return self._deadline

    def _observe(self, r: Readings, soc: float, share: float) -> float | None:
        """Add a sample; return the observed drain in %/h (positive when discharging) or None."""
        self._shares.append(share)
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
        self.interval = 1
        if soc is None:
            self.absent("battery", "no battery: battery constraint inactive")
            self.cap, self.reason = None, "battery: none"
            return None
        if readings.plugged or (readings.battery_power_w is not None and readings.battery_power_w < 0):
            self._shares.clear()
            self._slope.reset()
            self.cap, self.reason, self.urgent = None, "battery: plugged in", False
            return None
        cur = ladder.clamp(stats.level)
        sm = self.service
        sm.observe(stats, ladder)
        powers = sm.powers(self.idle, max(1, stats.frame_interval))
        drain = self._observe(readings, soc, powers[cur])
        if drain is not None and drain > 0:
            self.drain_full = drain / (sum(self._shares) / len(self._shares))
        self.urgent = soc <= self.critical
        if self.urgent:
            self.cap, self.reason = 0, f"battery: {soc:.0f}% <= critical {self.critical:g}%"
            return 0
        self.cap, self.reason = self._plan(soc, stats.now, cur, sm, ladder)
        return self.cap

    def _plan(self, soc: float, now: float, cur: int, sm: ServiceModel,
              ladder: LevelLadder) -> tuple[int | None, str]:
        """The cap and its reason from the even-spending budget (None = unconstrained)."""
        deadline = self._target_deadline(now)
        powers = sm.powers(self.idle)
        if deadline is None:
            if soc >= self.low:
                return None, f"battery: {soc:.0f}%"
            self.budget = b = 1.0 / self.stretch
            why = f"battery: {soc:.0f}% < {self.low:g}%: {b:.2f} of the full level's power (last {self.stretch:g}x)"
        else:
            hours = (deadline - now) / 3600.0
            if hours <= 0:
                return None, f"battery: {soc:.0f}%, runtime target reached"
            if not self.drain_full:  # estimating: keep the last bound
                return self.cap, self.reason or f"battery: {soc:.0f}%, estimating the drain"
            self.required = max(0.0, soc - self.critical) / hours * (1.0 - self.margin)
            self.budget = b = self.required / self.drain_full
            why = (f"battery: {soc:.0f}% for {hours:.1f} h more: {self.required:.2f}%/h allowed = "
                   f"{b:.2f} of the full level's {self.drain_full:.2f}%/h")
        cap = rung_for_power(powers, efficient_rungs(powers, _accuracies(ladder)), b, cur, self.dead_band)
        if b < powers[0]:
            self.interval = interval_for_budget(powers[0], sm.idle_share(self.idle), b)
        return (None if cap >= ladder.full else cap), f"{why}, L{cap} predicted {powers[cap]:.2f}"
