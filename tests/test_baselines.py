"""Baseline policies (issue #6): static max/min, ondemand-like DVFS governor, Unity-style indexer."""

from __future__ import annotations

import pytest

from adaptive_csp.control.baselines import BASELINES, OndemandGovernor, StaticMax, StaticMin, UnityIndexer
from adaptive_csp.control.policy import Policy, RuntimeStats
from adaptive_csp.sensors.readings import Readings
from tests.conftest import SIM_LADDER as LADDER


def rd(t, **kw):
    return Readings(timestamp=t, **kw)


def st(t, level=4, lat=(), deadline=None):
    return RuntimeStats(now=t, level=level, latencies_ms=tuple(lat), deadline_ms=deadline)


def test_registry_keys_and_types():
    assert set(BASELINES) == {"static-max", "static-min", "ondemand", "unity"}
    for name, factory in BASELINES.items():
        pol = factory()
        assert isinstance(pol, Policy) and pol.name == name


def test_static():
    assert StaticMax().decide(rd(0), st(0), LADDER).level == LADDER.full
    d = StaticMin().decide(rd(0), st(0), LADDER)
    assert d.level == 0 and d.frequency == 1.0


def test_ondemand_up_threshold_and_proportional():
    g = OndemandGovernor(up_threshold=80, f_min=0.3)
    d = g.decide(rd(0, cpu_percent=85.0), st(0), LADDER)
    assert d.frequency == 1.0 and d.level == LADDER.full
    d = g.decide(rd(1, cpu_percent=50.0), st(1), LADDER)
    assert d.frequency == pytest.approx(0.3 + 0.5 * 0.7)
    assert g.decide(rd(2), st(2), LADDER).frequency == 1.0  # no utilisation reading: f_max
    with pytest.raises(ValueError):
        OndemandGovernor(up_threshold=0)


def test_unity_lowers_when_hot_with_delays_and_recovers_when_cool():
    u = UnityIndexer(t_warning_c=70, t_throttle_c=80)
    levels = []
    t = 0.0
    while t < 60:  # hot: throttling -> fast decrease every thermal_delay / 2 = 5 s after the first 10 s
        levels.append(u.decide(rd(t, temperature_c=85.0), st(t), LADDER).level)
        t += 0.5
    assert levels[0] == LADDER.full
    assert levels[int(9.5 / 0.5)] == LADDER.full  # waits the initial 10 s
    assert levels[int(10 / 0.5)] == LADDER.full - 1
    assert levels[int(14.5 / 0.5)] == LADDER.full - 1 and levels[int(15 / 0.5)] == LADDER.full - 2
    assert levels[-1] == 0
    while t < 200:  # cool and falling: raise one step per 10 s
        lvl = u.decide(rd(t, temperature_c=40.0 - 0.01 * t), st(t), LADDER).level
        t += 0.5
    assert lvl == LADDER.full


def test_unity_performance_tracker_lowers_on_overrun():
    u = UnityIndexer()
    t, lvl = 0.0, None
    while t < 30:
        lvl = u.decide(rd(t, temperature_c=40.0), st(t, lat=[50.0] * 8, deadline=33.0), LADDER).level
        t += 0.5
    assert lvl < LADDER.full  # 50 ms against 33 ms: ≥ 30 % overrun -> fast decrease
    u.reset()
    assert u.decide(rd(100, temperature_c=40.0), st(100), LADDER).level == LADDER.full
