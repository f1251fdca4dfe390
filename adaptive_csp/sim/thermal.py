"""Lumped RC thermal node: ``C·dT/dt = P − (T − T_amb)/R``.

One node stands for die + heatsink + case.  Its time constant is ``τ = R·C``; under a constant power ``P``
held for ``dt`` seconds the exact solution is

    T(t + dt) = T_amb + (T(t) − T_amb)·e^(−dt/τ) + P·R·(1 − e^(−dt/τ))

which :meth:`ThermalModel.step` applies, so the update is exact for piecewise-constant power whatever the
step size (no explicit-Euler instability with long simulation ticks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ThermalModel", "r_for_sustainable"]


def r_for_sustainable(t_amb_c: float, t_control_c: float, sustainable_power_w: float) -> float:
    """Thermal resistance (K/W) such that ``T_amb + R·P_sustainable = T_control`` (the usual calibration)."""
    if sustainable_power_w <= 0:
        raise ValueError("sustainable_power_w must be > 0")
    if t_control_c <= t_amb_c:
        raise ValueError("t_control_c must be above the ambient temperature")
    return (t_control_c - t_amb_c) / sustainable_power_w


@dataclass
class ThermalModel:
    """A single RC node.  ``r_k_per_w`` in K/W, ``c_j_per_k`` in J/K, temperatures in °C."""

    r_k_per_w: float
    c_j_per_k: float
    t_amb_c: float = 25.0
    temperature_c: float | None = None  # starts at ambient when None

    def __post_init__(self) -> None:
        if not (self.r_k_per_w > 0 and self.c_j_per_k > 0):
            raise ValueError("thermal R and C must be > 0")
        if self.temperature_c is None:
            self.temperature_c = float(self.t_amb_c)
        self._dt_cache = (-1.0, 0.0)

    @property
    def tau_s(self) -> float:
        return self.r_k_per_w * self.c_j_per_k

    def equilibrium(self, power_w: float, t_amb_c: float | None = None) -> float:
        """Steady-state temperature under a constant power."""
        return (self.t_amb_c if t_amb_c is None else t_amb_c) + power_w * self.r_k_per_w

    def step(self, power_w: float, dt_s: float, t_amb_c: float | None = None) -> float:
        """Advance ``dt_s`` seconds under constant ``power_w`` (and ambient, if given); return the new T."""
        if t_amb_c is not None:
            self.t_amb_c = t_amb_c
        if dt_s <= 0:
            return self.temperature_c
        cached_dt, decay = self._dt_cache
        if dt_s != cached_dt:  # the loop uses one tick length: cache e^(−dt/τ)
            decay = math.exp(-dt_s / self.tau_s)
            self._dt_cache = (dt_s, decay)
        amb = self.t_amb_c
        self.temperature_c = (
            amb + (self.temperature_c - amb) * decay + power_w * self.r_k_per_w * (1.0 - decay)
        )
        return self.temperature_c

    def step_response(self, power_w: float, t_s: float) -> float:
        """Closed form from ambient: ``T_amb + P·R·(1 − e^(−t/τ))`` (for tests and plots)."""
        return self.t_amb_c + power_w * self.r_k_per_w * (1.0 - math.exp(-t_s / self.tau_s))
