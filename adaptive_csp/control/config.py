"""Pydantic models of a policy configuration (what a ``policies/*.toml`` preset holds).

Unknown keys and out-of-range values raise :class:`pydantic.ValidationError` naming the field (e.g.
``thermal.control_c``).  A section that is absent (or ``enabled = false``) turns its governor off.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["LadderConfig", "ThermalConfig", "LatencyConfig", "BatteryConfig", "ContentionConfig",
           "ConfidenceConfig", "FramesConfig", "EfficiencyConfig", "PolicyConfig"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LadderConfig(_Section):
    """Time hysteresis (Unity AP: 4 s / 10 s between actions; degrade fast, recover slowly)."""

    up_hold_s: float = Field(3.0, ge=0, le=3600)
    up_cooldown_s: float = Field(5.0, ge=0, le=3600)
    down_cooldown_s: float = Field(0.0, ge=0, le=3600)
    up_step: int = Field(1, ge=1, le=100)
    dead_band: float = Field(0.05, ge=0, le=0.5)


class ThermalConfig(_Section):
    """power_allocator PI (``mode = "pi"``) or step_wise; temperatures in °C."""

    enabled: bool = True
    mode: Literal["pi", "step_wise"] = "pi"
    control_c: float = Field(80.0, gt=-40, lt=150)
    switch_on_c: float = Field(65.0, gt=-40, lt=150)
    critical_c: float = Field(95.0, gt=-40, le=150)
    sustainable: float = Field(0.6, gt=0, le=1)
    forecast_s: float = Field(10.0, ge=0, le=600)
    forecast_samples: int = Field(30, ge=2, le=600)
    sample_s: float = Field(1.0, gt=0, le=600)
    k_po: float | None = Field(None, ge=0)
    k_pu: float | None = Field(None, ge=0)
    k_i: float | None = Field(None, ge=0)
    trip_c: float | None = Field(None, gt=-40, lt=150)  # step_wise trip; default control_c
    hysteresis_c: float = Field(3.0, ge=0, le=50)
    trend_c_per_s: float = Field(0.02, ge=0, le=10)
    idle_fraction: float = Field(0.2, ge=0, lt=1)  # idle / active board power (predicted power per rung)

    @model_validator(mode="after")
    def _order(self) -> ThermalConfig:
        if self.mode == "pi" and not self.switch_on_c < self.control_c:
            raise ValueError("switch_on_c must be below control_c")
        top = self.trip_c if (self.mode == "step_wise" and self.trip_c is not None) else self.control_c
        if not top < self.critical_c:
            raise ValueError("critical_c must be above control_c / trip_c")
        return self


class LatencyConfig(_Section):
    """p95 over a window against a deadline (Performance Hint); deadline_ms None = the runner's."""

    enabled: bool = True
    deadline_ms: float | None = Field(None, gt=0, le=1e6)
    window: int = Field(32, ge=5, le=256)  # slowdowns kept (measured / profiled latency)
    percentile: float = Field(95.0, gt=0, le=100)
    margin: float = Field(0.1, ge=0, lt=1)
    switch_cost: float = Field(0.09, ge=0, le=10)  # extra share of a call the first call after a switch costs (ORT's)
    up_hold_s: float = Field(4.0, ge=0, le=3600)
    min_samples: int = Field(10, ge=1, le=100_000)
    min_samples_down: int = Field(3, ge=1, le=100_000)
    dvfs: bool = False
    min_frequency: float = Field(0.3, gt=0, le=1)


