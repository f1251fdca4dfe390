"""Thermal governors: a PI controller in the style of Linux power_allocator with an ADPF-style slope
forecast, and a step_wise fallback.  Constants: FACTS.md "Governor and thermal reference constants".

Power is normalised: the full level at the frame rate in force costs 1.0; rung ``j`` is predicted to cost
``p_j = (i + (1 − i)·busy_j) / (i + (1 − i)·busy_full)`` with ``busy_j`` = its predicted latency × the frame
rate and ``i = idle_fraction`` (idle / active board power), from the shared
:class:`~adaptive_csp.control.predict.ServiceModel` (:meth:`~ServiceModel.powers`).  The PI's budget maps to
the most accurate rung whose predicted power fits it (dead-banded), among the rungs on the accuracy/power
hull (:func:`~adaptive_csp.control.predict.efficient_rungs`: a rung below the chord of two others is
never worth holding).

:class:`ThermalPI` (power_allocator / IPA)
    ``P_budget = SP + k_p·e + k_i·Σe`` with ``e = T_control − T``, ``SP`` = sustainable power (share of
    full-level power the device can dissipate at T_control), ``k_po = SP/ΔT`` (overshoot, e < 0),
    ``k_pu = 2·SP/ΔT`` (undershoot), ``k_i = k_pu/10``, ``k_d = 0``, ``ΔT = T_control − T_switch_on``.
    Below T_switch_on the governor is off and its integral reset, as in IPA.  Anti-windup: the integral
    term does not grow while the temperature already moves toward T_control (faster than
    ``SETTLE_C_PER_S``: the cut that suffices is not cut again while the board's lag plays out), is clamped
    so that, at zero error, the budget stays between the cheapest rung's predicted power and
    the full rung's (so it cannot wind down to nothing while the cheapest rung already runs: no collapse
    to the bottom and climb back), and it does not grow while the budget is saturated in the error's
    direction;
    Σe integrates over the actual sample spacing (≤ 10·``sample_s`` per sample).  The proportional error uses a forecast ``T + slope·forecast_s`` (falling as well as rising) where
    the slope is the least-squares slope over ≤ 30 one-second samples (ADPF thermal headroom).  Updates only on a new
    sensor sample at most once per ``sample_s`` (never faster than the sensor updates).
:class:`ThermalStepWise` (step_wise)
    Above the trip and rising → one level cooler; below ``trip − hysteresis`` and not rising → one level
    back; else hold.  "Rising" means a least-squares slope above ``trend_c_per_s``, so noise on a
    threshold does not count as a trend.

Both: at or above ``critical_c`` the cap is the cheapest level at once (urgent).
"""

from __future__ import annotations

from adaptive_csp.control.governors import Governor
from adaptive_csp.control.ladder import Slope
from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.control.predict import ServiceModel, efficient_rungs, rung_for_power
from adaptive_csp.control.predict import accuracies as _accuracies
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings

__all__ = ["ThermalPI", "ThermalStepWise"]

#: a temperature already moving toward T_control faster than this (°C/s) is not integrated further: on a
#: board with minutes of thermal lag the integral would otherwise keep cutting after the cut that suffices
#: (the limit cycle to the cheapest rung and back).  0.005 °C/s is 0.3 °C a minute, above sensor noise.
SETTLE_C_PER_S = 0.005


