"""Scenarios: what happens around the device over time, as TOML validated by pydantic.

A scenario names a device class and gives traces over simulated time: frame arrival rate, ambient
temperature, background CPU load from other processes; a battery with plug/unplug events; a per-frame
deadline.  Unknown keys and out-of-range values are rejected with the offending field named.

``belt`` (optional) is the conveyor's activity for ``adaptive-csp demo`` (≥ 0.5: items flowing, below:
the belt stands idle); the simulator itself does not use it.

A trace is a base ``value``, optionally replaced by piecewise ``points`` ``[[t_s, value], ...]`` (``step``
or ``linear`` interpolation), plus optional random ``bursts`` (a Poisson process of episodes of fixed
duration that ``set`` the value or ``add`` to it), drawn from the scenario's seed.

``switch_cost`` (optional) overrides the measured cost of a level switch (a fraction of one call, see
:data:`adaptive_csp.sim.device.SWITCH_COST`).  ``scene_hold_s`` is how long a scene stays as it was: a
frame skipped under a frame interval is answered by the last result and counts as right with probability
``accuracy(last level) · exp(−age / scene_hold_s)`` (age: seconds since the frame that was run); the
default 0 scores every skipped frame as wrong (each frame shows something new).

Work per frame: ``inferences_per_frame`` (e.g. crops per frame) multiplies the ladder's latency;
alternatively ``busy_at_full`` scales the work so that the full level at f_max on an idle device is busy
that fraction of the time at the scenario's nominal frame rate — the same stress whichever ladder is
loaded (the ratios between levels stay the measured ones).
"""

from __future__ import annotations

import math
import sys
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from adaptive_csp.sim.device import DEVICE_CLASSES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "Scenario",
    "Trace",
    "Bursts",
    "BatterySpec",
    "ThermalSpec",
    "ScenarioError",
    "load_scenario",
    "list_scenarios",
]


class ScenarioError(ValueError):
    """An invalid scenario; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bursts(_Strict):
    rate_per_hour: float = Field(gt=0)
    duration_s: float = Field(gt=0)
    value: float
    mode: Literal["set", "add"] = "set"
    jitter: float = Field(default=0.0, ge=0, le=1)  # relative spread of burst durations


class Trace(_Strict):
    value: float = 0.0
    points: list[tuple[float, float]] = Field(default_factory=list)
    interpolate: Literal["step", "linear"] = "step"
    bursts: Bursts | None = None

    @field_validator("points")
    @classmethod
    def _sorted(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        ts = [p[0] for p in v]
        if ts != sorted(ts):
            raise ValueError("points must be sorted by time")
        if any(t < 0 for t in ts):
            raise ValueError("point times must be >= 0")
        return v

    def sample(self, times: np.ndarray, rng: np.random.Generator, duration_s: float) -> np.ndarray:
        """Values at ``times`` (seconds), bursts drawn from ``rng``."""
        if self.points:
            ts = np.array([p[0] for p in self.points], dtype=float)
            vs = np.array([p[1] for p in self.points], dtype=float)
            if self.interpolate == "linear":
                out = np.interp(times, ts, vs)
            else:
                idx = np.searchsorted(ts, times, side="right") - 1
                out = np.where(idx >= 0, vs[np.clip(idx, 0, None)], self.value)
        else:
            out = np.full(times.shape, self.value, dtype=float)
        b = self.bursts
        if b is not None:
            n = rng.poisson(b.rate_per_hour * duration_s / 3600.0)
            starts = np.sort(rng.uniform(0.0, duration_s, size=n))
            durs = b.duration_s * (1.0 + b.jitter * rng.uniform(-1.0, 1.0, size=n))
            mask = np.zeros(times.shape, dtype=bool)
            for s, d in zip(starts, durs, strict=True):
                lo, hi = np.searchsorted(times, [s, s + d])
                mask[lo:hi] = True
            out = np.where(mask, out + b.value, out) if b.mode == "add" else np.where(mask, b.value, out)
        return out

    def bounds(self) -> tuple[float, float]:
        vals = [self.value] + [p[1] for p in self.points]
        if self.bursts is not None:
            bv = self.bursts.value
            vals += [bv + max(vals), bv + min(vals)] if self.bursts.mode == "add" else [bv]
        return min(vals), max(vals)


class PlugEvent(_Strict):
    at_s: float = Field(ge=0)
    plugged: bool


class BatterySpec(_Strict):
    capacity_wh: float = Field(gt=0)
    soc: float = Field(default=1.0, ge=0, le=1)
    peukert: float = Field(default=1.0, ge=1.0, le=1.5)
    rated_hours: float = Field(default=5.0, gt=0)
    plugged: bool = False
    charge_power_w: float = Field(default=10.0, ge=0)
    events: list[PlugEvent] = Field(default_factory=list)


class ThermalSpec(_Strict):
    """Overrides of the device class's thermal node and trip points."""

    r_k_per_w: float | None = Field(default=None, gt=0)
    c_j_per_k: float | None = Field(default=None, gt=0)
    t_trip_c: float | None = None
    t_crit_c: float | None = None
    start_c: float | None = None  # initial temperature; ambient when absent