class BatteryConfig(_Section):
    enabled: bool = True
    low_percent: float = Field(40.0, gt=0, le=100)
    critical_percent: float = Field(10.0, ge=0, lt=100)
    target_hours: float | None = Field(None, gt=0, le=1000)
    until: str | None = None  # "HH:MM", local time
    idle_fraction: float = Field(0.3, ge=0, lt=1)
    window_s: float = Field(600.0, gt=0, le=86_400)
    min_window_s: float = Field(120.0, ge=0, le=86_400)
    sample_s: float = Field(1.0, gt=0, le=3600)
    capacity_wh: float | None = Field(None, gt=0, le=1e6)
    margin: float = Field(0.05, ge=0, lt=1)
    stretch: float = Field(1.5, ge=1, le=100)  # no target: last stretch x the full level's runtime

    @model_validator(mode="after")
    def _check(self) -> BatteryConfig:
        if not self.critical_percent < self.low_percent:
            raise ValueError("critical_percent must be below low_percent")
        if self.until is not None:
            m = re.fullmatch(r"(\d{1,2}):(\d{2})", self.until)
            if not m or int(m[1]) > 23 or int(m[2]) > 59:
                raise ValueError(f"until must be HH:MM (24 h), got {self.until!r}")
            if self.target_hours is not None:
                raise ValueError("give target_hours or until, not both")
        return self


class ContentionConfig(_Section):
    enabled: bool = True
    pressure_high: float = Field(40.0, gt=0, le=100)
    pressure_low: float = Field(10.0, ge=0, lt=100)
    util_high: float = Field(85.0, gt=0, le=100)
    util_low: float = Field(50.0, ge=0, lt=100)
    step_s: float = Field(2.0, ge=0, le=3600)
    margin: float = Field(0.1, ge=0, lt=1)  # predicted p95 must fit deadline x (1 - margin/2)

    @model_validator(mode="after")
    def _check(self) -> ContentionConfig:
        if not self.pressure_low < self.pressure_high:
            raise ValueError("pressure_low must be below pressure_high")
        if not self.util_low < self.util_high:
            raise ValueError("util_low must be below util_high")
        return self


class ConfidenceConfig(_Section):
    """Spend less on easy inputs: confident predictions → one level cheaper (see ConfidenceGovernor)."""

    enabled: bool = True
    high: float = Field(0.95, gt=0, le=1)
    low: float = Field(0.8, ge=0, lt=1)
    hold_s: float = Field(5.0, ge=0, le=3600)
    alpha: float = Field(0.1, gt=0, le=1)
    floor_level: int = Field(0, ge=-100, le=100)

    @model_validator(mode="after")
    def _check(self) -> ConfidenceConfig:
        if not self.low < self.high:
            raise ValueError("low must be below high")
        return self


class EfficiencyConfig(_Section):
    """No rung whose marginal accuracy per predicted power is below ``min_gain_pt`` (EfficiencyGovernor)."""

    enabled: bool = True
    min_gain_pt: float = Field(3.0, ge=0, le=1000)  # points per full-level power
    idle_fraction: float = Field(0.3, ge=0, lt=1)


class FramesConfig(_Section):
    """Frame rate as a second knob (:class:`~adaptive_csp.control.frames.FrameRule`)."""

    enabled: bool = True
    min_fps: float = Field(5.0, gt=0, le=1000)  # never fewer frames per second of the source
    steady_interval: int = Field(2, ge=1, le=100)  # every k-th frame while the scene is steady
    max_interval: int = Field(8, ge=1, le=1000)
    energy: bool = True  # also when an energy budget cannot hold the cheapest rung every frame


class PolicyConfig(BaseModel):
    """One preset.  ``safe_level``: the level index used on faults or stale data (−1 = full)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("custom", min_length=1, max_length=64)
    description: str = ""
    safe_level: int = Field(0, ge=-100, le=100)
    stale_after_s: float = Field(5.0, gt=0, le=3600)
    max_cost: float = Field(1.0, gt=0, le=1)
    ladder: LadderConfig = LadderConfig()
    thermal: ThermalConfig | None = None
    latency: LatencyConfig | None = None
    battery: BatteryConfig | None = None
    contention: ContentionConfig | None = None
    confidence: ConfidenceConfig | None = None
    frames: FramesConfig | None = None
    efficiency: EfficiencyConfig | None = None
