"""Composition: the most conservative governor wins, the reason is recorded, faults go to safe level.

:class:`GovernedPolicy` asks every governor for an upper bound, takes the lowest (first governor wins a
tie), then lets the :class:`~adaptive_csp.control.ladder.HysteresisLadder` decide how fast to get
there.  Its ``Decision.reason`` names the binding constraint (``"thermal: 82.1C ... budget 0.41"``,
``"latency: p95 41.0ms > deadline 33ms"``, ``"unconstrained"``), prefixed by ``"cooldown; "`` or
``"recovering; "`` while the ladder holds a move back.

Explicit missing data:
- ``readings`` None or not a Readings, a source-level fault (``source:*`` in ``Readings.faults``) or a
  snapshot older than ``stale_after_s`` (``stats.now − readings.timestamp``) → every sensor-driven
  governor is bound to ``safe_level`` (reason ``fault:<kind>``);
- a sanitized-away field (``temperature_c:invalid``...) → the governors reading it are bound to
  ``safe_level``;
- an absent signal (None without a fault) → that governor is unconstrained (it says so once).
Each fault kind is logged once.  ``decide`` never raises: an internal error → safe level,
reason ``error:<Type>``.

The governors that predict (latency, contention, thermal PI, battery) share one
:class:`~adaptive_csp.control.predict.ServiceModel`, so the measured slowdown is read once per decision.
With a :class:`~adaptive_csp.control.frames.FrameRule` (``frames``) the decision also carries a frame
interval; on a fault it is 1 (every frame).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from adaptive_csp.control.frames import FrameRule
from adaptive_csp.control.governors import Governor
from adaptive_csp.control.ladder import HysteresisLadder
from adaptive_csp.control.policy import Decision, Policy, RuntimeStats
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.util.log import OnceLogger

__all__ = ["GovernedPolicy"]

log = logging.getLogger(__name__)


class GovernedPolicy(Policy):
    def __init__(self, governors: Sequence[Governor], ladder_governor: HysteresisLadder | None = None, *,
                 name: str = "governed", safe_level: int = 0, stale_after_s: float = 5.0,
                 config: object | None = None, frames: FrameRule | None = None):
        self.name = name
        self.governors = list(governors)
        self.frames = frames
        models = [g.service for g in self.governors if getattr(g, "service", None) is not None]
        shared = next((g.service for g in self.governors if g.name == "latency"), models[0] if models else None)
        for g in self.governors:  # one slowdown estimate for all: the latency governor's if there is one
            if getattr(g, "service", None) is not None:
                g.service = shared
        self.hysteresis = ladder_governor or HysteresisLadder()
        self.safe_level = int(safe_level)
        self.stale_after_s = float(stale_after_s)
        self.config = config
        self.uses_sensors = any(g.signals for g in self.governors)
        self._once = OnceLogger(log)
        self.reset()

    def reset(self) -> None:
        for g in self.governors:
            g.reset()
        self.hysteresis.reset()
        self._r: Readings | None = None
        self._source_fault: str | None = None
        self._field_faults: list[str | None] = [None] * len(self.governors)
        self._last: Decision | None = None
        self._held_by: Governor | None = None  # the governor behind the last move down
        self.last_bounds: dict[str, int | None] = {}

    # faults -------------------------------------------------------------------------------------------
    def _scan(self, r: Readings) -> None:
        """Classify a new snapshot's faults once (the poller hands out the same object until it reads)."""
        self._r = r
        self._source_fault = None
        self._field_faults = [None] * len(self.governors)
        for f in r.faults:
            if f.startswith("source:"):
                self._source_fault = self._source_fault or f
                continue
            field = f.split(":", 1)[0]
            for k, g in enumerate(self.governors):
                if field in g.signals and self._field_faults[k] is None:
                    self._field_faults[k] = f
        for f in (self._source_fault, *self._field_faults):
            if f:
                self._once(f, "policy %s: sensor fault %s -> safe level %d for the affected constraints",
                           self.name, f, self.safe_level)

    def _fault(self, kind: str) -> str:
        self._once(kind, "policy %s: %s -> safe level %d", self.name, kind, self.safe_level)
        return f"fault:{kind}"

    # deciding -----------------------------------------------------------------------------------------
    def decide(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> Decision:
        try:
            return self._decide(readings, stats, ladder)
        except Exception as e:  # noqa: BLE001 - a policy must never crash the camera loop
            kind = f"error:{type(e).__name__}"
            self._once(kind, "policy %s failed (%s: %s) -> safe level", self.name, type(e).__name__, e)
            try:
                lvl = self.safe_index(ladder)
            except Exception:  # noqa: BLE001 - even the ladder is broken
                lvl = 0
            return Decision(lvl, kind)

    def _decide(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> Decision:
        full = len(ladder) - 1
        cur = stats.level
        cur = 0 if cur < 0 else (full if cur > full else cur)
        safe = self.safe_index(ladder)
        common, readings = self._common_fault(readings, stats)
        target, reason, urgent, binder = self._bound(readings, stats, ladder, safe, common)
        if target < cur:  # going down: remember whose constraint it is, for the pace of the way back
            self._held_by = binder
        pace = getattr(self._held_by, "recover_s", None) if target > cur else None
        level = self.hysteresis.step(target, cur, stats.now, urgent, pace)
        held = self.hysteresis.held
        if held:
            reason = f"{held}; {reason}"
        freq = None
        for g in self.governors:
            f = getattr(g, "frequency", None)
            if f is not None:
                freq = f
        k = 1
        if self.frames is not None and common is None:
            k, why = self.frames.choose(stats, self.governors)
            if k > 1:
                reason = f"{reason}; {why}"
        last = self._last
        if (last is not None and last.level == level and last.reason == reason and last.frequency == freq
                and last.frame_interval == k):
            return last
        self._last = d = Decision(level, reason, freq, k)
        return d

    def _common_fault(self, readings: Readings, stats: RuntimeStats) -> tuple[str | None, Readings]:
        """The fault that binds every sensor-driven governor (no readings, a source fault, a stale
        snapshot), or None; and the readings to hand the governors (an empty snapshot if there were none)."""
        if not isinstance(readings, Readings):
            return (self._fault("no_readings") if self.uses_sensors else None), Readings(timestamp=stats.now)
        if not self.uses_sensors:
            return None, readings
        if readings is not self._r:
            self._scan(readings)
        age = stats.now - readings.timestamp
        if self._source_fault is not None:
            return f"fault:{self._source_fault}", readings
        if age > self.stale_after_s or not math.isfinite(age):
            return self._fault("stale"), readings
        return None, readings

    def _bound(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder, safe: int,
               common: str | None) -> tuple[int, str, bool, Governor | None]:
        """Ask every governor for its bound (a faulted one is bound to the safe level); the lowest wins,
        the first on a tie.  Returns (target, reason, urgent, the binding governor)."""
        target, reason, urgent, binder = len(ladder) - 1, "unconstrained", False, None
        bounds = self.last_bounds
        for k, g in enumerate(self.governors):
            if g.signals and (common is not None or self._field_faults[k] is not None):
                cap, why, urg = safe, common or f"fault:{self._field_faults[k]}", True
            else:
                cap = g.update(readings, stats, ladder)
                why, urg = g.reason, g.urgent
            bounds[g.name] = cap
            if cap is not None and cap < target:
                target, reason, urgent, binder = cap, why, urg, g
        return target, reason, urgent, binder

    def __repr__(self) -> str:
        return f"GovernedPolicy({self.name!r}, governors={[g.name for g in self.governors]})"
