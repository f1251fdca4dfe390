"""Efficiency governor: no rung whose extra accuracy is not worth its extra power.

Along the accuracy/predicted-power hull (:func:`~adaptive_csp.control.predict.efficient_rungs`), each rung
up buys ``Δaccuracy`` (points) for ``Δpower`` (share of the full rung's predicted power, the shared
:class:`~adaptive_csp.control.predict.ServiceModel`'s :meth:`~ServiceModel.powers`).  The cap is the
highest hull rung reached while every step's marginal gain ``Δaccuracy / Δpower`` is at least
``min_gain_pt`` — the Lagrange multiplier an energy-aware schedule prices power at.  The default, 3 points
per full-level power, sits between the shipped model's steps: it rejects the full rung where that rung
costs several times the next one for a fraction of a point, and keeps every cheaper step, which buys
several points per full power.  Without measured accuracies it is unconstrained.
"""

from __future__ import annotations

from adaptive_csp.control.governors import Governor
from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.control.predict import ServiceModel, accuracies, efficient_rungs
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings

__all__ = ["EfficiencyGovernor"]


class EfficiencyGovernor(Governor):
    name = "efficiency"
    signals = ()

    def __init__(self, min_gain_pt: float = 3.0, idle_fraction: float = 0.3, sample_s: float = 1.0):
        super().__init__()
        self.min_gain, self.idle, self.sample_s = float(min_gain_pt), float(idle_fraction), float(sample_s)
        self.service = ServiceModel()
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.service.reset()
        self._t = -float("inf")

    def update(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> int | None:
        if stats.now - self._t < self.sample_s:
            return self.cap
        self._t = stats.now
        acc = accuracies(ladder)
        if any(a is None for a in acc):
            self.cap, self.reason = None, "efficiency: no accuracies"
            return None
        sm = self.service
        sm.observe(stats, ladder)
        p = sm.powers(self.idle)
        hull = efficient_rungs(p, acc)
        top = hull[0]
        for a, b in zip(hull, hull[1:]):
            dp = p[b] - p[a]
            if dp > 0 and 100.0 * (acc[b] - acc[a]) / dp < self.min_gain:
                break
            top = b
        self.cap = None if top >= ladder.full else top
        self.reason = f"efficiency: L{top} (the next rung buys < {self.min_gain:g} pt per full-level power)"
        return self.cap
