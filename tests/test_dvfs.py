"""DVFS actuators (simulated, cpufreq, Jetson) and the joint (level, frequency) policy."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from adaptive_csp.control.dvfs import EnergyCurve, JointDVFSPolicy, joint_policy
from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.levels import LevelLadder
from adaptive_csp.power import (
    CpufreqDVFS,
    DVFSNotEnabled,
    DVFSPermissionError,
    DVFSUnavailable,
    JetsonDVFS,
    SimulatedDVFS,
    get_actuator,
)
from adaptive_csp.power import actuators as act_mod
from adaptive_csp.sensors.readings import Readings
from tests.conftest import Fixed


# --- simulated -------------------------------------------------------------------------------------------
def test_simulated_snaps_cools_down_and_restores():
    a = SimulatedDVFS(cooldown_s=2.0)
    assert a.get() == 1.0 and a.frequencies[-1] == 1.0
    assert a.set(0.52, now=0.0) == 0.5
    assert a.set(0.8, now=1.0) == 0.5 and a.held  # cooling down
    assert a.set(0.8, now=2.5) == 0.8 and not a.held
    assert a.apply(None, now=10.0) == 0.8  # a Decision without frequency leaves it
    assert a.history == [(0.0, 0.5), (2.5, 0.8)] and a.switches == 2
    with a:
        pass
    assert a.get() == 1.0
    assert isinstance(get_actuator("sim"), SimulatedDVFS)
    with pytest.raises(ValueError):
        get_actuator("nope")
    with pytest.raises(ValueError):
        SimulatedDVFS(steps=(0.5, 0.8))


# --- cpufreq ---------------------------------------------------------------------------------------------
def _fake_sysfs(tmp_path, avail: str | None = "800000 1600000 2400000 3200000"):
    pol = tmp_path / "cpufreq" / "policy0"
    pol.mkdir(parents=True)
    (pol / "cpuinfo_max_freq").write_text("3200000\n")
    (pol / "cpuinfo_min_freq").write_text("800000\n")
    (pol / "scaling_max_freq").write_text("3200000\n")
    (pol / "affected_cpus").write_text("0 1\n")
    if avail:
        (pol / "scaling_available_frequencies").write_text(avail + "\n")
    return pol


def test_cpufreq_needs_opt_in():
    with pytest.raises(DVFSNotEnabled, match="enable=True"):
        CpufreqDVFS()


def test_cpufreq_refuses_without_hardware(tmp_path):
    with pytest.raises(DVFSUnavailable, match="no cpufreq policies"):
        CpufreqDVFS(enable=True, root=tmp_path)


def test_cpufreq_on_this_machine_does_what_its_sysfs_allows():
    base = Path("/sys/devices/system/cpu/cpufreq")
    files = sorted(base.glob("policy*/scaling_max_freq")) if base.is_dir() else []
    if not files:  # this project's CI machines: no cpufreq at all
        with pytest.raises(DVFSUnavailable, match="no cpufreq policies"):
            CpufreqDVFS(enable=True)
    elif not all(os.access(f, os.W_OK) for f in files):  # a laptop, not root
        with pytest.raises(DVFSPermissionError, match="root"):
            CpufreqDVFS(enable=True)
    else:  # root on real hardware: opening and closing leaves the ceiling as it was
        before = [f.read_text() for f in files]
        with CpufreqDVFS(enable=True) as a:
            assert 0 < a.get() <= 1.0
        assert [f.read_text() for f in files] == before


def test_cpufreq_refuses_without_permission(tmp_path, monkeypatch):
    _fake_sysfs(tmp_path)
    monkeypatch.setattr(act_mod, "_writable", lambda p: False)  # what a non-root user sees
    with pytest.raises(DVFSPermissionError, match="root") as e:
        CpufreqDVFS(enable=True, root=tmp_path)
    assert isinstance(e.value, PermissionError)


def test_cpufreq_sets_ceiling_and_restores(tmp_path):
    pol = _fake_sysfs(tmp_path)
    with CpufreqDVFS(enable=True, root=tmp_path, cooldown_s=0.0) as a:
        assert a.frequencies == (0.25, 0.5, 0.75, 1.0)
        assert a.set(0.5) == 0.5
        assert (pol / "scaling_max_freq").read_text().strip() == "1600000"
        assert a.get() == 0.5
    assert (pol / "scaling_max_freq").read_text().strip() == "3200000"


def test_cpufreq_without_frequency_list_uses_steps(tmp_path):
    _fake_sysfs(tmp_path, avail=None)
    a = CpufreqDVFS(enable=True, root=tmp_path, cpus=[1])
    assert a.frequencies[0] == 0.3 and a.frequencies[-1] == 1.0
    with pytest.raises(DVFSUnavailable):
        CpufreqDVFS(enable=True, root=tmp_path, cpus=[7])


# --- Jetson ----------------------------------------------------------------------------------------------
def test_jetson_needs_opt_in():
    with pytest.raises(DVFSNotEnabled):
        JetsonDVFS()


def test_jetson_refuses_without_service_or_package():
    # jtop installed but no jtop.service here (JtopException), or jtop not installed: both refuse cleanly
    with pytest.raises(DVFSUnavailable):
        JetsonDVFS(enable=True)


def test_jetson_refuses_when_package_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", None)  # import jtop -> ImportError
    with pytest.raises(DVFSUnavailable, match="jetson-stats"):
        JetsonDVFS(enable=True)


class _FakeNvp:
    def __init__(self, i, models):
        self.id, self.models = i, models

    def __str__(self):
        return self.models[self.id]


class _FakeJtop:
    def __init__(self, interval=1.0):
        self.interval = interval
        self.models = ["MAXN", "10W", "5W"]
        self._nvp = 1
        self.jetson_clocks = False
        self.calls = []
        self.closed = False

    def start(self):
        pass

    def close(self):
        self.closed = True

    @property
    def nvpmodel(self):
        return _FakeNvp(self._nvp, self.models)

    @nvpmodel.setter
    def nvpmodel(self, v):
        self.calls.append(v)
        self._nvp = v if isinstance(v, int) else self.models.index(v)


def test_jetson_maps_steps_to_nvpmodel_with_long_cooldown():
    fake = _FakeJtop()
    a = JetsonDVFS(enable=True, modes={1.0: "MAXN", 0.5: "10W", 0.25: "5W"}, cooldown_s=30.0,
                   jtop_factory=lambda interval: fake)
    assert a.slow and a.get() == 0.5 and fake.interval >= 0.5
    assert a.set(1.0, now=0.0) == 1.0 and fake.calls[-1] == "MAXN" and fake.jetson_clocks is True
    assert a.set(0.25, now=10.0) == 1.0 and a.held  # slow actuator: long cooldown
    assert a.set(0.25, now=31.0) == 0.25 and fake.calls[-1] == "5W" and fake.jetson_clocks is False
    a.close()
    assert fake._nvp == 1 and fake.jetson_clocks is False and fake.closed


def test_jetson_service_error_and_permission(monkeypatch):
    class Boom(Exception):
        pass

    def dead(interval):
        raise Boom("The jtop.service is not active")

    with pytest.raises(DVFSUnavailable, match="jtop.service"):
        JetsonDVFS(enable=True, jtop_factory=dead)

    def denied(interval):
        raise PermissionError("no")

    with pytest.raises(DVFSPermissionError):
        JetsonDVFS(enable=True, jtop_factory=denied)
    fake = _FakeJtop()
    a = JetsonDVFS(enable=True, jtop_factory=lambda interval: fake)  # default map: mode id order
    assert a.frequencies == pytest.approx((1 / 3, 2 / 3, 1.0))


# --- joint policy ---------------------------------------------------------------------------------------
def test_energy_curve_has_an_interior_optimum():
    c = EnergyCurve()
    assert c.energy(1.0) == pytest.approx(1.0)
    best = c.best((0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
    assert 0.3 < best < 1.0 and c.energy(best) < c.energy(0.3) and c.energy(best) < 1.0


def test_joint_slows_down_within_deadline_and_keeps_budget():
    lad = LevelLadder.from_costs([0.25, 0.5, 0.75, 1.0])
    pol = JointDVFSPolicy(Fixed(1), hold_s=0.0)
    r = Readings(timestamp=0.0)
    first = pol.decide(r, RuntimeStats(now=0.0, level=3, deadline_ms=100.0, frequency=1.0), lad)
    assert first.level == 1 and first.frequency == 1.0  # no latencies yet: inner level, full speed
    # level 1 runs 20 ms at f=1: lots of slack below 85 ms
    d = pol.decide(r, RuntimeStats(now=1.0, level=1, latencies_ms=(20.0,) * 8, deadline_ms=100.0,
                                   frequency=1.0), lad)
    c = pol.curve
    assert d.frequency < 1.0
    cost = lad.costs
    assert cost[d.level] * c.energy(d.frequency) <= cost[1] + 1e-9  # same energy budget as the inner level
    assert 40.0 * cost[d.level] / d.frequency <= 85.0 + 1e-9  # unit latency 40 ms at cost 1.0
    assert d.level >= 1
    assert pol.inner.seen[-1] == 1  # the inner policy sees its own level


def test_joint_speeds_up_at_once_when_deadline_is_near():
    lad = LevelLadder.from_costs([0.5, 1.0])
    pol = JointDVFSPolicy(Fixed(1), hold_s=100.0)
    r = Readings(timestamp=0.0)
    d = pol.decide(r, RuntimeStats(now=0.0, level=1, latencies_ms=(90.0,) * 8, deadline_ms=100.0,
                                   frequency=0.5), lad)
    # unit latency 45 ms at f_max: f must be >= 45/85 -> the 0.6 step, at once despite hold_s
    assert d.frequency == 0.6 and d.level == 1


def test_joint_holds_slowdowns():
    lad = LevelLadder.from_costs([0.5, 1.0])
    pol = JointDVFSPolicy(Fixed(1), hold_s=5.0, upgrade=False)
    r = Readings(timestamp=0.0)
    st = dict(level=1, latencies_ms=(10.0,) * 8, deadline_ms=100.0, frequency=1.0)
    assert pol.decide(r, RuntimeStats(now=0.0, **st), lad).frequency == 1.0
    assert pol.decide(r, RuntimeStats(now=3.0, **st), lad).frequency == 1.0
    assert pol.decide(r, RuntimeStats(now=5.5, **st), lad).frequency < 1.0


def test_joint_policy_in_the_simulator():
    from adaptive_csp.sim import get_device_class, simulate

    lad = LevelLadder.from_costs([2.0, 3.0, 4.0, 6.0, 8.0], [0.88, 0.89, 0.90, 0.91, 0.92])
    base = simulate(policy="battery", scenario="drone", ladder=lad, record=False)
    nano = get_device_class("jetson-nano")
    dvfs = simulate(policy=joint_policy("battery", device=nano), scenario="drone", ladder=lad, record=False)
    with pytest.raises(ValueError, match="get_device_class"):
        joint_policy("battery", device="jetson-nano")  # control never looks up the simulator's devices
    assert dvfs.frequency_switches > 0 and base.frequency_switches == 0
    assert dvfs.battery_life_s > base.battery_life_s  # slower clocks once the battery policy sheds levels
    assert dvfs.deadline_miss_pct < 5.0
