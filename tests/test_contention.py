"""Real load, real recovery, on scripted traces: PSI's ``total`` stall counter read as a delta, other
processes' CPU time where PSI is absent, and the balanced preset's drop and recovery around a load."""

from __future__ import annotations

from collections import deque

import pytest

from adaptive_csp.apps.story import cause_of
from adaptive_csp.control import get_policy
from adaptive_csp.control.governors import ContentionGovernor
from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors import ManualClock, ScriptedSource, SensorPoller
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.sensors.sysfs_source import SysfsSource

LADDER = LevelLadder.from_costs([0.31 + 0.069 * i for i in range(11)])  # 11 rungs, the full one costs 1.0
FULL = LADDER.full
FPS, POLL_S = 80.0, 0.5  # frames served per second; the runner's poller reads the sensors at 2 Hz
LOAD_ON, LOAD_OFF, END = 15.0, 25.0, 40.0  # two busy processes, as in benchmarks/real_load.py


def _psi(root, total_us: float, avg10: float = 50.0) -> None:
    (root / "proc/pressure").mkdir(parents=True, exist_ok=True)
    (root / "proc/pressure/cpu").write_text(f"some avg10={avg10:.2f} avg60=1.00 avg300=1.00 total={int(total_us)}\n"
                                            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")


def test_psi_is_the_stall_counter_delta_over_the_poll_interval(tmp_path):
    clock = ManualClock(100.0)
    _psi(tmp_path, 5_000_000, avg10=37.0)
    src = SysfsSource(root=tmp_path, clock=clock)
    assert src.read().cpu_pressure == 37.0  # no previous read: the kernel's 10-s average
    clock.advance(0.5)
    _psi(tmp_path, 5_000_000 + 400_000, avg10=37.0)  # 0.4 s stalled in 0.5 s
    assert src.read().cpu_pressure == pytest.approx(80.0)
    clock.advance(0.5)
    _psi(tmp_path, 5_000_000 + 400_000 + 10_000, avg10=37.0)  # the load has gone: avg10 would still say 37
    assert src.read().cpu_pressure == pytest.approx(2.0)
    clock.advance(0.25)
    _psi(tmp_path, 1_000, avg10=3.0)  # counter went back (a new namespace?): fall back to avg10
    assert src.read().cpu_pressure == 3.0
    (tmp_path / "proc/pressure/cpu").write_text("some avg10=x total=y\n")
    r = src.read()
    assert r.cpu_pressure is None and "cpu_pressure:invalid" in r.faults


def _drive(signal, seconds=END, load=lambda t: LOAD_ON <= t < LOAD_OFF, deadline_ms=4.0):
    """Serve frames at FPS under the balanced preset; ``signal(t, loaded) -> Readings`` is polled at 2 Hz.
    Latency is 3 ms × relative cost, 2.5× slower while loaded.  Returns [(t, level, reason)]."""
    pol = get_policy("balanced")
    lat: deque[float] = deque(maxlen=120)
    level, out, readings, next_poll = FULL, [], None, 0.0
    for k in range(int(seconds * FPS)):
        t = k / FPS
        if t >= next_poll:
            readings, next_poll = signal(t, load(t)), next_poll + POLL_S
        lat.append(3.0 * LADDER.relative_cost(level) * (2.5 if load(t) else 1.0))
        d = pol.decide(readings, RuntimeStats(now=t, level=level, latencies_ms=tuple(lat), deadline_ms=deadline_ms),
                       LADDER)
        level = d.level
        out.append((t, level, d.reason))
    return out


def _psi_signal(tmp_path):
    """A PSI file whose total counter stalls 95 % of the time under load and 3 % without, read through
    the sysfs source and a poller on the same simulated clock."""
    clock = ManualClock(0.0)
    state = {"t": 0.0, "total": 1e9}
    _psi(tmp_path, state["total"])
    poller = SensorPoller(SysfsSource(root=tmp_path, clock=clock), rate_hz=2.0, clock=clock)

    def signal(t, loaded):
        state["total"] += (t - state["t"]) * 1e6 * (0.95 if loaded else 0.03)
        state["t"] = t
        _psi(tmp_path, state["total"], avg10=60.0 if t > LOAD_ON else 1.0)  # avg10 lags: never used after read 1
        clock.set(t)
        return poller.poll_once()

    return signal


def _check_drop_and_recovery(trace):
    pre = [lv for t, lv, _ in trace if LOAD_ON - 5 <= t < LOAD_ON]
    assert set(pre) == {FULL}
    t_drop = next((t for t, lv, _ in trace if t >= LOAD_ON and lv < FULL), float("inf"))
    assert t_drop - LOAD_ON <= 2.0
    assert min(lv for t, lv, _ in trace if LOAD_ON <= t < LOAD_OFF) <= FULL - 3  # a real drop, not a flicker
    t_back = next((t for t, lv, _ in trace if t >= LOAD_OFF and lv >= FULL - 1), float("inf"))
    assert t_back - LOAD_OFF <= 10.0, t_back - LOAD_OFF
    assert all(lv >= FULL - 1 for t, lv, _ in trace if t >= t_back)  # and it stays back
    return t_drop - LOAD_ON, t_back - LOAD_OFF


@pytest.mark.parametrize("deadline_ms", [4.0, None])  # with the latency governor, and the load signal alone
def test_balanced_drops_and_recovers_on_a_psi_total_trace(tmp_path, deadline_ms):
    trace = _drive(_psi_signal(tmp_path), deadline_ms=deadline_ms)
    _check_drop_and_recovery(trace)
    if deadline_ms is None:  # the load signal alone did it
        assert {cause_of(r) for _, _, r in trace} == {"contention", "unconstrained"}
        assert any(r.startswith("contention: psi 95%") for _, _, r in trace)


@pytest.mark.parametrize("deadline_ms", [4.0, None])
def test_without_psi_other_processes_cpu_time_does_the_same(deadline_ms):
    def signal(t, loaded):  # psutil's deltas: two busy processes take the CPU, we keep our own share
        own = 30.0 if loaded else 40.0
        return Readings.sanitized(timestamp=t, source="psutil", cpu_percent=100.0 if loaded else own + 5.0,
                                  own_cpu_percent=own)

    trace = _drive(signal, deadline_ms=deadline_ms)
    _check_drop_and_recovery(trace)
    if deadline_ms is None:
        assert {cause_of(r) for _, _, r in trace} == {"contention", "unconstrained"}
        assert any(r.startswith("contention: others 100%") for _, _, r in trace)


def test_recovery_without_the_fast_path_misses_the_target(tmp_path):
    """The check above can fail: with the ladder's thermal-scale pace the level is not back in 10 s."""
    import adaptive_csp.control.governors as g
    import adaptive_csp.control.latency as lt

    saved = (g.ContentionGovernor.__init__, lt.LatencyGovernor.recover_s)
    init = saved[0]

    def slow_init(self, *a, **kw):
        init(self, *a, **kw)
        self.recover_s = None

    g.ContentionGovernor.__init__, lt.LatencyGovernor.recover_s = slow_init, None
    try:
        with pytest.raises(AssertionError):
            _check_drop_and_recovery(_drive(_psi_signal(tmp_path)))
    finally:
        g.ContentionGovernor.__init__, lt.LatencyGovernor.recover_s = saved


def test_a_flapping_load_does_not_flap_the_level():
    gov = ContentionGovernor(pressure_high=40.0, pressure_low=10.0, step_s=0.25, clear_s=1.5)
    caps, level = [], FULL
    for k in range(int(60 / POLL_S)):  # load on 1 s, off 1 s, for a minute
        t = k * POLL_S
        v = 90.0 if int(t) % 2 == 0 else 2.0
        cap = gov.update(Readings(timestamp=t, cpu_pressure=v), RuntimeStats(now=t, level=level), LADDER)
        level = FULL if cap is None else cap
        caps.append(cap)
    assert caps[0] == FULL - 1 and caps[-1] == 0
    assert all(c is not None for c in caps)  # 1 s of calm never reaches clear_s: the cap holds throughout
    # a load that comes back soon after a release makes the next release wait longer
    gov = ContentionGovernor(step_s=0.25, clear_s=1.5, rearm_s=20.0)
    seq = [90.0] * 4 + [2.0] * 4 + [90.0] * 2 + [2.0] * 10
    released = []
    for k, v in enumerate(seq):
        t = k * POLL_S
        was = gov.cap
        if gov.update(Readings(timestamp=t, cpu_pressure=v), RuntimeStats(now=t, level=5), LADDER) is None \
                and was is not None:
            released.append(t)
    assert gov.clear_s == 3.0  # doubled
    assert released == [3.5, 8.0]  # calm from 2.0 s: 1.5 s; calm from 5.0 s: 3 s


def test_scripted_source_trace_drives_the_same_path():
    """The PSI readings also replay through a ScriptedSource (what the simulator and `sensors` use)."""
    src = ScriptedSource([{"t": 0.0, "cpu_pressure": 2.0}, {"t": LOAD_ON, "cpu_pressure": 95.0},
                          {"t": LOAD_OFF, "cpu_pressure": 2.0}], start=0.0)
    trace = _drive(lambda t, loaded: src.read(now=t))
    _check_drop_and_recovery(trace)


def test_one_latency_hiccup_does_not_drop_the_level_two_do():
    from adaptive_csp.control.latency import LatencyGovernor

    def cap_after(lat):
        gov = LatencyGovernor(deadline_ms=4.0)
        cap = None
        for k in range(len(lat)):
            cap = gov.update(Readings(timestamp=0.0), RuntimeStats(now=k / FPS, level=FULL,
                                                                   latencies_ms=tuple(lat[: k + 1])), LADDER)
        return cap

    calm = [1.0] * 12
    assert cap_after(calm[:6] + [9.0] + calm[:5]) is None  # a scheduler hiccup: p95 of 12 samples is it
    assert cap_after(calm[:6] + [9.0, 1.0, 8.0] + calm[:3]) is not None  # twice: a real overrun
    assert cap_after([9.0] * 3) is not None  # every frame late: down after min_samples_down