class _Thermal(Governor):
    name = "thermal"
    signals = ("temperature_c", "temperatures_c")

    def __init__(self, critical_c: float, sample_s: float, forecast_samples: int):
        super().__init__()
        self.critical_c = float(critical_c)
        self.sample_s = float(sample_s)
        self.slope = Slope(forecast_samples)
        self._ts = -float("inf")
        self.dt = self.sample_s

    def reset(self) -> None:
        super().reset()
        self.slope.reset()
        self._ts = -float("inf")

    def update(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        ts = readings.timestamp
        if ts - self._ts < self.sample_s * 0.999:  # not a new sample yet: keep the last bound
            return self.cap
        # integrate over the real sample spacing, bounded so a long gap cannot wind the integral up
        self.dt = min(ts - self._ts, 10.0 * self.sample_s) if self._ts > -float("inf") else self.sample_s
        self._ts = ts
        t = readings.temperature_c
        if t is None:
            self.absent("thermal", "no temperature sensor: thermal constraint inactive")
            self.cap, self.reason, self.urgent = None, "thermal: no sensor", False
            return None
        self.slope.add(ts, t)
        if t >= self.critical_c:
            self.cap, self.urgent = 0, True
            self.reason = f"thermal: {t:.1f}C >= critical {self.critical_c:g}C"
            return 0
        self.urgent = False
        self.cap = self._control(t, stats, ladder)
        return self.cap

    def _control(self, t: float, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        raise NotImplementedError


class ThermalPI(_Thermal):
    def __init__(self, control_c: float = 80.0, switch_on_c: float = 65.0, critical_c: float = 95.0,
                 sustainable: float = 0.6, forecast_s: float = 10.0, forecast_samples: int = 30,
                 sample_s: float = 1.0, dead_band: float = 0.05, k_po: float | None = None,
                 k_pu: float | None = None, k_i: float | None = None, idle_fraction: float = 0.2):
        super().__init__(critical_c, sample_s, forecast_samples)
        self.idle = float(idle_fraction)
        self.settle_c_per_s = SETTLE_C_PER_S
        self.service = ServiceModel()
        self.control_c, self.switch_on_c = float(control_c), float(switch_on_c)
        self.sp = float(sustainable)
        self.forecast_s = float(forecast_s)
        self.dead_band = float(dead_band)
        dt = max(1e-6, self.control_c - self.switch_on_c)
        self.k_po = self.sp / dt if k_po is None else float(k_po)
        self.k_pu = 2.0 * self.sp / dt if k_pu is None else float(k_pu)
        self.k_i = self.k_pu / 10.0 if k_i is None else float(k_i)
        self.integral = 0.0
        self.budget = 1.0

    def reset(self) -> None:
        super().reset()
        self.service.reset()
        self.integral = 0.0
        self.budget = 1.0

    def _control(self, t: float, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        slope = self.slope.slope()
        forecast = t + slope * self.forecast_s  # falling counts too: a cooling board needs no further cut
        if t < self.switch_on_c and forecast < self.switch_on_c:
            self.integral, self.budget = 0.0, 1.0
            self.reason = f"thermal: {t:.1f}C below switch-on {self.switch_on_c:g}C"
            return None
        e, e_p = self.control_c - t, self.control_c - forecast
        self.service.observe(stats, ladder)
        powers = self.service.powers(self.idle)
        k_p = self.k_pu if e_p > 0 else self.k_po
        p_part = self.sp + k_p * e_p
        budget = p_part + self.k_i * self.integral
        lo = powers[0]
        moving = (e < 0 and slope < -self.settle_c_per_s) or (e > 0 and slope > self.settle_c_per_s)
        if not ((budget >= 1.0 and e > 0) or (budget <= lo and e < 0) or moving):  # anti-windup
            self.integral += e * self.dt
            if self.k_i > 0:  # at zero error the budget stays within [cheapest rung, full rung]
                self.integral = max((min(lo, self.sp) - self.sp) / self.k_i,
                                    min((1.0 - self.sp) / self.k_i, self.integral))
            budget = p_part + self.k_i * self.integral
        self.budget = max(0.0, min(1.0, budget))
        cur = ladder.clamp(stats.level)
        cap = rung_for_power(powers, efficient_rungs(powers, _accuracies(ladder)), self.budget, cur, self.dead_band)
        self.reason = (f"thermal: {t:.1f}C (forecast {forecast:.1f}C, control {self.control_c:g}C) "
                       f"budget {self.budget:.2f}, L{cap} predicted {powers[cap]:.2f}")
        return None if cap >= ladder.full else cap


class ThermalStepWise(_Thermal):
    def __init__(self, trip_c: float = 80.0, hysteresis_c: float = 3.0, critical_c: float = 95.0,
                 trend_c_per_s: float = 0.02, sample_s: float = 1.0, forecast_samples: int = 10):
        super().__init__(critical_c, sample_s, forecast_samples)
        self.trip_c, self.hysteresis_c = float(trip_c), float(hysteresis_c)
        self.trend = float(trend_c_per_s)

    def _control(self, t: float, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        s = self.slope.slope() if len(self.slope) >= 3 else 0.0
        cur = ladder.clamp(stats.level)
        if t >= self.trip_c and s > self.trend:
            base = cur if self.cap is None else min(self.cap, cur)
            self.reason = f"thermal: {t:.1f}C above trip {self.trip_c:g}C and rising"
            return max(0, base - 1)
        if t < self.trip_c - self.hysteresis_c and s <= self.trend and self.cap is not None:
            self.reason = f"thermal: {t:.1f}C below {self.trip_c - self.hysteresis_c:g}C, stepping back"
            return None if self.cap + 1 >= ladder.full else self.cap + 1
        if self.cap is not None and t >= self.trip_c - self.hysteresis_c:
            self.reason = f"thermal: {t:.1f}C near trip {self.trip_c:g}C, holding"
        return self.cap
