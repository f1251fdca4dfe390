"""The demo (adaptive_csp.apps): its summary numbers come from the run, its options work, the conveyor."""

from __future__ import annotations

import json
import math
import re
import zlib

import numpy as np
import pytest

from adaptive_csp.apps.conveyor import Conveyor
from adaptive_csp.apps.live import LiveView, Status, level_bar
from adaptive_csp.apps.story import CapWatch, cause_of, demo_belt
from adaptive_csp.cli import main as cli_main
from adaptive_csp.data.fashion_mnist import load_sample
from adaptive_csp.runtime.preprocess import HAVE_CV2
from adaptive_csp.sim import load_scenario


def _num(pattern: str, text: str) -> list[float]:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in output"
    return [float(x) for x in m.groups()]


def test_short_mode_summary_numbers_come_from_the_run(tmp_path, capsys):
    rec_p, png, tel = tmp_path / "run.json", tmp_path / "out" / "demo.png", tmp_path / "tel.jsonl"
    n = 60
    assert cli_main(["demo", "--frames", str(n), "--engine", "torch", "--record", str(rec_p), "--plot", str(png),
                     "--telemetry", str(tel)]) == 0
    out = capsys.readouterr().out
    rec = json.loads(rec_p.read_text())
    a, s = rec["arms"]["adaptive"], rec["arms"]["static-max"]
    scn = load_scenario("conveyor")
    _check_same_frames(rec, n, scn)
    for arm, name in ((a, "adaptive"), (s, "static-max")):
        _check_arm(rec, arm, name, scn)
    assert set(s["level"]) == {max(s["level"])} and min(a["level"]) < max(s["level"])
    _check_printed_summary(rec, out)
    # each printed cap change names its reason; the record's changes are the cap trace's changes
    caps = a["cap"]
    assert len(rec["changes"]) == sum(c0 != c1 for c0, c1 in zip(caps, caps[1:])) > 0
    assert out.count("level cap ") == len(rec["changes"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert len(tel.read_text().splitlines()) == n


def _check_same_frames(rec: dict, n: int, scn) -> None:
    """The two arms saw the same frames: the conveyor's, with the belt standing where the scenario says."""
    a, s = rec["arms"]["adaptive"], rec["arms"]["static-max"]
    assert a["digest"] == s["digest"] and len(a["digest"]) == n
    busy = rec["belt_busy"]
    assert not all(busy) and any(busy)  # the default story has an idle belt
    frames = list(demo_belt(0).frames(n, busy=busy.__getitem__))
    assert [zlib.crc32(f.image.tobytes()) for f in frames] == a["digest"]
    assert [f.label for f in frames] == rec["label"] and [f.scored for f in frames] == rec["scored"]
    assert [f.item for f in frames] == rec["item"]
    assert rec["dt"] == pytest.approx(scn.duration_s / n)


def _check_arm(rec: dict, arm: dict, name: str, scn) -> None:
    """One arm's summary numbers recomputed from its per-step record."""
    sm = rec["summary"][name]
    # energy = the integral of the (piecewise-constant) power trace
    energy = sum(p * dt for p, dt in zip(arm["power_w"], arm["ran_s"], strict=True))
    assert sm["energy_j"] == pytest.approx(energy, rel=1e-9) and energy > 0
    assert all(dt == pytest.approx(rec["dt"]) for dt in arm["ran_s"])  # nobody's battery emptied
    # on time: the share of the step's frames answered within the deadline, from the world's accounting
    for x, y, sk, lt, ot, ms in zip(arm["arrived"], arm["processed"], arm["skipped"], arm["late"],
                                    arm["on_time"], arm["service_ms"], strict=True):
        in_time = ms <= scn.deadline_ms
        assert lt == (0 if in_time else y) or (in_time and lt == 1)  # 1: the first frame after a switch
        assert ot == pytest.approx((y - lt + (sk if in_time else 0)) / x) and 0 <= ot <= 1
    _check_arm_scores(rec, arm, name)
    # deadline misses from the world's frame accounting
    missed = sum(x - y - k for x, y, k in zip(arm["arrived"], arm["processed"], arm["skipped"], strict=True))
    missed += sum(arm["late"])
    assert sm["deadline_miss_pct"] == pytest.approx(100 * missed / sum(arm["arrived"]))
    # battery: the drain is the energy (coulomb counting, Peukert 1 in this scenario)
    cap_j = scn.battery.capacity_wh * 3600
    assert sm["battery_start_pct"] - sm["battery_end_pct"] == pytest.approx(100 * energy / cap_j, rel=1e-6)


def _check_arm_scores(rec: dict, arm: dict, name: str) -> None:
    """The two figures counted from the predictions on scored frames."""
    sm = rec["summary"][name]
    scored = [i for i, sc in enumerate(rec["scored"]) if sc]
    assert sm["scored"] == len(scored) > 0
    assert arm["correct"] == [bool(sc and p == lb) for sc, p, lb in zip(rec["scored"], arm["pred"], rec["label"],
                                                                        strict=True)]
    right_in_time = sum(arm["correct"][i] * arm["on_time"][i] for i in scored)
    answered = sum(arm["on_time"][i] for i in scored)
    score = rec["scores"][name]
    assert sm["right_on_time"] == pytest.approx(right_in_time / len(scored))
    assert score["on_time"]["estimate"] == pytest.approx(right_in_time / len(scored))
    assert score["when_answered"]["estimate"] == pytest.approx(right_in_time / answered)
    assert score["items"] == len({rec["item"][i] for i in scored}) and score["frames"] == len(scored)
    for f in ("on_time", "when_answered"):
        assert score[f]["lo"] <= score[f]["estimate"] <= score[f]["hi"] and score[f]["resamples"] >= 1000


def _check_printed_summary(rec: dict, out: str) -> None:
    """The printed summary and the one line are the record's numbers; hindsight replays match the arms."""
    summ = rec["summary"]
    ea, es = _num(r"energy\s+([\d.]+) Wh\s+([\d.]+) Wh", out)
    assert ea == pytest.approx(summ["adaptive"]["energy_j"] / 3600, abs=0.006)
    assert es == pytest.approx(summ["static-max"]["energy_j"] / 3600, abs=0.006)
    x, y, z, zlo, zhi = _num(r"adaptation bought: ([-\d.]+) % less energy, ([-\d.]+) % longer battery, "
                             r"([-+\d.]+) \[([-+\d.]+), ([-+\d.]+)\] points right and on time", out)
    assert x == pytest.approx(100 * (1 - summ["adaptive"]["energy_j"] / summ["static-max"]["energy_j"]), abs=0.06)
    la, ls = summ["adaptive"]["battery_life_s"], summ["static-max"]["battery_life_s"]
    assert y == pytest.approx(100 * (la / ls - 1), abs=0.06)
    acc_a, acc_s = summ["adaptive"]["right_on_time"], summ["static-max"]["right_on_time"]
    assert z == pytest.approx(100 * (acc_a - acc_s), abs=0.06)
    diff = rec["scores"]["difference"]["on_time"]
    assert (zlo, zhi) == pytest.approx((100 * diff["lo"], 100 * diff["hi"]), abs=0.06)
    # hindsight: each arm's schedule replayed through the simulator is the demo's own world (same energy)
    hs = rec["hindsight"]
    for name in ("adaptive", "static-max"):
        assert hs[name]["energy_j"] == pytest.approx(summ[name]["energy_j"], rel=1e-9)
    if "oracle" in hs:  # an install with the simulator's oracle: at the policy's energy, printed beside the arms
        assert hs["energy_budget_j"] == pytest.approx(summ["adaptive"]["energy_j"])
        assert f"{100 * hs['oracle']['accuracy']:.2f} %" in out
    for name in ("adaptive", "static-max"):
        iv = rec["scores"][name]["on_time"]
        assert f"{100 * iv['estimate']:.1f} % [{100 * iv['lo']:.1f}, {100 * iv['hi']:.1f}]" in out


def test_policy_scenario_options_and_bad_input(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["demo", "--frames", "12", "--policy", "battery", "--scenario", "hot-car", "--engine", "torch",
                     "--no-plot", "--no-content", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "policy battery vs static-max" in out and "scenario hot-car" in out
    assert "battery" in out and "mains" in out  # hot-car runs on car power: no battery to drain
    assert not list(tmp_path.iterdir())  # --no-plot writes nothing
    assert cli_main(["demo", "--frames", "5", "--policy", "no-such-policy", "--no-plot", "--quiet"]) == 2
    assert cli_main(["demo", "--frames", "5", "--scenario", "no-such-scenario", "--no-plot", "--quiet"]) == 2
    assert cli_main(["demo", "--frames", "1", "--no-plot", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no-such-policy" in err and "no-such-scenario" in err and "frames must be" in err


def _belt_video(path, n=15):
    import cv2

    smp = load_sample()
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (140, 140))
    for fr in Conveyor(smp.images.numpy()[:20], smp.labels.numpy()[:20]).frames(n):
        w.write(fr.image)
    w.release()


@pytest.mark.skipif(not HAVE_CV2, reason="needs opencv")
def test_demo_on_a_video_file_and_an_image_folder(tmp_path, capsys):
    import cv2

    path = tmp_path / "belt.mp4"
    _belt_video(path)
    png = tmp_path / "video.png"
    assert cli_main(["demo", "--source", str(path), "--engine", "torch", "--plot", str(png), "--quiet"]) == 0
    out = capsys.readouterr().out
    ran, skipped = _num(r": (\d+) frames, skipped (\d+),", out)  # a frame interval skips some, answered
    assert ran + skipped == 15 and ran >= 1 and png.exists()  # by the last result
    folder = tmp_path / "imgs"
    folder.mkdir()
    smp = load_sample()
    for i, fr in enumerate(Conveyor(smp.images.numpy()[:5], smp.labels.numpy()[:5]).frames(7)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), fr.image)
    (folder / "notes.txt").write_text("not an image")
    assert cli_main(["demo", "--source", str(folder), "--engine", "torch", "--no-plot", "--quiet"]) == 0
    ran, skipped = _num(r": (\d+) frames, skipped (\d+),", capsys.readouterr().out)
    assert ran + skipped == 7
    assert cli_main(["demo", "--source", str(folder), "--engine", "torch", "--no-plot", "--quiet",
                     "--resize", "center_crop", "--roi", "0", "0", "20", "20"]) == 0  # shape options reach the runner
    capsys.readouterr()
    assert cli_main(["demo", "--source", str(tmp_path / "missing.mp4"), "--no-plot"]) == 2
    (tmp_path / "empty").mkdir()
    assert cli_main(["demo", "--source", str(tmp_path / "empty"), "--no-plot", "--quiet"]) == 2


def test_conveyor_frames_truth_and_idle_belt():
    s = load_sample()
    belt = Conveyor(s.images.numpy()[:50], s.labels.numpy()[:50], seed=3)
    frames = list(belt.frames(120))
    assert len(frames) == 120
    assert all(f.image.shape == (140, 140, 3) and f.image.dtype == np.uint8 for f in frames)
    gaps = [f for f in frames if f.phase == "gap"]
    dwell = [f for f in frames if f.scored]
    assert gaps and dwell and all(f.label is None for f in gaps)
    assert all(f.phase == "dwell" and f.label == int(s.labels[belt.order[f.item]]) for f in dwell)
    # dark belt, light garment: the resting item is brighter than bare belt
    assert np.mean([f.image.mean() for f in dwell]) > 2 * np.mean([f.image.mean() for f in gaps])
    # a standing belt: no item enters while busy() is False; the count is still honoured
    busy = [i < 40 or i >= 80 for i in range(120)]
    frames = list(Conveyor(s.images.numpy()[:50], s.labels.numpy()[:50], seed=3).frames(120, busy=busy.__getitem__))
    assert len(frames) == 120
    idle = [i for i, f in enumerate(frames) if f.phase == "idle"]
    assert idle and all(40 <= i < 80 for i in idle) and all(frames[i].label is None for i in idle)
    assert any(f.scored for f in frames[80:])


def test_cap_changes_name_their_cause():
    w = CapWatch()
    assert w.note(0.0, 10, "unconstrained") is None
    c = w.note(1.0, 8, "cooldown; contention: others 90% >= 85%")
    assert (c.old, c.new, c.cause) == (10, 8, "contention")
    c = w.note(2.0, 7, "content: empty scene (policy cap 7: battery: 25% < 30%)")
    assert c.cause == "battery" and c.reason == "battery: 25% < 30%"
    c = w.note(3.0, 9, "unconstrained")  # going up: the constraint that eased
    assert c.cause == "battery"
    assert w.note(4.0, 9, "unconstrained") is None
    assert cause_of("recovering; thermal: 81C") == "thermal" and cause_of("unconstrained") == "unconstrained"


def test_live_view_plain_lines_without_a_terminal(capsys):
    v = LiveView("t", total=20)
    assert not v.panel  # capsys is not a terminal
    for k in range(1, 21):
        v.update(Status(k, 20, 3, 5, 10, "battery: 25% < 30%", 50.0, 25.0, 60.0, 85.0, 40.0, 0.9, None, "0:01"))
    v.event("an event")
    v.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 11 and lines[-1] == "an event"  # a line per tenth of the run, plus the event
    assert lines[-2].startswith("[20/20]")
    assert "level 3/10 (cap 5)" in lines[0] and "battery 25%" in lines[0] and "acc 90%" in lines[0]
    assert level_bar(3, 5, 10, width=10) == "███▒▒·····"
    assert not math.isnan(Status(1, None, 0, 0, 0, "", 1.0).fps)


def test_an_arm_whose_battery_empties_stops(tmp_path, capsys):
    from importlib import resources

    text = (resources.files("adaptive_csp") / "scenarios" / "conveyor.toml").read_text()
    assert "capacity_wh = 55.0" in text
    scn = tmp_path / "small.toml"
    scn.write_text(text.replace("capacity_wh = 55.0", "capacity_wh = 8.0"))  # static-max drains ~18 Wh in 2 h
    rec_p = tmp_path / "run.json"
    assert cli_main(["demo", "--scenario", str(scn), "--frames", "40", "--engine", "torch", "--no-plot", "--quiet",
                     "--record", str(rec_p)]) == 0
    out = capsys.readouterr().out
    rec = json.loads(rec_p.read_text())
    s = rec["arms"]["static-max"]
    dead = [i for i, lv in enumerate(s["level"]) if lv < 0]
    assert dead and dead == list(range(dead[0], 40))  # once empty, it stays off
    k = dead[0] - 1
    assert 0 < s["ran_s"][k] < rec["dt"] and all(p == 0 for p in s["power_w"][dead[0]:])
    sm = rec["summary"]["static-max"]
    assert sm["battery_end_pct"] == 0 and sm["battery_empty_at_s"] == pytest.approx(rec["t"][k] + s["ran_s"][k])
    assert sm["energy_j"] == pytest.approx(sum(p * t for p, t in zip(s["power_w"], s["ran_s"], strict=True)))
    assert not any(s["correct"][i] for i in dead)  # a dead camera classifies nothing
    assert "static-max: battery empty after" in out


def test_a_ladder_without_latencies_is_measured_for_the_simulated_device():
    from dataclasses import replace

    from adaptive_csp.apps.story import _with_latencies
    from adaptive_csp.engines import make_engine
    from adaptive_csp.levels import LevelLadder
    from adaptive_csp.models.pretrained import pretrained

    m = pretrained()
    shipped = m.levels
    m.levels = LevelLadder(replace(r, latency_ms=None if i % 2 else r.latency_ms) for i, r in enumerate(shipped.rungs))
    lad = _with_latencies(make_engine(m, "torch"), m)
    assert [r.level for r in lad.rungs] == [r.level for r in shipped.rungs]
    assert all(r.latency_ms > 0 for r in lad.rungs)
    assert all(a.latency_ms == b.latency_ms for i, (a, b) in enumerate(zip(lad.rungs, shipped.rungs)) if not i % 2)
