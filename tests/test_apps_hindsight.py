"""The demo's hindsight rows: the arms scored as the oracle scores, and the oracle called on the demo's world."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

from adaptive_csp.apps.hindsight import hindsight, ladder_score
from adaptive_csp.sim import load_scenario


def _ladder(accs=(0.5, 0.9)) -> SimpleNamespace:
    """What hindsight reads of a ladder: each rung's accuracy."""
    return SimpleNamespace(rungs=[SimpleNamespace(accuracy=a) for a in accs])


def _run(ladder: SimpleNamespace) -> SimpleNamespace:
    rec = {"arrived": [10, 10, 10], "on_time": [1.0, 0.5, 0.0], "level": [0, 1, -1]}
    world = SimpleNamespace(energy_j=123.0)
    arm = SimpleNamespace(rec=rec, world=world)
    static = SimpleNamespace(rec={"arrived": [10, 10, 10], "on_time": [0.0, 1.0, 1.0], "level": [1, 1, 1]})
    scn = load_scenario("conveyor").with_(decision_interval_s=6.0)
    return SimpleNamespace(arms={"adaptive": arm, "static-max": static}, adaptive=arm, ladder=ladder,
                           scenario=scn, device=object())


def test_each_arm_is_scored_like_the_oracle_frames_in_time_at_their_levels_accuracy():
    run = _run(_ladder())
    # (10·1·0.5 + 10·0.5·0.9 + 0 for a dead camera) / 30 frames
    assert ladder_score(run.adaptive.rec, run.ladder) == pytest.approx((5 + 4.5) / 30)
    assert ladder_score(run.arms["static-max"].rec, run.ladder) == pytest.approx(2 * 10 * 0.9 / 30)
    assert ladder_score(run.adaptive.rec, _ladder((None, 0.9))) is None


def test_the_oracle_runs_on_the_demos_scenario_ladder_and_device_at_the_policys_energy(monkeypatch):
    run = _run(_ladder())
    calls = []

    def fake(name):
        def solve(scenario, ladder, device, **kw):
            calls.append((name, scenario, ladder, device, kw))
            return SimpleNamespace(accuracy=0.8, energy_j=100.0, lifetime_s=None, misses=0, seconds_above_limit=0.0,
                                   dual_bound=0.81, levels=[0, 1, 1, 0])
        return solve

    mod = types.ModuleType("adaptive_csp.sim.oracle")
    mod.oracle, mod.best_static = fake("oracle"), fake("best-static")
    monkeypatch.setitem(sys.modules, "adaptive_csp.sim.oracle", mod)
    out = hindsight(run)
    assert [c[0] for c in calls] == ["oracle", "best-static"]
    for _, scn, lad, dev, kw in calls:
        assert scn is run.scenario and lad is run.ladder and dev is run.device
        assert kw == {"energy_budget_j": 123.0, "seed": run.scenario.seed}
    assert out["oracle"]["accuracy"] == 0.8 and out["oracle"]["switches"] == 2
    assert out["oracle"]["mean_level"] == pytest.approx(0.5)
    assert out["arms"]["adaptive"] == pytest.approx(9.5 / 30)

    monkeypatch.setitem(sys.modules, "adaptive_csp.sim.oracle", None)  # an install without the oracle
    gone = hindsight(run)
    assert "no oracle" in gone["missing"] and gone["arms"]["adaptive"] == pytest.approx(9.5 / 30)
