"""The ladder governor: turns a target level into a move, with hysteresis, degrade-fast/recover-slow
and cooldowns; and :func:`level_for_budget`, the dead-banded map from a cost budget to a level.

Constants follow FACTS.md "Governor and thermal reference constants": Unity Adaptive Performance waits
4 s (performance) / 10 s (thermal) between actions and moves one step at a time when raising; Linux
conservative steps down faster than up.  Here a lower target is applied at once (unless
``down_cooldown_s`` after the last switch has not passed and the move is not urgent); a higher target
must persist for ``up_hold_s`` and ``up_cooldown_s`` must have passed since the last switch, then the
level rises by ``up_step``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

__all__ = ["HysteresisLadder", "level_for_budget", "Slope"]


def level_for_budget(costs: Sequence[float], budget: float, current: int, dead_band: float = 0.05) -> int:
    """Highest level whose relative cost fits ``budget`` (cheapest level if none fits).

    Dead band: a level above ``current`` must fit with ``dead_band`` to spare (cost·(1+band) ≤ budget),
    so a budget hovering at a rung's cost does not flip between two levels.
    """
    up = 1.0 + dead_band
    for i in range(len(costs) - 1, 0, -1):
        c = costs[i] * up if i > current else costs[i]
        if c <= budget:
            return i
    return 0


class Slope:
    """Least-squares slope of (t, y) over the last ``n`` samples (ADPF forecast: ≤ 30 one-second samples).

    O(1) per sample: running sums, with times taken relative to the first sample to limit cancellation.
    """

    __slots__ = ("n", "_buf", "_t0", "_st", "_sy", "_stt", "_sty")

    def __init__(self, n: int = 30):
        self.n = max(2, int(n))
        self.reset()

    def reset(self) -> None:
        self._buf: deque[tuple[float, float]] = deque()
        self._t0: float | None = None
        self._st = self._sy = self._stt = self._sty = 0.0

    def add(self, t: float, y: float) -> None:
        if self._t0 is None:
            self._t0 = t
        t -= self._t0
        self._buf.append((t, y))
        self._st += t
        self._sy += y
        self._stt += t * t
        self._sty += t * y
        if len(self._buf) > self.n:
            ot, oy = self._buf.popleft()
            self._st -= ot
            self._sy -= oy
            self._stt -= ot * ot
            self._sty -= ot * oy

    def __len__(self) -> int:
        return len(self._buf)

    def span(self) -> float:
        """Time covered by the samples held."""
        return self._buf[-1][0] - self._buf[0][0] if len(self._buf) > 1 else 0.0

    def slope(self) -> float:
        k = len(self._buf)
        if k < 2:
            return 0.0
        den = k * self._stt - self._st * self._st
        if den <= 1e-12:
            return 0.0
        s = (k * self._sty - self._st * self._sy) / den
        return s if math.isfinite(s) else 0.0


class HysteresisLadder:
    """Applies time hysteresis to a target level (see the module docstring)."""

    def __init__(self, up_hold_s: float = 3.0, up_cooldown_s: float = 5.0, down_cooldown_s: float = 0.0,
                 up_step: int = 1, dead_band: float = 0.05):
        self.up_hold_s = float(up_hold_s)
        self.up_cooldown_s = float(up_cooldown_s)
        self.down_cooldown_s = float(down_cooldown_s)
        self.up_step = max(1, int(up_step))
        self.dead_band = float(dead_band)
        self.reset()

    def reset(self) -> None:
        self.switches = 0
        self._level: int | None = None
        self._switch_t = -math.inf
        self._above_since: float | None = None
        self.held = ""  # why the last step did not follow the target ("" when it did)

    def step(self, target: int, current: int, now: float, urgent: bool = False, pace_s: float | None = None) -> int:
        """The level to run.  ``pace_s`` (optional) caps the hold and the cooldown of a move up: the
        constraint that held the level down recovers quickly (CPU load, a deadline), so the climb need not
        wait the thermal-scale pace."""
        hold, cool = self.up_hold_s, self.up_cooldown_s
        if pace_s is not None:
            hold, cool = min(hold, pace_s), min(cool, pace_s)
        if current != self._level:
            if self._level is not None:
                self.switches += 1
                self._switch_t = now
            self._level = current
            self._above_since = None
        if target < current:
            self._above_since = None
            if not urgent and now - self._switch_t < self.down_cooldown_s:
                self.held = "cooldown"
                return current
            self.held = ""
            return target
        if target > current:
            if self._above_since is None:
                self._above_since = now
            if now - self._above_since < hold:
                self.held = "recovering"
                return current
            if now - self._switch_t < cool:
                self.held = "cooldown"
                return current
            self.held = ""
            return min(target, current + self.up_step)
        self._above_since = None
        self.held = ""
        return current
