"""Device classes and the per-level device model built from a measured ladder.

A :class:`DeviceClass` is a named kind of board: how much slower (or faster) than *this CPU* it runs the
network, how much power it draws while inferring and while idle, its DVFS range, its thermal node and its
throttling behaviour.  :meth:`DeviceModel.from_ladder` takes a ladder whose rungs carry batch-1 latencies
measured on this CPU and turns every level into a latency (s) and an energy per inference (J) on that
device class, then answers the simulator's questions under DVFS, throttling and background load.

Assumptions, stated because nothing here was measured with a power meter
------------------------------------------------------------------------
* This machine has no RAPL / power sensor, so **energy per inference = latency × the class's nominal
  active power**.  For ``cpu`` that nominal power (15 W for the two cores we run on, idle 5 W) is an
  assumption, not a measurement.
* ``latency_scale`` for the other classes is an assumed ratio to this CPU's batch-1 latency, not a
  measurement on that hardware; the relative costs between levels are the measured ones.
* DVFS: latency ∝ 1/f (compute-bound), dynamic power ∝ f·V² with V linear in f from ``v_min`` at
  ``f_min`` to 1 at ``f = 1`` (all as fractions of the maximum).  A fixed ``static_fraction`` of the
  active-above-idle power does not scale with f.
* Throttling: above ``t_trip_c`` the hardware caps the frequency, linearly down to ``throttle_floor`` at
  ``t_crit_c`` and held there above it (latency grows, power drops, as real boards do; they would shut
  down at some point beyond ``t_crit_c`` — the simulator reports time spent above it instead).
* Background load ``u`` (0..1) from other processes slows inference by ``1 / (1 − contention·u)`` and adds
  ``u · background_power_w``.
* Switching: the first frame run at a level other than the previous frame's costs ``1 + switch_cost`` of
  that level's service time (see :data:`SWITCH_COST`), so a schedule cannot win by flapping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from adaptive_csp.levels import LevelLadder

__all__ = ["DeviceClass", "DeviceModel", "DEVICE_CLASSES", "get_device_class", "SWITCH_COST", "switch_cost_for"]

#: Extra service time of the first call after a level switch, as a fraction of one call at the new level:
#: the switched / held ratio minus 1, per engine, from the level-switch section of
#: ``python benchmarks/engines.py`` (a call right after a level switch vs the same level held, medians of
#: A/B pairs at batch 1, 1 thread; docs/results/engines.md).  On ONNX Runtime each level is its own session.
#: The simulator charges the runner's default engine (``auto`` picks ONNX Runtime on a CPU); a scenario may
#: set ``switch_cost`` itself.
SWITCH_COST: dict[str, float] = {"onnxruntime": 0.093, "torch": 0.031}
DEFAULT_SWITCH_ENGINE = "onnxruntime"


def switch_cost_for(engine: str | None = None) -> float:
    """The measured switching cost of ``engine`` (default: the runner's default engine on a CPU)."""
    name = DEFAULT_SWITCH_ENGINE if engine in (None, "auto") else engine
    try:
        return SWITCH_COST[name]
    except KeyError:
        raise ValueError(f"no switching cost measured for engine {engine!r}; known: {sorted(SWITCH_COST)}") from None


@dataclass(frozen=True)
class DeviceClass:
    name: str
    description: str
    latency_scale: float  # × this CPU's measured batch-1 latency
    active_power_w: float  # whole-board power while inferring at f_max
    idle_power_w: float  # whole-board power while idle
    r_k_per_w: float  # thermal resistance, K/W
    c_j_per_k: float  # thermal capacitance, J/K
    t_trip_c: float  # throttling starts
    t_crit_c: float  # the temperature we report time above (and throttle_floor is reached)
    throttle_floor: float = 0.5  # frequency cap (fraction of f_max) at/after t_crit_c
    f_min: float = 0.3
    v_min: float = 0.7  # voltage at f_min as a fraction of the voltage at f_max
    freq_steps: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    static_fraction: float = 0.15  # share of (active − idle) that does not scale with f
    contention: float = 0.75  # fraction of other processes' CPU share that steals inference time
    background_power_w: float = 0.0  # extra power at 100 % background load
    assumptions: str = ""

    def __post_init__(self) -> None:
        if not (self.latency_scale > 0 and self.active_power_w > self.idle_power_w >= 0):
            raise ValueError(f"device class {self.name!r}: need latency_scale > 0, active > idle >= 0")
        if not 0 < self.f_min <= self.throttle_floor <= 1:
            raise ValueError(f"device class {self.name!r}: need 0 < f_min <= throttle_floor <= 1")
        if not self.t_trip_c < self.t_crit_c:
            raise ValueError(f"device class {self.name!r}: need t_trip_c < t_crit_c")

    def with_(self, **kw) -> DeviceClass:
        return replace(self, **kw)

    @property
    def tau_s(self) -> float:
        return self.r_k_per_w * self.c_j_per_k


# _BOARD_SPEED: the assumed boards are stated as ratios to this CPU's eager-torch batch-1 latency of the
# full rung (×6, ×3), but the simulated ladder is the shipped model's ONNX Runtime batch-1 view (what the
# runner runs on a CPU).  Their latency_scale multiplies the ratio by 2.77, the full rung's eager-torch /
# ONNX Runtime latency ratio, so each scenario's full rung keeps the service time its deadline was written
# for, while the cheaper rungs cost their ONNX Runtime share of it.  "cpu" is this machine as measured:
# ORT latencies unscaled.
DEVICE_CLASSES: dict[str, DeviceClass] = {
    "cpu": DeviceClass(
        name="cpu",
        description="this CPU as measured (2 cores of an x86 server)",
        latency_scale=1.0,
        active_power_w=15.0,
        idle_power_w=5.0,
        r_k_per_w=2.0,  # 25 °C + 2 K/W · 15 W = 55 °C at full load (desktop-class cooler)
        c_j_per_k=60.0,  # τ = 120 s
        t_trip_c=90.0,
        t_crit_c=100.0,
        throttle_floor=0.6,
        background_power_w=8.0,
        assumptions="latency measured here; active 15 W / idle 5 W are nominal (no RAPL on this machine)",
    ),
    "jetson-nano": DeviceClass(
        name="jetson-nano",
        description="Jetson-Nano-like 5-10 W board, passive heatsink",
        latency_scale=16.6,  # 6 × 2.77: see _BOARD_SPEED above
        active_power_w=10.0,
        idle_power_w=2.0,
        r_k_per_w=9.0,  # sustains ~5 W at 70 °C from 25 °C ambient
        c_j_per_k=20.0,  # τ = 180 s
        t_trip_c=85.0,
        t_crit_c=95.0,
        throttle_floor=0.6,
        background_power_w=3.0,
        assumptions="full rung ×6 this CPU's eager-torch latency (assumed; ×16.6 its ONNX Runtime latency, which "
                    "the simulated ladder now carries); 10 W MAXN active, 2 W idle (datasheet-like, assumed)",
    ),
    "phone-3w": DeviceClass(
        name="phone-3w",
        description="phone-like SoC with a 3 W sustained budget (5 W burst)",
        latency_scale=8.3,  # 3 × 2.77: see _BOARD_SPEED above
        active_power_w=5.0,
        idle_power_w=0.5,
        r_k_per_w=50.0 / 3.0,  # sustains 3 W at 75 °C (die) from 25 °C ambient
        c_j_per_k=18.0,  # τ = 300 s
        t_trip_c=85.0,
        t_crit_c=95.0,
        throttle_floor=0.7,
        background_power_w=1.5,
        assumptions="full rung ×3 this CPU's eager-torch latency (assumed; ×8.3 its ONNX Runtime latency); "
                    "5 W burst / 0.5 W idle, 3 W sustainable (assumed)",
    ),
}


def get_device_class(name: str | DeviceClass) -> DeviceClass:
    if isinstance(name, DeviceClass):
        return name
    try:
        return DEVICE_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown device class {name!r}; known: {sorted(DEVICE_CLASSES)}") from None


@dataclass
class DeviceModel:
    """Per-level latency and energy on one device class.

    ``base_latency_s[i]``: one inference of level ``i`` at f_max, unloaded, unthrottled (already multiplied
    by the class's ``latency_scale`` and by ``work_per_frame``).  ``accuracy[i]`` from the ladder (None
    where not measured).  ``switch_cost``: the first frame after a level change takes ``1 + switch_cost``
    of its service time (:data:`SWITCH_COST`).
    """

    device: DeviceClass
    base_latency_s: tuple[float, ...]
    accuracy: tuple[float | None, ...]
    work_per_frame: float = 1.0
    switch_cost: float = SWITCH_COST[DEFAULT_SWITCH_ENGINE]

    def __post_init__(self) -> None:
        if not (0.0 <= self.switch_cost <= 10.0):
            raise ValueError(f"switch_cost must be within 0..10 (a fraction of one call), got {self.switch_cost!r}")

    @classmethod
    def from_ladder(
        cls, ladder: LevelLadder, device_class: str | DeviceClass = "cpu", work_per_frame: float = 1.0,
        switch_cost: float | None = None,
    ) -> DeviceModel:
        dc = get_device_class(device_class)
        lat_ms = [r.latency_ms for r in ladder.rungs]
        if any(v is None or not v > 0 for v in lat_ms):
            raise ValueError(
                "the device model needs a batch-1 latency_ms measured for every rung of the ladder "
                "(run `adaptive-csp profile`, or pass a ladder JSON that has them)"
            )
        if not work_per_frame > 0:
            raise ValueError("work_per_frame must be > 0")
        base = tuple(float(v) * dc.latency_scale * work_per_frame / 1000.0 for v in lat_ms)
        sc = switch_cost_for() if switch_cost is None else float(switch_cost)
        return cls(dc, base, tuple(r.accuracy for r in ladder.rungs), float(work_per_frame), sc)

    def __len__(self) -> int:
        return len(self.base_latency_s)

    # DVFS ---------------------------------------------------------------------------------------------
    def snap_frequency(self, f: float | None) -> float:
        """Nearest supported frequency step (fraction of f_max) to a requested one."""
        if f is None or not math.isfinite(f):
            return 1.0
        steps = self.device.freq_steps
        return min(steps, key=lambda s: (abs(s - f), -s))

    def voltage(self, f: float) -> float:
        d = self.device
        if f >= 1.0:
            return 1.0
        if f <= d.f_min:
            return d.v_min
        return d.v_min + (1.0 - d.v_min) * (f - d.f_min) / (1.0 - d.f_min)

    def active_power_w(self, f: float = 1.0) -> float:
        """Board power while inferring at frequency fraction ``f``: idle + static + dynamic·f·V²."""
        d = self.device
        above = d.active_power_w - d.idle_power_w
        v = self.voltage(f)
        return d.idle_power_w + above * (d.static_fraction + (1.0 - d.static_fraction) * f * v * v)

    def throttle_cap(self, temperature_c: float) -> float:
        """Frequency cap the hardware imposes at this temperature (1.0 below the trip point)."""
        d = self.device
        if temperature_c <= d.t_trip_c:
            return 1.0
        x = min(1.0, (temperature_c - d.t_trip_c) / (d.t_crit_c - d.t_trip_c))
        return 1.0 - x * (1.0 - d.throttle_floor)

    def effective_frequency(self, f: float, temperature_c: float | None = None) -> float:
        return f if temperature_c is None else min(f, self.throttle_cap(temperature_c))

    def load_factor(self, load: float) -> float:
        u = min(max(load, 0.0), 0.95)
        return 1.0 / (1.0 - self.device.contention * u)

    # per-level answers -------------------------------------------------------------------------------
    def latency_s(
        self, level: int, frequency: float = 1.0, load: float = 0.0, temperature_c: float | None = None
    ) -> float:
        f = self.effective_frequency(frequency, temperature_c)
        return self.base_latency_s[level] / f * self.load_factor(load)

    def energy_j(
        self, level: int, frequency: float = 1.0, load: float = 0.0, temperature_c: float | None = None
    ) -> float:
        """Whole-board energy of one inference (active power × latency; includes the idle floor)."""
        f = self.effective_frequency(frequency, temperature_c)
        return self.active_power_w(f) * self.latency_s(level, f, load)

    def power_w(self, busy_fraction: float, frequency: float = 1.0, load: float = 0.0) -> float:
        """Average board power over an interval busy inferring for ``busy_fraction`` of it."""
        d = self.device
        b = min(max(busy_fraction, 0.0), 1.0)
        u = min(max(load, 0.0), 1.0)
        return (
            d.idle_power_w + b * (self.active_power_w(frequency) - d.idle_power_w) + u * d.background_power_w
        )

    def table(self) -> list[dict]:
        """Per-level latency (ms) and energy (mJ) at f_max, unloaded, for printing."""
        return [
            {
                "level": i,
                "latency_ms": 1000.0 * self.latency_s(i),
                "energy_mj": 1000.0 * self.energy_j(i),
                "accuracy": self.accuracy[i],
            }
            for i in range(len(self))
        ]
