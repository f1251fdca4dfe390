"""Choosing (level, frequency) jointly: a wrapper that adds DVFS to any level policy.

Frequencies are fractions of f_max snapped to steps (:data:`DEFAULT_STEPS`, :func:`snap`); the policy only
*requests* one in ``Decision.frequency`` — :mod:`adaptive_csp.power` actuators apply it on a device, the
simulator models it.

:class:`JointDVFSPolicy` asks an inner policy (e.g. the ``battery`` preset) for a level, reads that
level's relative cost as the **energy budget** the inner policy can afford at f_max, and then picks the
pair (level, frequency) that

1. fits the budget: ``cost(L) · E(f) ≤ cost(L_inner)``, with ``E(f)`` the energy per inference above idle
   at frequency ``f`` relative to f_max (:class:`EnergyCurve`: static share + dynamic ``f·V²``, latency
   ``∝ 1/f``, the same model as :mod:`adaptive_csp.sim.device`);
2. meets the deadline: predicted p95 latency ``p95_now · cost(L)/cost(L_now) · f_now/f ≤ headroom ·
   deadline`` (no deadline → no constraint);
3. has the highest level (accuracy) among those — possibly above the inner level, because running slower
   is cheaper per inference (``upgrade=True``) — and, for that level, the frequency with the least energy.

So when the deadline leaves slack, it trades the slack for energy (lower f) and, where that saves enough,
for accuracy (a higher level in the same energy).  Moves that slow inference down must meet the deadline
limit with ``band`` (10 %) to spare — a dead band against p95 noise — and wait ``hold_s`` (the wish must
persist); moves that speed it up, or that the budget / deadline force, happen at once (degrade
fast, recover slowly).  The inner policy sees its own last level as ``stats.level``, so it behaves exactly
as it does without DVFS.  Works in :func:`adaptive_csp.sim.simulate` (which honours
``Decision.frequency``) and on devices through a :class:`~adaptive_csp.power.base.DVFSActuator`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from adaptive_csp.control.policy import Decision, Policy, RuntimeStats
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings

__all__ = ["DEFAULT_STEPS", "snap", "EnergyCurve", "JointDVFSPolicy", "joint_policy"]

DEFAULT_STEPS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def snap(f: float | None, steps: Sequence[float]) -> float:
    """Nearest step to ``f`` (ties → the higher step); None / non-finite → the highest step."""
    if f is None or not math.isfinite(float(f)):
        return max(steps)
    return min(steps, key=lambda s: (abs(s - float(f)), -s))


class EnergyCurve:
    """Above-idle active power and energy per inference vs frequency fraction ``f`` (1.0 at f_max).

    ``power(f) = s + (1 − s)·f·V(f)²`` with ``V`` linear from ``v_min`` at ``f_min`` to 1 at 1, and
    ``energy(f) = power(f) / f`` (latency ∝ 1/f).  Defaults: the simulator's device-class defaults.
    """

    def __init__(self, static_fraction: float = 0.15, v_min: float = 0.7, f_min: float = 0.3):
        if not (0 <= static_fraction < 1 and 0 < v_min <= 1 and 0 < f_min < 1):
            raise ValueError("need 0 <= static_fraction < 1, 0 < v_min <= 1, 0 < f_min < 1")
        self.s, self.v_min, self.f_min = float(static_fraction), float(v_min), float(f_min)

    @classmethod
    def from_device(cls, device) -> EnergyCurve:
        """From a sim ``DeviceClass`` or ``DeviceModel`` (anything with static_fraction, v_min, f_min)."""
        dc = getattr(device, "device", device)
        return cls(dc.static_fraction, dc.v_min, dc.f_min)

    def voltage(self, f: float) -> float:
        if f >= 1.0:
            return 1.0
        if f <= self.f_min:
            return self.v_min
        return self.v_min + (1.0 - self.v_min) * (f - self.f_min) / (1.0 - self.f_min)

    def power(self, f: float) -> float:
        v = self.voltage(f)
        return self.s + (1.0 - self.s) * f * v * v

    def energy(self, f: float) -> float:
        return self.power(f) / f

    def best(self, steps) -> float:
        return min(steps, key=lambda f: (self.energy(f), -f))


def _latency_costs(ladder: LevelLadder) -> tuple[float, ...]:
    lat = [r.latency_ms for r in ladder.rungs]
    if all(v is not None and v > 0 for v in lat):
        return tuple(v / lat[-1] for v in lat)
    return ladder.costs


def _p95(xs: tuple[float, ...]) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(0.95 * len(s)) - 1)]


class JointDVFSPolicy(Policy):
    def __init__(self, inner: Policy, *, steps=DEFAULT_STEPS, curve: EnergyCurve | None = None,
                 headroom: float = 0.85, hold_s: float = 5.0, upgrade: bool = True, min_samples: int = 3,
                 band: float = 0.1, name: str | None = None):
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.inner = inner
        self.steps = tuple(sorted(float(s) for s in steps))
        self.curve = curve or EnergyCurve()
        self.headroom, self.hold_s = float(headroom), float(hold_s)
        self.upgrade, self.min_samples = bool(upgrade), int(min_samples)
        self.band = float(band)
        self.name = name or f"{getattr(inner, 'name', 'policy')}+dvfs"
        self.safe_level = inner.safe_level
        self.reset()

    def reset(self) -> None:
        self.inner.reset()
        self._inner_level: int | None = None
        self._want: tuple[int, float] | None = None
        self._since = 0.0

    def decide(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> Decision:
        istats = stats if self._inner_level is None else replace(stats, level=self._inner_level)
        dec = self.inner.decide(readings, istats, ladder)
        self._inner_level = li = ladder.clamp(dec.level)
        f_now = snap(stats.frequency if stats.frequency is not None else 1.0, self.steps)
        cur = (ladder.clamp(stats.level), f_now)
        lat = stats.latencies_ms
        if len(lat) < self.min_samples:  # nothing observed yet: the inner level at full speed
            return Decision(li, f"{dec.reason}; dvfs: no latencies yet", self.steps[-1])
        costs = ladder.costs  # the inner policy's cost units: the energy budget is kept in them
        lat_cost = _latency_costs(ladder)  # batch-1 latency ratios where measured (what the runner runs)
        unit = _p95(lat) * f_now / lat_cost[cur[0]]  # p95 ms of latency-cost 1.0 at f_max
        budget = costs[li] * (1.0 + 1e-9)
        limit = None if stats.deadline_ms is None else self.headroom * stats.deadline_ms

        cur_lat = unit * lat_cost[cur[0]] / cur[1]

        def feasible(lv: int, f: float) -> bool:
            if costs[lv] * self.curve.energy(f) > budget:
                return False
            if limit is None:
                return True
            lat_p = unit * lat_cost[lv] / f
            # dead band: a pair slower than the current one must fit with ``band`` to spare
            return lat_p <= (limit if lat_p <= cur_lat * (1 + 1e-9) else limit * (1.0 - self.band))

        top = len(ladder) - 1 if self.upgrade else li
        pick = None
        for lv in range(top, li - 1, -1):
            fs = [f for f in self.steps if feasible(lv, f)]
            if fs:
                pick = (lv, min(fs, key=lambda f: (self.curve.energy(f), -f)))
                break
        if pick is None:  # the deadline cannot be met at the inner level: full speed, inner level
            pick = (li, self.steps[-1])
        why = "dvfs"
        if pick != cur and feasible(*cur) and cur[0] >= li and cur[0] <= top:
            slower = unit * lat_cost[pick[0]] / pick[1] > cur_lat * (1 + 1e-9)
            if slower:
                if self._want != pick:
                    self._want, self._since = pick, stats.now
                if stats.now - self._since < self.hold_s:
                    why = "dvfs hold"
                    pick = cur
        if pick != cur and pick == self._want:
            self._want = None
        lv, f = pick
        up = f", above inner L{li}" if lv > li else ""
        return Decision(lv, f"{dec.reason}; {why} L{lv} f={f:.2f}{up}", f)


def joint_policy(inner: str | Policy = "battery", *, device=None, **kw) -> JointDVFSPolicy:
    """``JointDVFSPolicy`` around a preset name or a policy.

    ``device``: anything with ``static_fraction``, ``v_min``, ``f_min`` and ``freq_steps`` (a simulator
    ``DeviceClass`` from ``adaptive_csp.sim.get_device_class(name)``, or a ``DeviceModel``) for the energy
    curve and frequency steps; None: the default curve and :data:`DEFAULT_STEPS`.
    """
    from adaptive_csp.control.presets import create_policy

    inner = create_policy(inner)
    if device is not None:
        if isinstance(device, str):
            raise ValueError(f"device={device!r}: pass a device class object, e.g. "
                             f"adaptive_csp.sim.get_device_class({device!r})")
        dc = getattr(device, "device", device)
        kw.setdefault("curve", EnergyCurve.from_device(dc))
        kw.setdefault("steps", dc.freq_steps)
    return JointDVFSPolicy(inner, **kw)
