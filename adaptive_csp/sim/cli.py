"""``adaptive-csp simulate`` and ``adaptive-csp compare``."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["simulate_main", "compare_main", "markdown_table", "pivot_table", "default_policies"]

BASELINE_NAMES = ["static-max", "static-min", "ondemand", "unity"]


def _err(msg: str) -> int:
    print(f"adaptive-csp: {msg}", file=sys.stderr)
    return 2


def _load_ladder(path: str | None):
    from adaptive_csp.sim.simulate import resolve_ladder

    ladder = resolve_ladder(path)
    if path is None and not all(r.latency_ms for r in ladder.rungs):
        raise ValueError(
            "the shipped model's ladder has no measured batch-1 latencies (placeholder model?): "
            "run `adaptive-csp profile` or pass --ladder path.json (LevelLadder.to_json format)"
        )
    return ladder


def default_policies() -> list[str]:
    """The control package's presets (when available), then the four baselines."""
    try:
        from adaptive_csp.control import PRESETS

        names = [str(n) for n in PRESETS]
    except ImportError:
        names = []
    return [n for n in names if n not in BASELINE_NAMES] + BASELINE_NAMES


def _kv(items: list[str]) -> dict[str, Any]:
    from adaptive_csp.sim.sweep import parse_value

    out = {}
    for it in items:
        if "=" not in it:
            raise ValueError(f"--set expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def simulate_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="adaptive-csp simulate", description="Simulate one policy in one scenario."
    )
    ap.add_argument("--policy", default="static-max", help="preset name, policy TOML path, or a baseline")
    ap.add_argument("--scenario", default="factory", help="shipped scenario name or a TOML path")
    ap.add_argument("--ladder", help="LevelLadder JSON (default: the shipped model's measured ladder)")
    ap.add_argument("--device", help="override the scenario's device class")
    ap.add_argument("--seed", type=int, help="override the scenario's seed")
    ap.add_argument("--duration", type=float, help="override the scenario's duration (s)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="policy parameter")
    ap.add_argument("--plot", help="PNG path (default sim-POLICY-SCENARIO.png)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--json", help="write the summary as JSON here")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    from adaptive_csp.sim.scenario import ScenarioError
    from adaptive_csp.sim.simulate import simulate

    try:
        ladder = _load_ladder(a.ladder)
        overrides = _kv(a.set)
        r = simulate(a.policy, a.scenario, ladder=ladder, device=a.device, seed=a.seed, overrides=overrides,
                     progress=not a.quiet, duration_s=a.duration)  # fmt: skip
    except (ScenarioError, ValueError, RuntimeError, TypeError, KeyError) as e:
        return _err(str(e))
    print(r.format())
    if a.json:
        Path(a.json).write_text(json.dumps(r.summary(), indent=1, default=str))
    if not a.no_plot:
        from adaptive_csp.sim.plot import plot_result

        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{r.policy}-{r.scenario}")
        path = plot_result(r, a.plot or f"sim-{safe}.png")
        print(f"  plot               {path}")
    return 0


def _fmt_life(s: float | None, projected: bool) -> str:
    if s is None:
        return "mains"
    return f"{s / 3600:.2f} h" + ("*" if projected else "")


def _fmt_acc(a: float | None) -> str:
    return "n/a" if a is None else f"{100 * a:.2f}"


COLUMNS = [
    ("scenario", "scenario", str),
    ("policy", "label", str),
    ("battery life", None, None),
    ("s > T_crit", "time_above_tcrit_s", lambda v: f"{v:.0f}"),
    ("max °C", "max_temperature_c", lambda v: f"{v:.1f}"),
    ("p95 ms", "p95_latency_ms", lambda v: f"{v:.1f}" if math.isfinite(v) else "inf"),
    ("deadline ms", "deadline_ms", lambda v: f"{v:.0f}"),
    ("miss %", "deadline_miss_pct", lambda v: f"{v:.2f}"),
    ("1-s windows ok %", "windows_ok_pct", lambda v: f"{v:.2f}"),
    ("accuracy %", "mean_accuracy", _fmt_acc),
    ("switches", "level_switches", str),
    ("energy Wh", "energy_j", lambda v: f"{v / 3600:.2f}"),
]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """One row per (scenario, policy[params], seed) with the headline metrics."""
    keys = [(r["scenario"], r["label"]) for r in rows]
    cols = list(COLUMNS) + ([("seed", "seed", str)] if len(set(keys)) < len(keys) else [])
    lines = ["| " + " | ".join(c[0] for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = []
        for _, key, fmt in cols:
            if key is None:
                cells.append(_fmt_life(r["battery_life_s"], r["battery_life_projected"]))
            else:
                cells.append(fmt(r[key]))
        lines.append("| " + " | ".join(cells) + " |")
    if any(r["battery_life_projected"] for r in rows):
        lines.append("")
        lines.append("\\* projected from the drain rate: the battery did not empty within the scenario.")
    return "\n".join(lines)


def pivot_table(rows: list[dict[str, Any]], metric: str) -> str:
    """Policy rows × scenario columns for one summary field (the first seed's value per cell)."""
    if rows and metric not in rows[0]:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(rows[0])}")
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    cell: dict[tuple[str, str], Any] = {}
    for r in rows:
        cell.setdefault((r["label"], r["scenario"]), r[metric])

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}" if math.isfinite(v) else "inf"
        return str(v)

    lines = [f"| {metric} | " + " | ".join(scenarios) + " |", "|" + "---|" * (len(scenarios) + 1)]
    for lab in labels:
        lines.append(f"| {lab} | " + " | ".join(fmt(cell.get((lab, s))) for s in scenarios) + " |")
    return "\n".join(lines)


def compare_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="adaptive-csp compare", description="Policy x scenario comparison.")
    ap.add_argument("--policies", help="comma-separated (default: registered presets + the four baselines)")
    ap.add_argument("--scenarios", help="comma-separated names or TOML paths (default: all shipped)")
    ap.add_argument("--grid", action="append", default=[], metavar="[POLICY:]PARAM=V1,V2",
                    help="parameter grid for the policies (repeatable)")  # fmt: skip
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: each scenario's own)")
    ap.add_argument("--ladder", help="LevelLadder JSON (default: the shipped model's measured ladder)")
    ap.add_argument("--duration", type=float, help="override every scenario's duration (s)")
    ap.add_argument("--backend", choices=["local", "ray", "serial"], default="local")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--ray-address", help="join this Ray cluster (default: RAY_ADDRESS or a local Ray)")
    ap.add_argument("--csv", help="write every summary field as CSV here")
    ap.add_argument("--pivot", metavar="METRIC", help="also print policy x scenario for one summary field")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    from adaptive_csp.sim.scenario import ScenarioError, list_scenarios, load_scenario
    from adaptive_csp.sim.sweep import make_jobs, parse_grid, parse_value, run_jobs

    try:
        ladder = _load_ladder(a.ladder)
        policies = [p.strip() for p in a.policies.split(",")] if a.policies else default_policies()
        scenarios = [s.strip() for s in a.scenarios.split(",")] if a.scenarios else list_scenarios()
        for s in scenarios:
            load_scenario(s)  # fail early, naming the field
        seeds = [parse_value(s) for s in a.seeds.split(",")] if a.seeds else [None]
        jobs = make_jobs(policies, scenarios, parse_grid(a.grid), seeds, ladder, a.duration)
        rows = run_jobs(jobs, backend=a.backend, workers=a.workers, progress=not a.quiet,
                        ray_address=a.ray_address)  # fmt: skip
    except (ScenarioError, ValueError, RuntimeError, TypeError, KeyError) as e:
        return _err(str(e))
    print(markdown_table(rows))
    if a.pivot:
        try:
            print("\n" + pivot_table(rows, a.pivot))
        except ValueError as e:
            return _err(str(e))
    if a.csv:
        keys = list(rows[0].keys())
        with open(a.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            for r in rows:
                w.writerow({k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in r.items()})
        print(f"\nwrote {a.csv}")
    return 0