#: trace field -> (lowest, highest, what it is) a scenario may ask for
_RANGES = {
    "frames": (0.0, 1000.0, "frame rate (fps)"),
    "load": (0.0, 0.95, "background load (a fraction of the CPU)"),
    "ambient_c": (-40.0, 80.0, "ambient temperature (°C)"),
}


class Scenario(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    device: str
    duration_s: float = Field(gt=0, le=30 * 86400)
    seed: int = 0
    decision_interval_s: float = Field(default=0.5, ge=0.01, le=3600)
    deadline_ms: float = Field(gt=0)
    frames: Trace  # fps
    arrivals: Literal["uniform", "poisson"] = "uniform"
    inferences_per_frame: float | None = Field(default=None, gt=0)
    busy_at_full: float | None = Field(default=None, gt=0, le=1)
    ambient_c: Trace = Trace(value=25.0)
    load: Trace = Trace(value=0.0)  # other processes' CPU share, 0..0.95
    belt: Trace | None = None  # the demo's conveyor: >= 0.5 items flowing, < 0.5 idle (the sim ignores it)
    battery: BatterySpec | None = None  # None: mains powered
    thermal: ThermalSpec = ThermalSpec()
    jitter_sigma: float = Field(default=0.05, ge=0, le=1)  # log-normal per-frame latency noise
    stop_when_empty: bool = True
    switch_cost: float | None = Field(default=None, ge=0, le=10)  # None: the measured SWITCH_COST
    scene_hold_s: float = Field(default=0.0, ge=0)  # how long a skipped frame's last answer stays right

    @field_validator("device")
    @classmethod
    def _known_device(cls, v: str) -> str:
        if v not in DEVICE_CLASSES:
            raise ValueError(f"unknown device class {v!r}; known: {sorted(DEVICE_CLASSES)}")
        return v

    @field_validator("frames", "load", "ambient_c")
    @classmethod
    def _within(cls, v: Trace, info: ValidationInfo) -> Trace:
        """Each trace stays within its physical range (:data:`_RANGES`); a frame rate must also rise above 0."""
        lo, hi = v.bounds()
        low, high, what = _RANGES[info.field_name]
        if lo < low or hi > high:
            raise ValueError(f"{what} must stay within {low:g}..{high:g}")
        if info.field_name == "frames" and hi <= 0:
            raise ValueError("frame rate is never positive")
        return v

    @model_validator(mode="after")
    def _work(self) -> Scenario:
        if self.inferences_per_frame is not None and self.busy_at_full is not None:
            raise ValueError("give inferences_per_frame or busy_at_full, not both")
        if self.decision_interval_s > self.duration_s:
            raise ValueError("decision_interval_s is longer than duration_s")
        return self

    # --- derived --------------------------------------------------------------------------------------
    @property
    def nominal_fps(self) -> float:
        """The highest frame rate the trace reaches (bursts included)."""
        return self.frames.bounds()[1]

    def work_per_frame(self, full_latency_s: float) -> float:
        """Multiplier on one inference's latency (see module docstring)."""
        if self.busy_at_full is not None:
            fps = self.nominal_fps
            if fps <= 0 or full_latency_s <= 0:
                return 1.0
            return self.busy_at_full / (fps * full_latency_s)
        return self.inferences_per_frame or 1.0

    def n_ticks(self) -> int:
        return int(math.ceil(self.duration_s / self.decision_interval_s - 1e-9))

    def with_(self, **kw) -> Scenario:
        """A validated copy with some fields replaced (dotted keys not supported; pass sub-models)."""
        return validate_scenario({**self.model_dump(), **kw})


def _format_error(e: ValidationError, name: str) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(scenario)"
        parts.append(f"{loc}: {err['msg']}")
    return f"invalid scenario {name!r}: " + "; ".join(parts)


def validate_scenario(data: dict, name: str | None = None) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(_format_error(e, name or str(data.get("name", "?")))) from None


def _shipped_dir():
    return resources.files("adaptive_csp") / "scenarios"


def list_scenarios() -> list[str]:
    """Names of the scenarios shipped in the package."""
    d = _shipped_dir()
    return sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".toml"))


def load_scenario(spec: str | Path | dict | Scenario) -> Scenario:
    """A shipped scenario by name, a TOML file path, a dict, or a Scenario (returned as is)."""
    if isinstance(spec, Scenario):
        return spec
    if isinstance(spec, dict):
        return validate_scenario(spec)
    s = str(spec)
    p = Path(s)
    if s.endswith(".toml") or p.exists():
        if not p.exists():
            raise ScenarioError(f"scenario file {s!r} does not exist")
        text = p.read_text()
        label = p.name
    else:
        res = _shipped_dir() / f"{s}.toml"
        if not res.is_file():
            raise ScenarioError(f"unknown scenario {s!r}; shipped: {list_scenarios()} (or give a .toml path)")
        text = res.read_text()
        label = s
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"scenario {label!r} is not valid TOML: {e}") from None
    data.setdefault("name", label.removesuffix(".toml"))
    return validate_scenario(data, label)
