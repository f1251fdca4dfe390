"""The simulated world around one device, one decision tick at a time.

:class:`ScenarioTraces` samples a scenario's traces (frame rate, ambient temperature, background load,
frame arrivals, per-frame latency jitter) once from its seed.  :class:`World` holds the device model, the
battery and the RC thermal node: :meth:`World.sense` writes the current values into the runtime's sensor
path and returns the :class:`Readings` a policy sees; :meth:`World.advance` runs one tick at a level and
DVFS frequency and returns a :class:`Tick` (service time, frames processed and dropped, power, battery,
temperature).  The simulator (:mod:`.simulate`) and the demo (:mod:`adaptive_csp.apps.demo`) both drive
this object, so a battery drains and an enclosure heats the same way in both.

Physics per tick (see :mod:`.device` for the assumptions): the board power is
``idle + work·(P_active(f) − idle) + load·P_background``, ``work`` the calls completed in the tick times
their service time over the tick (a call on a slot carried from the last tick's spare time counts in full,
so ``work`` may pass 1 by one call and every call's energy is charged once); the battery drains by it (or charges while
plugged) and the RC node is advanced exactly for the tick.  Throttling caps the frequency at the tick's
starting temperature.  The runner processes the newest frame when free: frames arriving faster than the
service time allows are dropped.  Under a frame interval ``k`` only every k-th arriving frame is offered;
the others are skipped and answered by the last result (scored by the scenario's ``scene_hold_s``).  The
first frame run at a new level costs ``1 + switch_cost`` of its service time (capacity and energy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.sim.battery import Battery
from adaptive_csp.sim.device import DeviceClass, DeviceModel, get_device_class
from adaptive_csp.sim.scenario import Scenario
from adaptive_csp.sim.thermal import ThermalModel

__all__ = ["ScenarioTraces", "World", "Tick", "SensorFeed", "device_for"]


def device_for(scn: Scenario, ladder: LevelLadder, device: str | DeviceClass | None = None) -> DeviceModel:
    """The device model of a scenario: its device class (or ``device``) with the scenario's thermal
    overrides, the ladder's measured latencies, and the scenario's work per frame."""
    dc = get_device_class(device or scn.device)
    th = scn.thermal
    over = {k: v for k, v in (("r_k_per_w", th.r_k_per_w), ("c_j_per_k", th.c_j_per_k),
                              ("t_trip_c", th.t_trip_c), ("t_crit_c", th.t_crit_c)) if v is not None}  # fmt: skip
    if over:
        dc = dc.with_(**over)
    probe = DeviceModel.from_ladder(ladder, dc)
    return DeviceModel.from_ladder(ladder, dc, scn.work_per_frame(probe.base_latency_s[-1]), scn.switch_cost)


@dataclass(frozen=True)
class ScenarioTraces:
    """Per-tick values of a scenario, drawn once from its seed (tick ``k`` starts at ``t[k]``)."""

    dt: float
    t: np.ndarray
    fps: np.ndarray
    ambient_c: np.ndarray
    load: np.ndarray  # other processes' CPU share, 0..0.95
    arrivals: np.ndarray  # frames arriving in each tick (int64)
    jitter: np.ndarray  # mean-one log-normal factor for the n-th processed frame

    @classmethod
    def sample(cls, scn: Scenario, seed: int) -> ScenarioTraces:
        dt = float(scn.decision_interval_s)
        times = np.arange(scn.n_ticks(), dtype=float) * dt
        r_fps, r_amb, r_load, r_arr, r_jit = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))
        fps = np.maximum(scn.frames.sample(times, r_fps, scn.duration_s), 0.0)
        amb = scn.ambient_c.sample(times, r_amb, scn.duration_s)
        load = np.clip(scn.load.sample(times, r_load, scn.duration_s), 0.0, 0.95)
        if scn.arrivals == "poisson":
            n_arr = r_arr.poisson(fps * dt).astype(np.int64)
        else:
            cum = np.floor(np.cumsum(fps * dt) + 1e-9)
            n_arr = np.diff(np.concatenate(([0.0], cum))).astype(np.int64)
        n_total = int(n_arr.sum())
        sig = scn.jitter_sigma
        jitter = r_jit.lognormal(-0.5 * sig * sig, sig, size=n_total) if sig > 0 else np.ones(n_total)
        return cls(dt, times, fps, amb, load, n_arr, jitter)

    def __len__(self) -> int:
        return len(self.t)


class SensorFeed:
    """Writes simulated values into the runtime's scripted sensor source and reads a Readings back.

    Uses ``adaptive_csp.sensors.ScriptedSource`` (a function-of-time script on a manual clock, read with
    ``read(now=t)``), so policies see exactly what the runtime's sensor path produces (sanitized Readings
    stamped with the simulated time).  :meth:`latest` returns the last read, so a feed can also stand in
    for the sensor poller of an :class:`~adaptive_csp.AdaptiveRunner`.
    """

    def __init__(self) -> None:
        from adaptive_csp.sensors.scripted import ManualClock, ScriptedSource

        self._values: dict[str, Any] = {}
        self._now = 0.0
        self.source = ScriptedSource(self._script, clock=ManualClock(0.0), start=0.0, name="sim")
        self._last = Readings(timestamp=0.0, source="sim")

    def _script(self, t: float) -> dict[str, Any]:
        return self._values

    def push(self, now: float, **values: Any) -> None:
        self._values = values
        self._now = now

    def read(self) -> Readings:
        self._last = self.source.read(now=self._now)
        return self._last

    def latest(self) -> Readings:
        return self._last


@dataclass(frozen=True, slots=True)
class Tick:
    """What one tick did."""

    level: int
    frequency: float  # effective (after throttling), fraction of f_max
    service_s: float  # one inference at this level, frequency and load
    arrived: int
    processed: int
    busy: float  # share of the tick spent inferring
    power_w: float
    ran_s: float  # < dt when the battery emptied during the tick
    temperature_c: float  # at the end of the tick
    soc: float | None  # battery state of charge at the end (None: mains powered)
    skipped: int = 0  # frames skipped under a frame interval (answered by the last result)
    stale_correct: float = 0.0  # expected right answers among the skipped frames
    switch_extra: float = 0.0  # the first frame's extra service, a fraction of svc (a level switch)


class World:
    """Device + battery + thermal node + background load for one scenario (see the module docstring)."""

    def __init__(self, scn: Scenario, dev: DeviceModel, *, ambient_c: float | None = None):
        self.scn, self.dev = scn, dev
        dc = dev.device
        self.dt = float(scn.decision_interval_s)
        bs = scn.battery
        self.battery: Battery | None = None
        self.plug_at: dict[int, bool] = {}
        if bs is not None:
            self.battery = Battery(bs.capacity_wh, bs.soc, bs.peukert, bs.rated_hours, bs.plugged, bs.charge_power_w)
            n = scn.n_ticks()
            for ev in bs.events:
                k = int(math.ceil(ev.at_s / self.dt - 1e-9))
                if k < n:
                    self.plug_at[k] = ev.plugged
        self.soc0 = self.battery.soc if self.battery is not None else None
        self.ever_plugged = bool(self.battery is not None and (self.battery.plugged or any(self.plug_at.values())))
        amb0 = ambient_c if ambient_c is not None else 25.0
        self.thermal = ThermalModel(dc.r_k_per_w, dc.c_j_per_k, amb0, scn.thermal.start_c)
        self.feed = SensorFeed()
        self._p_act: dict[float, float] = {}
        self.slots = 0.0  # fractional inference capacity carried between ticks (at most one frame)
        self.last_level: int | None = None  # level of the last frame run (a switch is charged against it)
        self._since = 0  # frames since the last one offered to the engine (frame interval)
        self.last_power = dc.idle_power_w
        self.last_util = 0.0  # whole-machine CPU %, as psutil would report it
        self.last_own = 0.0  # the camera process's share
        self.energy_j = 0.0
        self.above_crit_s = 0.0
        self.above_trip_s = 0.0
        self.max_temperature_c = float(self.thermal.temperature_c)
        self.died_at: float | None = None

    # sensing ----------------------------------------------------------------------------------------
    def sense(self, k: int, t: float) -> Readings:
        """Apply the plug events of tick ``k`` and return what the sensors read at time ``t``."""
        b = self.battery
        if b is not None and k in self.plug_at:
            b.plugged = self.plug_at[k]
        vals: dict[str, Any] = {"cpu_percent": self.last_util, "own_cpu_percent": self.last_own,
                                "temperature_c": self.thermal.temperature_c, "power_w": self.last_power}
        if b is not None:
            vals.update(battery_percent=b.soc * 100.0, plugged=b.plugged,
                        battery_power_w=0.0 if b.plugged else self.last_power)
        else:
            vals["plugged"] = True
        self.feed.push(t, **vals)
        return self.feed.read()

    # physics ----------------------------------------------------------------------------------------
    def service_s(self, level: int, frequency: float, load: float, temperature_c: float) -> tuple[float, float]:
        """``(one inference's seconds, effective frequency)`` at this level, request, load and temperature."""
        dc = self.dev.device
        f_eff = frequency
        if temperature_c > dc.t_trip_c:
            f_eff = min(frequency, self.dev.throttle_cap(temperature_c))
        return self.dev.base_latency_s[level] / f_eff * (1.0 / (1.0 - dc.contention * load)), f_eff

    def advance(self, t: float, level: int, frequency: float, arrived: int, load: float, ambient_c: float,
                dt: float | None = None, interval: int = 1) -> Tick:
        """Run ``dt`` seconds (default: the scenario's tick) at ``level`` and requested ``frequency``.

        ``interval``: run every k-th arriving frame; the others are skipped (answered by the last result).
        The first frame run at a level other than the previous frame's pays the device's switching cost.
        """
        dt = self.dt if dt is None else float(dt)
        dc = self.dev.device
        temp = self.thermal.temperature_c
        svc, f_eff = self.service_s(level, frequency, load, temp)
        wanted, skipped, ages = self._offer(arrived, interval)
        extra = self.dev.switch_cost if self.last_level is not None and level != self.last_level else 0.0
        slots = self.slots + dt / svc - extra
        n_proc = wanted if wanted <= slots else max(0, int(slots))
        if n_proc == 0 and extra:  # nothing ran at the new level: the switch is still ahead
            slots, extra = slots + extra, 0.0
        slots -= n_proc
        self.slots = slots if slots < 1.0 else 1.0
        if n_proc:
            self.last_level = level
        stale = self._stale_correct(ages, dt / arrived if arrived else dt)
        work = (n_proc + extra) * svc / dt  # the calls completed, in ticks of work
        busy = work if work < 1.0 else 1.0  # share of the tick spent inferring
        p_act = self._p_act.get(f_eff)
        if p_act is None:
            p_act = self._p_act[f_eff] = self.dev.active_power_w(f_eff)
        # every call completed is charged in full: one run on a carried slot (begun in the last tick's spare
        # time) may take ``work`` past 1, and capping it there would run that call for free
        power = dc.idle_power_w + work * (p_act - dc.idle_power_w) + load * dc.background_power_w
        ran = dt if self.battery is None else self.battery.drain(power, dt)
        self.energy_j += power * ran
        t_new = self.thermal.step(power, ran, ambient_c)
        self.above_crit_s += _time_above(dc.t_crit_c, temp, t_new, ran)
        self.above_trip_s += _time_above(dc.t_trip_c, temp, t_new, ran)
        if t_new > self.max_temperature_c:
            self.max_temperature_c = t_new
        self.last_power = power
        self.last_own = 100.0 * busy * (1.0 - load)
        self.last_util = 100.0 * min(1.0, load + busy * (1.0 - load))
        soc = None
        if self.battery is not None:
            soc = self.battery.soc
            if ran < dt:
                self.died_at = t + ran
        return Tick(level, f_eff, svc, arrived, n_proc, busy, power, ran, t_new, soc, skipped, stale, extra)

    def _offer(self, arrived: int, interval: int) -> tuple[int, int, list[int]]:
        """``(frames to run, frames skipped, each skipped frame's age in frames)`` under a frame interval."""
        if interval <= 1:
            self._since = 0
            return arrived, 0, []
        wanted, ages = 0, []
        for _ in range(arrived):
            if self._since + 1 >= interval:
                wanted += 1
                self._since = 0
            else:
                self._since += 1
                ages.append(self._since)
        return wanted, len(ages), ages

    def _stale_correct(self, ages: list[int], spacing_s: float) -> float:
        """Expected right answers among skipped frames: the last result's accuracy, decayed by the scene."""
        hold = self.scn.scene_hold_s
        if not ages or hold <= 0 or self.last_level is None:
            return 0.0
        acc = self.dev.accuracy[self.last_level]
        if acc is None:
            return 0.0
        return float(acc) * sum(math.exp(-a * spacing_s / hold) for a in ages)

    # outcome ----------------------------------------------------------------------------------------
    def battery_life(self, simulated_s: float) -> tuple[float | None, bool]:
        """``(seconds, projected)``: when the pack emptied, else projected from its drain, else None."""
        b = self.battery
        if b is None:
            return None, False
        if self.died_at is not None:
            return self.died_at, False
        if not self.ever_plugged and self.soc0 is not None and self.soc0 - b.soc > 1e-9:
            return simulated_s * self.soc0 / (self.soc0 - b.soc), True
        return None, False


def _time_above(limit: float, t0: float, t1: float, ran: float) -> float:
    """Seconds above ``limit`` during a tick that went from ``t0`` to ``t1`` °C (linear between them)."""
    if t0 > limit and t1 > limit:
        return ran
    if t1 > limit:
        return ran * (t1 - limit) / (t1 - t0)
    if t0 > limit:
        return ran * (t0 - limit) / (t0 - t1)
    return 0.0
