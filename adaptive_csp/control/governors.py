"""Governor base class and the small governors: a static cost cap, CPU contention, confidence.

A governor is one concept (thermal, latency, battery, contention...) with one decision function:
``update(readings, stats, ladder) -> int | None``, an upper bound on the level index (None =
unconstrained), with :attr:`reason` saying why.  Governors never raise for an absent signal: they log
once and stay unconstrained.  Faults and stale snapshots are handled by the composing policy
(:mod:`adaptive_csp.control.compose`) using :attr:`signals`, the Readings fields a governor reads.
"""

from __future__ import annotations

import logging
import os

from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.control.predict import ServiceModel
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.util.log import OnceLogger

__all__ = ["Governor", "StaticCap", "ContentionGovernor", "ConfidenceGovernor"]

log = logging.getLogger(__name__)
_once = OnceLogger(log)


class Governor:
    name = "governor"
    signals: tuple[str, ...] = ()  # Readings fields used; () = runtime stats only
    urgent = False  # set by update() when the bound must bypass the down cooldown
    recover_s: float | None = None  # climbing back after this constraint eases may go this fast (None: the
    # ladder's own pace); for signals that recover at once (CPU load, deadlines), not for heat or charge

    def __init__(self) -> None:
        self.cap: int | None = None
        self.reason = ""

    def update(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        raise NotImplementedError

    def reset(self) -> None:
        self.cap = None
        self.reason = ""
        self.urgent = False

    @staticmethod
    def absent(kind: str, msg: str) -> None:
        """Say once that a signal is missing (the governor is then unconstrained)."""
        _once(kind, msg, level=logging.INFO)


class StaticCap(Governor):
    """Highest level whose relative cost ≤ ``max_cost`` (powersave-style fixed ceiling)."""

    name = "max_cost"

    def __init__(self, max_cost: float = 1.0):
        super().__init__()
        self.max_cost = float(max_cost)
        self._ladder: LevelLadder | None = None
        self.reason = f"max_cost: {self.max_cost:g}"

    def reset(self) -> None:
        super().reset()
        self._ladder = None
        self.reason = f"max_cost: {self.max_cost:g}"

    def update(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        if ladder is not self._ladder:
            self._ladder = ladder
            costs = ladder.costs
            fit = [i for i, c in enumerate(costs) if c <= self.max_cost + 1e-12]
            self.cap = None if (fit and fit[-1] == len(costs) - 1) else (fit[-1] if fit else 0)
        return self.cap


class ContentionGovernor(Governor):
    """CPU contention from other processes → the highest rung predicted to meet the deadline under it.

    Signals, each against its own thresholds: ``cpu_pressure`` (PSI "some": the share of the last poll
    interval in which a runnable task waited for a CPU — an instantaneous reading, see the sysfs source)
    and other processes' share of the CPU time this process leaves, ``(cpu − own) / (100 − own)`` (both
    measured over the last poll interval).  Both are read where both exist: two busy processes beside a
    light runner saturate the other processes' share while PSI stays low (the runner rarely waits long),
    while a runner whose own threads crowd the cores shows in PSI only.  Without them ``cpu_percent``, else
    ``load_avg[0]`` per CPU.  Loaded when any signal is at or above its high threshold; calm when all are
    at or below their low ones.

    Loaded, with a deadline (the runner's) and measured latencies, contention shows up as slowdown: the
    cap is the highest rung whose predicted p95 (:class:`~adaptive_csp.control.predict.ServiceModel`,
    shared with the latency governor) fits ``deadline·(1 − margin/2)`` — in one decision, a middle rung
    under a heavy load, not the bottom.  Without a deadline or latencies it steps: one level below
    ``min(cap, current level)``, at most once per ``step_s``.

    Hysteresis, so a flapping load does not flap the level:

    - at or below ``*_low`` for ``clear_s`` in a row → the cap is released (the load has gone); the ladder
      then climbs back a rung per ``recover_s = 2·step_s`` (half the speed it came down) rather than at
      its thermal-scale pace;
    - in the dead band between them → hold, and the calm time starts again;
    - a load that returns within ``rearm_s`` of a release doubles ``clear_s`` (up to ``max_clear_s``);
      a release that lasts ``rearm_s`` brings it back to its base value.
    """

    name = "contention"
    signals = ("cpu_pressure", "cpu_percent", "own_cpu_percent", "load_avg")

    def __init__(self, pressure_high: float = 40.0, pressure_low: float = 10.0, util_high: float = 85.0,
                 util_low: float = 50.0, step_s: float = 0.5, clear_s: float = 1.5, rearm_s: float = 20.0,
                 max_clear_s: float = 24.0, margin: float = 0.1):
        super().__init__()
        self.margin = float(margin)
        self.service = ServiceModel()
        self.pressure_high, self.pressure_low = float(pressure_high), float(pressure_low)
        self.util_high, self.util_low = float(util_high), float(util_low)
        self.step_s = float(step_s)
        self.recover_s = 2.0 * self.step_s  # climb back at half the speed it came down
        self.base_clear_s, self.rearm_s, self.max_clear_s = float(clear_s), float(rearm_s), float(max_clear_s)
        self._ncpu = os.cpu_count() or 1
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.service.reset()
        self._last_step = -float("inf")
        self._ts: float | None = None
        self._calm_since: float | None = None
        self._released_at = -float("inf")
        self.clear_s = self.base_clear_s

    def _signals(self, r: Readings) -> list[tuple[str, float, float, float]]:
        """``(kind, value, high, low)`` of every contention signal the readings hold, best first."""
        out = []
        if r.cpu_pressure is not None:
            out.append(("psi", r.cpu_pressure, self.pressure_high, self.pressure_low))
        if r.cpu_percent is not None and r.own_cpu_percent is not None:
            # other processes' share of the CPU time we leave: 100 % = they take all of it (saturated)
            own = min(r.own_cpu_percent, 99.0)
            u = max(0.0, min(100.0, 100.0 * (r.cpu_percent - own) / (100.0 - own)))
            out.append(("others", u, self.util_high, self.util_low))
        elif r.cpu_percent is not None and not out:
            out.append(("cpu", r.cpu_percent, self.util_high, self.util_low))
        if r.load_avg is not None and not out:
            n = len(r.per_cpu_percent) if r.per_cpu_percent else self._ncpu
            out.append(("load", 100.0 * r.load_avg[0] / n, self.util_high, self.util_low))
        return out

    def update(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        if readings.timestamp == self._ts:
            return self.cap
        self._ts = readings.timestamp
        sigs = self._signals(readings)
        if not sigs:
            self.absent("contention", "no CPU utilisation or pressure signal: contention constraint inactive")
            self.cap, self.reason = None, "contention: no signal"
            return None
        # the most severe signal speaks: loaded if any is high, calm only if all are low
        high = [x for x in sigs if x[1] >= x[2]]
        kind, v, hi, lo = high[0] if high else max(sigs, key=lambda x: x[1] - x[3])
        calm = not high and all(x[1] <= x[3] for x in sigs)
        now = stats.now
        if high:
            self._calm_since = None
            if self.cap is None and now - self._released_at < self.rearm_s:  # back soon after a release
                self.clear_s = min(self.max_clear_s, 2.0 * self.clear_s)
            sm, deadline = self.service, stats.deadline_ms
            sm.observe(stats, ladder)
            if deadline and deadline > 0 and len(sm) >= 2:
                j = max(0, sm.fit(deadline * (1.0 - 0.5 * self.margin)))
                self.cap = None if j >= ladder.full else j
                self.reason = (f"contention: {kind} {v:.0f}% >= {hi:g}%, L{j} predicted "
                               f"{sm.predict_ms(j):.1f}ms for {deadline:g}ms")
                return self.cap
            if now - self._last_step >= self.step_s:
                cur = ladder.clamp(stats.level)
                new = max(0, (cur if self.cap is None else min(self.cap, cur)) - 1)
                if new != self.cap:
                    self.cap, self._last_step = new, now
            self.reason = f"contention: {kind} {v:.0f}% >= {hi:g}%"
        elif calm:
            if self.cap is None:
                if now - self._released_at >= self.rearm_s:
                    self.clear_s = self.base_clear_s
                return None
            if self._calm_since is None:
                self._calm_since = now
            if now - self._calm_since >= self.clear_s:
                self.cap, self._released_at, self._calm_since = None, now, None
                self.reason = f"contention: {kind} {v:.0f}% <= {lo:g}% for {self.clear_s:g} s, released"
            else:
                self.reason = f"contention: {kind} {v:.0f}% easing"
        else:
            self._calm_since = None
        return self.cap


class ConfidenceGovernor(Governor):
    """Confident predictions → try one level cheaper; unsure predictions → give the level back.

    An EMA (``alpha``) of ``RuntimeStats.confidence`` (the last prediction's top-1 probability): at or
    above ``high`` for ``hold_s`` → bound one level below the current one (not below ``floor_level``);
    at or below ``low`` → raise the bound one level per ``hold_s``.  No confidence → unconstrained.
    """

    name = "confidence"

    def __init__(self, high: float = 0.95, low: float = 0.8, hold_s: float = 5.0, alpha: float = 0.1,
                 floor_level: int = 0):
        super().__init__()
        self.high, self.low, self.hold_s = float(high), float(low), float(hold_s)
        self.alpha, self.floor_level = float(alpha), int(floor_level)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.ema: float | None = None
        self._since: float | None = None
        self._last_step = -float("inf")

    def update(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        c = stats.confidence
        if c is None or not 0.0 <= c <= 1.0:  # also rejects NaN
            if self.ema is None:
                self.absent("confidence", "no prediction confidence: confidence preference inactive")
            return self.cap
        self.ema = c if self.ema is None else self.ema + self.alpha * (c - self.ema)
        now = stats.now
        if now - self._last_step < self.hold_s:
            return self.cap
        cur = ladder.clamp(stats.level)
        floor = ladder.clamp(self.floor_level)
        if self.ema >= self.high:
            if self._since is None:
                self._since = now
            if now - self._since >= self.hold_s and cur > floor and (self.cap is None or cur <= self.cap):
                self.cap, self._last_step, self._since = cur - 1, now, None
                self.reason = f"confidence: {self.ema:.2f} >= {self.high:g}, trying a cheaper level"
            return self.cap
        self._since = None
        if self.ema <= self.low and self.cap is not None:
            self.cap = None if self.cap + 1 >= ladder.full else self.cap + 1
            self._last_step = now
            self.reason = f"confidence: {self.ema:.2f} <= {self.low:g}, giving levels back"
        return self.cap
