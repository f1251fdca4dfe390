"""The demo's hindsight rows: each arm's schedule replayed through the simulator, and the oracle called on
the demo's own scenario, ladder and device at the policy's energy."""

from __future__ import annotations

import sys
import types
from dataclasses import replace
from types import SimpleNamespace

import pytest

from adaptive_csp.apps.hindsight import ORACLE_GRID_C, Replay, hindsight
from adaptive_csp.control.policy import Decision, Policy, RuntimeStats
from adaptive_csp.levels import LevelLadder
from adaptive_csp.models.pretrained import shipped_ladder
from adaptive_csp.sim import load_scenario, simulate


def test_a_replay_plays_the_recorded_step_and_holds_through_an_empty_battery():
    pol = Replay(10.0, [2, 5, -1, -1], [1.0, 0.6, float("nan"), float("nan")], [1, 2, 0, 0])
    got = [pol.decide(None, RuntimeStats(now=10.0 * k, level=0), None) for k in range(5)]
    assert [d.level for d in got] == [2, 5, 5, 5, 5]
    assert [d.frequency for d in got] == [1.0, 0.6, None, None, None]
    assert [d.frame_interval for d in got] == [1, 2, 1, 1, 1]
    with pytest.raises(ValueError, match="one level"):
        Replay(1.0, [1, 2], [1.0], [1, 1])


class _Fixed(Policy):
    def __init__(self, level: int):
        self.level = level

    def decide(self, readings, stats, ladder):
        return Decision(self.level, "fixed")


def _run(steps: int = 120) -> SimpleNamespace:
    scn = load_scenario("conveyor")
    scn = scn.with_(decision_interval_s=scn.duration_s / steps)
    shipped = shipped_ladder()  # rung 3 made slower: a ladder of its own, not the shipped one
    ladder = LevelLadder(replace(r, latency_ms=2 * r.latency_ms if i == 3 else r.latency_ms)
                         for i, r in enumerate(shipped.rungs))

    def arm(level: int, energy: float) -> SimpleNamespace:
        rec = {"level": [level] * steps, "frequency": [1.0] * steps, "interval": [1] * steps}
        return SimpleNamespace(rec=rec, world=SimpleNamespace(energy_j=energy, died_at=None))

    arms = {"adaptive": arm(3, 12345.0), "static-max": arm(ladder.full, 0.0)}
    return SimpleNamespace(arms=arms, adaptive=arms["adaptive"], ladder=ladder, scenario=scn, dt=scn.decision_interval_s)


def test_the_oracle_runs_on_the_demos_world_and_each_arm_is_replayed_as_the_simulator_scores(monkeypatch):
    run = _run()
    calls = []

    def fake(name):
        def solve(scenario, ladder, device, **kw):
            calls.append((name, scenario, ladder, device, kw))
            return SimpleNamespace(accuracy=0.8, energy_j=100.0, lifetime_s=None, misses=0, seconds_above_limit=0.0,
                                   dual_bound=0.81, switches=2, levels=[0, 1, 1, 0])
        return solve

    mod = types.ModuleType("adaptive_csp.sim.oracle")
    mod.oracle, mod.best_static = fake("oracle"), fake("best-static")
    monkeypatch.setitem(sys.modules, "adaptive_csp.sim.oracle", mod)
    out = hindsight(run)
    assert [c[0] for c in calls] == ["oracle", "best-static"]
    for _, scn, lad, dev, kw in calls:  # the demo's own world: its scenario (its dt), its ladder, its device
        assert scn is run.scenario and lad is run.ladder and dev == run.scenario.device
        assert kw == {"energy_budget_j": 12345.0, "seed": run.scenario.seed, "grid_c": ORACLE_GRID_C}
    assert out["oracle"]["accuracy"] == 0.8 and out["oracle"]["mean_level"] == pytest.approx(0.5)
    # a static arm replayed is the simulator's own run of that level, scored the oracle's way
    for name, level in (("static-max", run.ladder.full), ("adaptive", 3)):
        ref = simulate(_Fixed(level), run.scenario, ladder=run.ladder, record=False)
        assert out[name]["accuracy"] == pytest.approx(ref.on_time_accuracy)
        assert out[name]["energy_j"] == pytest.approx(ref.energy_j)
        assert out[name]["misses"] == ref.deadline_misses

    # the policy's battery emptied: the oracle must last as long instead of spending as much
    calls.clear()
    run.adaptive.world.died_at = 4000.0
    assert hindsight(run)["min_lifetime_s"] == 4000.0
    assert all(c[4] == {"min_lifetime_s": 4000.0, "seed": run.scenario.seed, "grid_c": ORACLE_GRID_C}
               for c in calls) and len(calls) == 2
    run.adaptive.world.died_at = None

    def unsolvable(*a, **kw):
        raise ValueError("a lifetime target where heat can reach the trip point is not supported")

    mod.oracle = mod.best_static = unsolvable
    out2 = hindsight(run)
    assert "cannot solve" in out2["missing"] and "oracle" not in out2 and out2["adaptive"] == out["adaptive"]

    monkeypatch.setitem(sys.modules, "adaptive_csp.sim.oracle", None)  # an install without the oracle
    gone = hindsight(run)
    assert "no oracle" in gone["missing"] and "oracle" not in gone and gone["adaptive"] == out["adaptive"]
