"""The demo's day as the simulator's oracle would have played it, beside the two arms.

The demo's world *is* a simulator scenario: each step advances the simulator's device, battery and RC
thermal models (:class:`~adaptive_csp.sim.world.World`) for ``dt`` seconds at the step's background load,
ambient temperature and frame arrivals, all drawn from the scenario's seed; only the inference is real.
So the oracle (:func:`adaptive_csp.sim.oracle.oracle`), which knows those traces in advance, runs on the
same scenario (``decision_interval_s = dt``), the same ladder (:func:`~adaptive_csp.apps.story.world_ladder`)
and the same device class, at the adaptive arm's energy (or, when the adaptive arm's battery emptied, with
a battery that lasts at least as long); the best static level in hindsight likewise.

The oracle scores a schedule by the ladder's measured accuracy of each frame answered within the deadline
("right and on time" over all frames that arrived, belt idle or not; late and dropped frames score 0), not
by the belt's items.  To stand beside it on the same scale, each arm's own schedule (the level, DVFS
frequency and frame interval it ran at each step) is replayed through :func:`~adaptive_csp.sim.simulate`
and scored the same way (``SimResult.on_time_accuracy``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adaptive_csp.control.policy import Decision, Policy

__all__ = ["Replay", "replay", "hindsight", "ORACLE_GRID_C"]

#: the oracle's temperature grid in the demo (°C; the oracle's default is 0.2): coarser, so the DP costs less
#: time beside the demo, where it finds the same schedule and dual bound as the default grid
ORACLE_GRID_C = 0.5


class Replay(Policy):
    """Plays a recorded schedule: per step ``k`` (``now // dt``) its level, frequency and frame interval.
    A step where the arm ran nothing (battery empty: level −1) holds the last level."""

    name = "replay"

    def __init__(self, dt: float, levels: list[int], frequencies: list[float], intervals: list[int]):
        if not len(levels) == len(frequencies) == len(intervals) or not levels:
            raise ValueError("Replay needs one level, frequency and interval per step")
        lv, last = [], max(0, int(levels[0]))
        for x in levels:
            last = int(x) if x >= 0 else last
            lv.append(last)
        self.dt, self.levels = float(dt), lv
        self.frequencies = [None if f is None or not math.isfinite(f) else float(f) for f in frequencies]
        self.intervals = [max(1, int(i)) for i in intervals]

    def decide(self, readings: Any, stats: Any, ladder: Any) -> Decision:
        k = min(max(0, int(round(stats.now / self.dt))), len(self.levels) - 1)
        return Decision(self.levels[k], "replay", frequency=self.frequencies[k], frame_interval=self.intervals[k])


def replay(run: Any, name: str) -> Any:
    """Arm ``name``'s schedule through the simulator on the demo's scenario, ladder and device."""
    from adaptive_csp.sim.simulate import simulate

    rec = run.arms[name].rec
    pol = Replay(run.dt, rec["level"], rec["frequency"], rec["interval"])
    return simulate(pol, run.scenario, ladder=run.ladder, device=run.scenario.device, seed=run.scenario.seed,
                    record=False)


def _row(res: Any) -> dict[str, Any]:
    keys = ("accuracy", "energy_j", "lifetime_s", "misses", "seconds_above_limit", "dual_bound", "switches")
    row = {k: getattr(res, k, None) for k in keys}
    levels = getattr(res, "levels", None)
    row["mean_level"] = float(np.mean(levels)) if levels is not None and len(levels) else None
    return row


def _sim_row(res: Any) -> dict[str, Any]:
    return {"accuracy": res.on_time_accuracy, "energy_j": res.energy_j, "lifetime_s": res.battery_life_s,
            "misses": res.deadline_misses, "seconds_above_limit": res.time_above_tcrit_s, "dual_bound": None,
            "switches": res.level_switches, "mean_level": res.mean_level}


def hindsight(run: Any) -> dict[str, Any]:
    """``{name: row}`` for each arm's replay, ``"oracle"`` and ``"best-static"``; ``"missing"`` says why the
    oracle rows are absent.  A row: ``accuracy`` (right and on time, ladder-scored), ``energy_j``,
    ``lifetime_s``, ``misses``, ``seconds_above_limit`` (above the scored limit), ``dual_bound``,
    ``switches``, ``mean_level``."""
    if run.ladder is None or any(r.accuracy is None for r in run.ladder.rungs):
        return {"missing": "the model's ladder carries no accuracies"}
    out: dict[str, Any] = {name: _sim_row(replay(run, name)) for name in run.arms}
    try:
        from adaptive_csp.sim.oracle import best_static, oracle
    except ImportError as e:  # the simulator of this install has no oracle
        out["missing"] = f"no oracle in this install ({e})"
        return out
    w = run.adaptive.world
    kw: dict[str, Any] = {"seed": run.scenario.seed, "grid_c": ORACLE_GRID_C}
    if w.died_at is not None:  # the policy's battery emptied: the oracle must last at least as long
        kw["min_lifetime_s"] = out["min_lifetime_s"] = float(w.died_at)
    else:  # equal energy
        kw["energy_budget_j"] = out["energy_budget_j"] = w.energy_j if w.energy_j > 0 else None
    for name, fn in (("oracle", oracle), ("best-static", best_static)):
        try:
            out[name] = _row(fn(run.scenario, run.ladder, run.scenario.device, **kw))
        except ValueError as e:  # a constraint the oracle cannot solve on this day: say so, keep the rest
            out["missing"] = f"the oracle cannot solve this day: {e}"
            out.pop("oracle", None)
            break
    return out
