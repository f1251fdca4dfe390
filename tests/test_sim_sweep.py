"""Grids on the local process pool and on Ray; the CLI entry points (issue #6)."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest

from adaptive_csp.cli import main
from adaptive_csp.sim.sweep import make_jobs, parse_grid, parse_value, run_jobs
from tests.conftest import SIM_LADDER as LADDER


def small_jobs():
    grid = parse_grid(["ondemand:up_threshold=70,90"])
    return make_jobs(["static-min", "ondemand"], ["factory", "drone"], grid, seeds=[1, 2], ladder=LADDER,
                     duration_s=120.0)  # fmt: skip


def test_grid_expansion():
    jobs = small_jobs()
    assert len(jobs) == 2 * (1 + 2) * 2
    assert {j.label for j in jobs} == {"static-min", "ondemand[up_threshold=70]", "ondemand[up_threshold=90]"}
    with pytest.raises(ValueError):
        parse_grid(["nonsense"])


@pytest.mark.parametrize("text,value", [("70", 70), (" 0.5 ", 0.5), ("1e3", 1000.0), ("true", True),
                                        ("null", None), ('"70"', "70"), ("fast", "fast"), ("-3", -3)])
def test_command_line_values_are_json_scalars(text, value):
    got = parse_value(text)
    assert got == value and type(got) is type(value)


def test_compare_cli_names_a_bad_seed_or_setting(tmp_path, capsys):
    lad = tmp_path / "ladder.json"
    lad.write_text(LADDER.to_json())
    base = ["--ladder", str(lad), "--scenarios", "factory", "--policies", "static-min", "--quiet"]
    assert main(["compare", *base, "--seeds", "1,x"]) == 2
    assert "valid integer" in capsys.readouterr().err
    assert main(["simulate", "--policy", "ondemand", "--set", "up_threshold=500", "--ladder", str(lad),
                 "--no-plot", "--quiet"]) == 2  # fmt: skip
    assert "up_threshold" in capsys.readouterr().err


def test_local_process_pool_matches_serial():
    jobs = small_jobs()
    serial = run_jobs(jobs, backend="serial")
    local = run_jobs(jobs, backend="local", workers=2)
    assert serial == local
    assert [r["label"] for r in serial] == [j.label for j in jobs]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (extra 'sweep')")
def test_ray_backend_matches_local():
    jobs = small_jobs()[:6]
    local = run_jobs(jobs, backend="local", workers=2)
    ray_rows = run_jobs(jobs, backend="ray", workers=2)
    assert ray_rows == local


def test_simulate_cli(tmp_path, capsys):
    lad = tmp_path / "ladder.json"
    lad.write_text(LADDER.to_json())
    png = tmp_path / "run.png"
    js = tmp_path / "run.json"
    rc = main(["simulate", "--policy", "unity", "--scenario", "drone", "--ladder", str(lad), "--duration", "600",
                        "--quiet", "--plot", str(png), "--json", str(js)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    for word in ("battery lifetime", "time above T_crit", "p95 latency", "deadline misses", "mean accuracy",
                 "level switches", "energy"):  # fmt: skip
        assert word in out
    assert png.stat().st_size > 10_000
    assert json.loads(js.read_text())["policy"] == "unity"


def test_simulate_cli_errors_name_the_problem(tmp_path, capsys):
    lad = tmp_path / "ladder.json"
    lad.write_text(LADDER.to_json())
    bad = tmp_path / "bad.toml"
    bad.write_text('name="b"\ndevice="cpu"\nduration_s=-1\ndeadline_ms=33\n[frames]\nvalue=30\n')
    assert main(["simulate", "--scenario", str(bad), "--ladder", str(lad), "--no-plot", "--quiet"]) == 2
    assert "duration_s" in capsys.readouterr().err
    assert main(["simulate", "--policy", "no-such-policy", "--ladder", str(lad), "--no-plot", "--quiet"]) == 2


def test_compare_cli_table_and_csv(tmp_path, capsys):
    lad = tmp_path / "ladder.json"
    lad.write_text(LADDER.to_json())
    out_csv = tmp_path / "c.csv"
    rc = main(["compare", "--policies", "static-max,static-min", "--scenarios", "hot-car,factory", "--ladder",
                       str(lad), "--duration", "300", "--backend", "serial", "--csv", str(out_csv), "--quiet",
                       "--pivot", "time_above_tcrit_s"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "| scenario | policy |" in out and out.count("\n| hot-car |") == 4  # + oracle, best-static
    assert "| hot-car | oracle |" in out and "| factory | best-static |" in out
    assert "acc gap to oracle pt" in out
    assert "| time_above_tcrit_s | hot-car | factory |" in out
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 8 and {"policy", "scenario", "energy_j", "p95_latency_ms", "oracle_gap_pt"} <= set(rows[0])
    for r in rows:
        if r["label"] in ("static-max", "static-min"):  # the oracle is at least as accurate at equal energy
            assert float(r["oracle_gap_pt"]) >= -1e-6


def test_compare_cli_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    lad = tmp_path / "ladder.json"
    lad.write_text(LADDER.to_json())
    png = tmp_path / "out" / "compare.png"
    rc = main(["compare", "--policies", "static-max,static-min", "--scenarios", "hot-car", "--ladder", str(lad),
               "--duration", "120", "--backend", "serial", "--quiet", "--no-oracle", "--plot", str(png)])
    assert rc == 0 and png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {png}" in capsys.readouterr().out
