"""``adaptive-csp compare``: a policy × scenario (× parameter grid × seed) comparison table."""

from __future__ import annotations

import argparse
import csv
import json

from pydantic import TypeAdapter

from adaptive_csp.commands.simulate import CLI_ERRORS, fail, load_ladder
from adaptive_csp.sim.report import default_policies, markdown_table, pivot_table
from adaptive_csp.sim.sweep import BACKENDS

__all__ = ["configure", "run"]

_SEEDS = TypeAdapter(list[int])


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def configure(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--policies", help="comma-separated (default: registered presets + the four baselines)")
    ap.add_argument("--scenarios", help="comma-separated names or TOML paths (default: all shipped)")
    ap.add_argument("--grid", action="append", default=[], metavar="[POLICY:]PARAM=V1,V2",
                    help="parameter grid for the policies (repeatable)")  # fmt: skip
    ap.add_argument("--seeds", default=None, help="comma-separated integer seeds (default: each scenario's own)")
    ap.add_argument("--ladder", help="LevelLadder JSON (default: the shipped model's measured ladder)")
    ap.add_argument("--duration", type=float, help="override every scenario's duration (s)")
    ap.add_argument("--backend", choices=BACKENDS, default="local", help="where the runs execute")
    ap.add_argument("--workers", type=int, default=None, help="parallel runs (default: CPU count)")
    ap.add_argument("--ray-address", help="join this Ray cluster (default: RAY_ADDRESS or a local Ray)")
    ap.add_argument("--csv", help="write every summary field as CSV here")
    ap.add_argument("--pivot", metavar="METRIC", help="also print policy x scenario for one summary field")
    ap.add_argument("--plot", metavar="PNG", help="write energy against accuracy per scenario here (extra plot)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--no-oracle", action="store_true",
                    help="skip the oracle and best-static rows and the gap columns (faster)")
    ap.add_argument("--oracle-at", default="balanced", metavar="POLICY",
                    help="the oracle and best-static rows run under this policy's energy or lifetime")


def _with_oracle(rows, scenarios, ladder, duration, reference):
    """Add the oracle's columns and rows (:func:`adaptive_csp.sim.regret.oracle_rows`)."""
    from adaptive_csp.sim.oracle import OracleProblem
    from adaptive_csp.sim.regret import oracle_rows
    from adaptive_csp.sim.scenario import load_scenario

    spec = {load_scenario(s).name: s for s in scenarios}
    problems = {}
    for r in rows:
        key = (r["scenario"], r["seed"])
        if key not in problems:
            problems[key] = OracleProblem(spec[r["scenario"]], ladder, seed=r["seed"], duration_s=duration)
    return oracle_rows(rows, problems, reference)


def run(a: argparse.Namespace) -> int:
    from adaptive_csp.sim.scenario import list_scenarios, load_scenario
    from adaptive_csp.sim.sweep import make_jobs, parse_grid, run_jobs

    try:
        ladder = load_ladder(a.ladder)
        policies = _names(a.policies) if a.policies else default_policies()
        scenarios = _names(a.scenarios) if a.scenarios else list_scenarios()
        for s in scenarios:
            load_scenario(s)  # fail early, naming the field
        seeds = _SEEDS.validate_python(_names(a.seeds)) if a.seeds else [None]
        jobs = make_jobs(policies, scenarios, parse_grid(a.grid), seeds, ladder, a.duration)
        rows = run_jobs(jobs, backend=a.backend, workers=a.workers, progress=not a.quiet,
                        ray_address=a.ray_address)  # fmt: skip
        if not a.no_oracle:
            rows = _with_oracle(rows, scenarios, ladder, a.duration, a.oracle_at)
        pivot = pivot_table(rows, a.pivot) if a.pivot else None
        if a.plot:
            from adaptive_csp.sim.plot import plot_comparison

            plot_comparison(rows, a.plot)
    except CLI_ERRORS as e:
        return fail(str(e))
    print(markdown_table(rows))
    if not a.no_oracle:
        print(f"\noracle, best-static: under {a.oracle_at}'s energy (its lifetime where its battery emptied). "
              "Gap columns: accuracy right and on time; the oracle's accuracy at the policy's energy minus "
              "the policy's (pt); the energy (or lifetime) the oracle saves at the policy's accuracy (%); "
              "regret = answers lost against the oracle at equal energy.")
    if pivot:
        print("\n" + pivot)
    if a.csv:
        with open(a.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
            w.writeheader()
            for r in rows:
                w.writerow({k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in r.items()})
        print(f"\nwrote {a.csv}")
    if a.plot:
        print(f"plot: {a.plot}")
    return 0
