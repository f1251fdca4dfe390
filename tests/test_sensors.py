"""Sensor sources, the scripted/replay source, merging, the poller and the CLI."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

import pytest

from adaptive_csp.sensors import (
    ManualClock,
    MergedSource,
    NullSource,
    Readings,
    ScriptedSource,
    SensorPoller,
    load_trace,
    make_source,
    write_trace,
)
from adaptive_csp.sensors.jtop_source import JtopSource, readings_from_jtop


# Readings ---------------------------------------------------------------------------------------------
def test_sanitized_drops_absurd_values():
    r = Readings.sanitized(timestamp=1.0, battery_percent=250, temperature_c=-256, power_w=-3,
                           cpu_percent=float("nan"), temperatures_c={"a": 50.0, "b": -256.0})
    assert r.battery_percent is None and r.power_w is None and r.cpu_percent is None
    assert r.temperatures_c == {"a": 50.0} and r.temperature_c == 50.0  # hottest valid zone
    assert {"battery_percent:invalid", "temperature_c:invalid", "power_w:invalid",
            "cpu_percent:invalid", "temperatures_c:invalid"} <= set(r.faults)
    with pytest.raises(ValueError):
        Readings.sanitized(timestamp=float("nan"))


# real sources on this machine ----------------------------------------------------------------------------
def test_psutil_source_here():
    s = make_source("psutil")
    time.sleep(0.15)
    r = s.read()
    assert 0.0 <= r.cpu_percent <= 100.0 and len(r.per_cpu_percent) >= 1
    assert r.load_avg is not None and len(r.load_avg) == 3
    assert r.own_cpu_percent is None or 0.0 <= r.own_cpu_percent <= 100.0
    assert r.faults == ()
    if not s.has_battery:
        assert r.battery_percent is None and r.plugged is None


def test_sysfs_source_here_reports_absent_hardware():
    s = make_source("sysfs")
    r = s.read()
    assert isinstance(r, Readings)
    if not s.zones:
        assert r.temperature_c is None and "thermal zones" in s.absent()
    if not s.batteries:
        assert r.battery_percent is None and "battery" in s.absent()
    if not s.rapl:
        assert r.power_w is None and "RAPL" in s.absent()


def test_auto_merges_what_is_present():
    s = make_source("auto")
    r = s.read()
    assert isinstance(r, Readings) and r.source
    assert r.cpu_percent is not None or r.load_avg is not None


def _fake_sysfs(root, energy=1_000_000, cap=55, status="Discharging", temp=47_500):
    tz = root / "sys/class/thermal/thermal_zone0"
    tz.mkdir(parents=True, exist_ok=True)
    (tz / "type").write_text("cpu-thermal\n")
    (tz / "temp").write_text(f"{temp}\n")
    tz1 = root / "sys/class/thermal/thermal_zone1"
    tz1.mkdir(parents=True, exist_ok=True)
    (tz1 / "type").write_text("gpu-thermal\n")
    (tz1 / "temp").write_text("41000\n")
    bat = root / "sys/class/power_supply/BAT0"
    bat.mkdir(parents=True, exist_ok=True)
    (bat / "type").write_text("Battery\n")
    (bat / "capacity").write_text(f"{cap}\n")
    (bat / "status").write_text(f"{status}\n")
    (bat / "power_now").write_text("7500000\n")
    ac = root / "sys/class/power_supply/AC"
    ac.mkdir(parents=True, exist_ok=True)
    (ac / "type").write_text("Mains\n")
    (ac / "online").write_text("0\n")
    rapl = root / "sys/class/powercap/intel-rapl:0"
    rapl.mkdir(parents=True, exist_ok=True)
    (rapl / "energy_uj").write_text(f"{energy}\n")
    (rapl / "max_energy_range_uj").write_text("40000000\n")
    sub = root / "sys/class/powercap/intel-rapl:0:0"  # subzone: must not be double counted
    sub.mkdir(parents=True, exist_ok=True)
    (sub / "energy_uj").write_text("5\n")
    (root / "proc/pressure").mkdir(parents=True, exist_ok=True)
    (root / "proc/pressure/cpu").write_text("some avg10=12.50 avg60=3.00 avg300=1.00 total=1\n"
                                            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    (root / "proc/loadavg").write_text("0.50 0.40 0.30 1/100 42\n")


def test_sysfs_source_on_a_fake_tree(tmp_path):
    _fake_sysfs(tmp_path)
    clock = ManualClock(10.0)
    from adaptive_csp.sensors.sysfs_source import SysfsSource

    s = SysfsSource(root=tmp_path, clock=clock)
    r = s.read()
    assert r.temperatures_c == {"cpu-thermal": 47.5, "gpu-thermal": 41.0} and r.temperature_c == 47.5
    assert r.battery_percent == 55 and r.plugged is False and r.battery_power_w == pytest.approx(7.5)
    assert r.cpu_pressure == 12.5 and r.load_avg == (0.5, 0.4, 0.3)
    assert r.power_w is None  # RAPL needs two reads
    clock.advance(2.0)
    _fake_sysfs(tmp_path, energy=1_000_000 + 30_000_000)  # 30 J in 2 s
    assert s.read().power_w == pytest.approx(15.0)
    clock.advance(1.0)
    _fake_sysfs(tmp_path, energy=500_000, status="Charging")  # wrapped counter
    r = s.read()
    assert r.power_w == pytest.approx((40_000_000 - 31_000_000 + 500_000) / 1e6)
    assert r.plugged is True and r.battery_power_w == pytest.approx(-7.5)
    _fake_sysfs(tmp_path, cap=250, temp=-256_000)  # absurd values are faults, not exceptions
    clock.advance(1.0)
    r = s.read()
    assert r.battery_percent is None and "battery_percent:invalid" in r.faults
    assert "temperatures_c:invalid" in r.faults and r.temperatures_c == {"gpu-thermal": 41.0}
    assert s.absent() == []


# jtop ----------------------------------------------------------------------------------------------------
def test_jtop_mapping():
    stats = {"CPU1": 10, "CPU2": "OFF", "CPU3": 30, "GPU": 55.0, "RAM": 0.4, "Temp CPU": 99.0}
    power = {"rail": {"VDD_IN": {"volt": 5000, "curr": 1000, "power": 5000, "avg": 4800}},
             "tot": {"volt": 5000, "curr": 1400, "power": 7000, "avg": 6900}}
    temperature = {"CPU": {"online": True, "temp": 48.5, "max": 100, "crit": 105},
                   "GPU": {"online": True, "temp": 46.0}, "PMIC": {"online": True, "temp": -256.0},
                   "SOC": {"online": False, "temp": 20.0}}
    r = readings_from_jtop(stats, power, temperature, now=3.0)
    assert r.per_cpu_percent == (10.0, 30.0) and r.cpu_percent == 20.0 and r.gpu_percent == 55.0
    assert r.temperatures_c == {"CPU": 48.5, "GPU": 46.0} and r.temperature_c == 48.5
    assert r.power_w == 7.0 and r.faults == ()  # offline sensors are absent, not faults
    r = readings_from_jtop({"Temp AO": -256, "Temp CPU": 40, "Power TOT": 3500}, now=1.0)
    assert r.temperatures_c == {"CPU": 40.0} and r.power_w == 3.5


def test_real_jtop_client_without_service(caplog):
    """With jetson-stats installed (extra ``jetson``) but no jtop.service: unavailable, one log line."""
    pytest.importorskip("jtop")
    with caplog.at_level(logging.INFO):
        s = JtopSource()
        r1, r2 = s.read(), s.read()
    assert s.available is False and "jtop" in (s.error or "")
    assert r1.temperature_c is None and r1.cpu_percent is None and r2.source == "jtop(unavailable)"
    assert sum("jtop source unavailable" in rec.getMessage() for rec in caplog.records) == 1
    s.close()


def test_jtop_not_installed(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "jtop", None)  # import fails
    with caplog.at_level(logging.INFO):
        s = make_source("jtop")
    assert s.available is False and "not installed" in s.error
    assert isinstance(s.read(), Readings)


# scripted ------------------------------------------------------------------------------------------------
def test_scripted_list_steps_and_repeats():
    s = ScriptedSource([{"temperature_c": 40}, {"temperature_c": 50}], clock=ManualClock(5.0))
    assert [s.read().temperature_c for _ in range(4)] == [40, 50, 50, 50]
    s = ScriptedSource([{"temperature_c": 40}, {"temperature_c": 50}], loop=True)
    assert [s.read().temperature_c for _ in range(4)] == [40, 50, 40, 50]
    with pytest.raises(ValueError, match="unknown Readings fields"):
        ScriptedSource([{"temperature": 40}])


def test_scripted_schedule_clock_and_interpolation():
    clock = ManualClock()
    sched = [{"t": 0, "temperature_c": 40.0}, {"t": 10, "temperature_c": 60.0}, {"t": 20, "battery_percent": 5}]
    s = ScriptedSource(sched, clock=clock, start=0.0)
    assert s.read().temperature_c == 40.0 and s.read().timestamp == 0.0
    s.advance(15)
    r = s.read()
    assert r.temperature_c == 60.0 and r.timestamp == 15.0
    assert s.read(now=25).battery_percent == 5 and clock() == 25
    s2 = ScriptedSource(sched, start=0.0, interpolate=True)
    assert s2.read(now=5).temperature_c == pytest.approx(50.0)
    with pytest.raises(TypeError):
        s2.advance(1)


def test_scripted_function_and_faults():
    s = ScriptedSource(lambda t: {"temperature_c": 40 + t}, start=100.0)
    assert s.read(now=110).temperature_c == 50
    s = ScriptedSource([RuntimeError("boom"), None, Readings(timestamp=-5.0, cpu_percent=1.0)])
    with pytest.raises(RuntimeError):
        s.read()
    assert s.read() is None
    assert s.read().timestamp == -5.0  # a Readings item is returned as it is (stale injection)
    s = ScriptedSource([{"temperature_c": 40, "timestamp": 1.0}])
    assert s.read(now=50).timestamp == 1.0


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_trace_round_trip(tmp_path, suffix):
    rows = [Readings(timestamp=float(t), cpu_percent=10.0 * t, load_avg=(1.0, 2.0, 3.0), plugged=t % 2 == 0,
                     temperatures_c={"cpu": 40.0 + t, "gpu": 30.0}, temperature_c=40.0 + t) for t in range(4)]
    path = write_trace(rows, tmp_path / f"trace{suffix}")
    assert len(load_trace(path)) == 4
    s = ScriptedSource.from_trace(path, start=0.0)
    r = s.read(now=2.5)
    assert r.cpu_percent == 20.0 and r.plugged is True and r.load_avg == (1.0, 2.0, 3.0)
    assert r.temperatures_c == {"cpu": 42.0, "gpu": 30.0} and r.temperature_c == 42.0


def test_csv_trace_with_extra_columns_and_blanks(tmp_path):
    f = tmp_path / "sim.csv"
    f.write_text("t,temperature_c,battery_percent,level,temp.soc\n0,45,,3,44\n5,bad,80,2,\n")
    s = ScriptedSource.from_trace(f, start=0.0)
    r = s.read(now=1)
    assert r.temperature_c == 45 and r.battery_percent is None and r.temperatures_c == {"soc": 44.0}
    r = s.read(now=6)
    assert r.temperature_c is None and "temperature_c:invalid" in r.faults and r.battery_percent == 80
    bad = tmp_path / "bad.csv"
    bad.write_text("temperature_c\n40\n")
    with pytest.raises(ValueError, match="'t'"):
        load_trace(bad)


# merging and make_source ------------------------------------------------------------------------------
def test_make_source_specs():
    assert isinstance(make_source("none"), NullSource)
    src = ScriptedSource([{"cpu_percent": 1}])
    assert make_source(src) is src
    assert isinstance(make_source([{"cpu_percent": 1}]), ScriptedSource)
    m = make_source(["none", src])
    assert isinstance(m, MergedSource) and m.read().cpu_percent == 1
    with pytest.raises(ValueError):
        make_source("gpsd")
    with pytest.raises(TypeError):
        make_source(42)


def test_merged_source_priority_and_broken_child(caplog):
    a = ScriptedSource([{"temperatures_c": {"cpu": 50.0}, "cpu_percent": 10.0}], name="a")
    b = ScriptedSource([{"temperatures_c": {"cpu": 99.0, "gpu": 70.0}, "cpu_percent": 90.0,
                         "battery_percent": 40.0}], name="b")
    bad = ScriptedSource([RuntimeError("x")], name="bad")
    m = MergedSource([a, bad, b])
    with caplog.at_level(logging.WARNING):
        r = m.read()
        m.read()
    assert r.cpu_percent == 10.0 and r.battery_percent == 40.0
    assert r.temperatures_c == {"cpu": 50.0, "gpu": 70.0} and r.temperature_c == 99.0
    assert "source:bad:error" in r.faults
    assert sum("bad" in rec.getMessage() for rec in caplog.records) == 1


# poller ---------------------------------------------------------------------------------------------------
class SlowSource:
    name = "slow"
    min_interval_s = 0.0

    def __init__(self, delay):
        self.delay, self.calls = delay, 0

    def read(self):
        self.calls += 1
        time.sleep(self.delay)
        return Readings(timestamp=time.monotonic(), cpu_percent=5.0)


def test_poller_rate_and_min_interval():
    src = ScriptedSource([{"cpu_percent": 1.0}], min_interval_s=0.1)
    with SensorPoller(src, rate_hz=100) as p:
        assert p.period == pytest.approx(0.1)
        time.sleep(0.45)
    assert 2 <= src.reads <= 7
    assert not p.running
    src = ScriptedSource([{"cpu_percent": 1.0}])
    p = SensorPoller(src, rate_hz=20).start()
    time.sleep(0.3)
    p.close()
    assert 3 <= src.reads <= 9 and p.latest().cpu_percent == 1.0


def test_latest_never_waits_on_a_slow_sensor():
    src = SlowSource(1.0)
    p = SensorPoller(src, rate_hz=2).start(wait=0)
    time.sleep(0.05)  # the thread is now inside the 1 s read
    t0 = time.perf_counter()
    for _ in range(1000):
        r = p.latest()
    dt = time.perf_counter() - t0
    assert dt < 0.05 and "source:pending" in r.faults
    p.close(timeout=3)
    assert not p.running and src.calls >= 1


def test_poller_faults_counted_and_logged_once(caplog):
    clock = ManualClock()
    src = ScriptedSource([{"temperature_c": 50.0}, RuntimeError("a"), RuntimeError("b"), None, None,
                          {"temperature_c": float("nan")}, {"temperature_c": float("nan")},
                          {"temperature_c": 51.0}], clock=clock)
    p = SensorPoller(src, rate_hz=2, clock=clock)
    with caplog.at_level(logging.WARNING):
        seen = []
        for _ in range(8):
            clock.advance(0.5)
            p.poll_once()
            seen.append(p.latest())
    assert seen[0].temperature_c == 50.0
    assert "source:error" in seen[1].faults and seen[1].temperature_c == 50.0  # last good values, tagged
    assert "source:none" in seen[3].faults
    assert "temperature_c:invalid" in seen[5].faults
    assert seen[-1].faults == () and seen[-1].temperature_c == 51.0
    assert p.faults["error:RuntimeError"] == 2 and p.faults["none"] == 2
    assert p.faults["temperature_c:invalid"] == 2
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == len(set(msgs)) == 3


def test_poller_staleness():
    clock = ManualClock()
    p = SensorPoller(ScriptedSource([Readings(timestamp=0.0, cpu_percent=1.0)]), rate_hz=2, clock=clock,
                     stale_after_s=2.0)
    p.poll_once()
    assert not p.stale
    clock.advance(5)
    p.poll_once()  # the source keeps returning the same old snapshot
    assert p.stale and p.age() == 5.0 and p.faults["stale"] >= 1
    st = p.status()
    assert st["stale"] and st["reads"] == 2 and json.dumps(st)


def test_poller_from_spec_and_close_joins():
    p = SensorPoller("none", rate_hz=50).start()
    assert p.running and isinstance(p.latest(), Readings)
    before = threading.active_count()
    p.close()
    assert not p.running and threading.active_count() <= before
    with pytest.raises(ValueError):
        SensorPoller("none", rate_hz=0)


# CLI ------------------------------------------------------------------------------------------------------
def test_cli_once_json(capsys):
    from adaptive_csp.cli import main

    assert main(["sensors", "--once", "--json", "--source", "none"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["policies"]) == {"performance", "powersave", "battery", "thermal", "latency", "balanced"}
    assert all(0 <= d["level"] <= d["of"] and d["reason"] for d in out["policies"].values())
    assert out["readings"]["battery_percent"] is None
    from adaptive_csp.models.pretrained import pretrained

    shipped = pretrained().levels
    view = shipped.view("ort", 1) if hasattr(shipped, "view") else shipped
    assert {d["of"] for d in out["policies"].values()} == {view.full}  # the shipped model's ladder, not 5 made up
    assert main(["sensors", "--once", "--json", "--source", "none", "--levels", "3"]) == 0
    assert {d["of"] for d in json.loads(capsys.readouterr().out)["policies"].values()} == {2}


def test_cli_text_and_errors(capsys):
    from adaptive_csp.cli import main

    assert main(["sensors", "--count", "2", "--rate", "50", "--source", "auto", "--policies", "thermal,latency"]) == 0
    out = capsys.readouterr().out
    assert out.count("adaptive-csp sensors") == 2 and "thermal" in out and "balanced" not in out
    assert "nan" not in out.lower()  # absent values print as "-", never as NaN
    assert main(["sensors", "--once", "--source", "bogus"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert main(["sensors", "--once", "--policies", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["sensors", "--rate", "0"])
    assert e.value.code == 2 and "must be > 0" in capsys.readouterr().err
