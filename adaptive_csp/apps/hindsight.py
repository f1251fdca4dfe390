"""The demo's day as the simulator's oracle would have played it, beside the two arms.

The demo's world *is* a simulator scenario: each step advances the simulator's device, battery and RC
thermal models (:class:`~adaptive_csp.sim.world.World`) for ``dt`` seconds at the step's background load,
ambient temperature and frame arrivals, all drawn from the scenario's seed; only the inference is real.
So the oracle (:func:`adaptive_csp.sim.oracle.oracle`), which knows those traces in advance, can be run on
the same scenario (``decision_interval_s = dt``), the same ladder and the same device model.

The oracle scores a schedule by the ladder's measured accuracy of each frame answered within the
deadline (dropped and late frames score 0), not by the belt's items; to stand beside it, each arm is
scored the same way from its record: ``Σ arrived·on_time·accuracy(level) / Σ arrived``.  The oracle
runs at the adaptive arm's energy (equal energy), and the best static level in hindsight likewise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ladder_score", "hindsight"]


def ladder_score(rec: dict[str, list], ladder: Any) -> float | None:
    """An arm's accuracy of frames answered in time, each frame at its level's ladder accuracy."""
    accs = [r.accuracy for r in ladder.rungs]
    if any(a is None for a in accs):
        return None
    arrived = np.asarray(rec["arrived"], dtype=float)
    if not arrived.sum():
        return None
    lv = np.asarray(rec["level"])
    acc = np.where(lv >= 0, np.asarray(accs, dtype=float)[np.clip(lv, 0, None)], 0.0)
    return float(np.dot(arrived * np.asarray(rec["on_time"], dtype=float), acc) / arrived.sum())


def _row(res: Any) -> dict[str, Any]:
    keys = ("accuracy", "energy_j", "lifetime_s", "misses", "seconds_above_limit", "dual_bound")
    row = {k: getattr(res, k, None) for k in keys}
    levels = getattr(res, "levels", None)
    if levels is not None and len(levels):
        lv = np.asarray(levels, dtype=float).ravel()
        row["mean_level"] = float(np.mean(lv))
        row["switches"] = int(np.count_nonzero(np.diff(lv)))
    return row


def hindsight(run: Any) -> dict[str, Any]:
    """``{"oracle": row, "best-static": row, "arms": {name: ladder score}}``, or ``{"missing": why}``.

    A row has the oracle's ``accuracy`` (see the module docstring), ``energy_j``, ``lifetime_s``,
    ``misses``, ``seconds_above_limit``, ``dual_bound``, and its schedule's ``mean_level`` and ``switches``.
    """
    arms = {k: ladder_score(a.rec, run.ladder) for k, a in run.arms.items()}
    if run.ladder is None or any(r.accuracy is None for r in run.ladder.rungs):
        return {"missing": "the model's ladder carries no accuracies", "arms": arms}
    try:
        from adaptive_csp.sim.oracle import best_static, oracle
    except ImportError as e:  # the simulator of this install has no oracle
        return {"missing": f"no oracle in this install ({e})", "arms": arms}
    budget = run.adaptive.world.energy_j
    kw = {"energy_budget_j": budget if budget > 0 and not math.isnan(budget) else None, "seed": run.scenario.seed}
    out: dict[str, Any] = {"arms": arms, "energy_budget_j": kw["energy_budget_j"]}
    for name, fn in (("oracle", oracle), ("best-static", best_static)):
        out[name] = _row(fn(run.scenario, run.ladder, run.device, **kw))
    return out
