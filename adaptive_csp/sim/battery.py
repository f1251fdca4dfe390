"""Battery by coulomb counting (energy counting at the pack's terminals), with an optional Peukert law.

``SoC = SoC₀ − ∫P_eff dt / E_capacity`` where, for a Peukert exponent ``k``, the pack loses capacity faster
at high draw: ``P_eff = P · (P / P_rated)^(k − 1)`` with ``P_rated = E_capacity / rated_hours`` (the rate the
capacity was specified at).  ``k = 1`` is plain counting; Li-ion is ≈ 1.02–1.10.

While plugged in, the device runs from the charger and the pack charges at ``charge_power_w`` (with
``charge_efficiency``) up to full.  ``delivered_wh`` counts only what the pack itself delivered, so energy
conservation is checkable: with ``k = 1`` and unplugged, ``(soc₀ − soc)·capacity_wh == delivered_wh``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Battery"]


@dataclass
class Battery:
    capacity_wh: float
    soc: float = 1.0  # state of charge, 0..1
    peukert: float = 1.0
    rated_hours: float = 5.0  # discharge time at which capacity_wh was rated (Peukert reference)
    plugged: bool = False
    charge_power_w: float = 10.0
    charge_efficiency: float = 0.9

    def __post_init__(self) -> None:
        if not self.capacity_wh > 0:
            raise ValueError("capacity_wh must be > 0")
        if not 0.0 <= self.soc <= 1.0:
            raise ValueError("soc must be in [0, 1]")
        if not 1.0 <= self.peukert <= 1.5:
            raise ValueError("peukert exponent must be in [1, 1.5]")
        if not self.rated_hours > 0:
            raise ValueError("rated_hours must be > 0")
        self._cap_j = self.capacity_wh * 3600.0
        self._p_rated = self.capacity_wh / self.rated_hours
        self.delivered_j = 0.0  # energy the pack delivered to the load
        self.charged_j = 0.0  # energy stored into the pack from the charger
        self.empty_at: float | None = None  # set by the simulator

    @property
    def delivered_wh(self) -> float:
        return self.delivered_j / 3600.0

    @property
    def percent(self) -> float:
        return 100.0 * self.soc

    @property
    def empty(self) -> bool:
        return self.soc <= 0.0 and not self.plugged

    def plug(self) -> None:
        self.plugged = True

    def unplug(self) -> None:
        self.plugged = False

    def effective_power(self, power_w):
        """Power drawn from the pack's capacity for a load of ``power_w`` (Peukert-corrected).

        ``power_w`` may be a float or a numpy array (the oracle evaluates every option at once)."""
        if self.peukert == 1.0:
            return power_w
        if isinstance(power_w, np.ndarray):
            pos = np.maximum(power_w, 0.0)
            return np.where(power_w > 0, pos * (pos / self._p_rated) ** (self.peukert - 1.0), power_w)
        if power_w <= 0:
            return power_w
        return power_w * (power_w / self._p_rated) ** (self.peukert - 1.0)

    def drain(self, power_w: float, dt_s: float) -> float:
        """Run a load of ``power_w`` for ``dt_s`` s; return the seconds the pack could actually supply.

        Plugged in: the charger supplies the load and charges the pack.  Unplugged: the pack supplies the
        load until it is empty (the return value is then < ``dt_s``).
        """
        if dt_s <= 0:
            return 0.0
        if self.plugged:
            room = (1.0 - self.soc) * self._cap_j
            add = min(room, self.charge_power_w * self.charge_efficiency * dt_s)
            self.soc = min(1.0, self.soc + add / self._cap_j)
            self.charged_j += add
            return dt_s
        if power_w <= 0:
            return dt_s
        p_eff = self.effective_power(power_w)
        avail = self.soc * self._cap_j
        need = p_eff * dt_s
        if need <= avail:
            self.soc -= need / self._cap_j
            self.delivered_j += power_w * dt_s
            return dt_s
        t = avail / p_eff
        self.soc = 0.0
        self.delivered_j += power_w * t
        return t
