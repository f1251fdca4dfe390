"""Every shipped policy against the clairvoyant oracle and the best static level (issue #19).  Usage::

    python benchmarks/oracle.py [--scenarios conveyor,doorbell,drone,factory,hot-car] [--policies ...]
                                [--workers 2] [--grid-c 0.25] [--dp-step 10] [--ladder path.json]

Per scenario and policy (``policies/*.toml``): the policy's accuracy right and on time, energy (or battery
lifetime), misses and seconds above the scored limit; the oracle at the policy's energy (on an emptied
battery: lasting as long) and its dual bound; the accuracy gap (points); the oracle's saving at the
policy's accuracy (energy %, or lifetime % on an emptied battery); regret (answers lost).  Then the
``oracle`` and ``best-static`` rows at balanced's budget, and the issue's targets marked met / missed:

  * balanced within 0.2 points of the oracle at equal energy, and within 3 % of its energy (lifetime where
    the battery emptied) at equal accuracy, in every scenario;
  * balanced: no more deadline misses than the oracle plus 0.5 % of frames;
  * balanced: 0 s above the scored limit wherever the oracle has 0;
  * battery on the drone within 3 % of the oracle's lifetime at equal accuracy.

Scenarios run in parallel (``--workers``); the DP's grid (``--grid-c`` °C, ``--dp-step`` s) is coarser
than the library default to keep the run to minutes on two cores.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SCENARIOS = ("conveyor", "doorbell", "drone", "factory", "hot-car")
ORDER = ("conveyor", "factory", "drone", "doorbell", "hot-car")  # cheapest first
POLICY_DIR = Path(__file__).resolve().parents[1] / "policies"


def shipped_policies() -> list[str]:
    return sorted(p.stem for p in POLICY_DIR.glob("*.toml"))


def run_scenario(args: tuple) -> list[dict]:
    """One scenario: every policy simulated, then its gaps to the oracle; the oracle/best-static rows."""
    scenario, policies, ladder_json, grid_c, dp_step = args
    from adaptive_csp.levels import LevelLadder
    from adaptive_csp.sim import simulate
    from adaptive_csp.sim.oracle import OracleProblem
    from adaptive_csp.sim.regret import oracle_rows

    ladder = LevelLadder.from_json(ladder_json)
    t0 = time.perf_counter()
    prob = OracleProblem(scenario, ladder, grid_c=grid_c, dp_step_s=dp_step)
    rows = []
    for pol in policies:
        try:
            d = simulate(pol, scenario, ladder=ladder, record=False).summary()
        except ValueError as e:  # a preset that does not build: say so, keep the rest
            print(f"   {scenario}: policy {pol!r} skipped: {str(e).splitlines()[0]}", flush=True)
            continue
        d.update(label=pol, params={})
        rows.append(d)
    out = oracle_rows(rows, {(rows[0]["scenario"], rows[0]["seed"]): prob}, "balanced")
    for r in out:
        r["_seconds"] = time.perf_counter() - t0
        r["_method"] = "dp" if prob.heat else "per-tick"
    return out


def _f(v, fmt: str, none: str = "-") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    return format(v, fmt)


def table(rows: list[dict]) -> str:
    head = ("| scenario | policy | right & on time % | energy Wh | battery life h | misses | s > limit | "
            "gap basis | oracle at equal energy % | oracle dual bound % | accuracy gap pt | "
            "oracle saving at equal accuracy % | regret (answers) | oracle misses | oracle s > limit |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        oracle_acc = None if r.get("oracle_gap_pt") is None else 100 * r["on_time_accuracy"] + r["oracle_gap_pt"]
        life = r["battery_life_s"] / 3600 if r.get("battery_life_s") else None
        proj = "*" if r.get("battery_life_projected") and life else ""
        lines.append(
            f"| {r['scenario']} | {r['label']} | {_f(100 * r['on_time_accuracy'], '.2f')} | "
            f"{r['energy_j'] / 3600:.2f} | {_f(life, '.2f', 'mains')}{proj} | {r['deadline_misses']} | "
            f"{r['time_above_tcrit_s']:.0f} | {r.get('gap_basis') or '-'} | {_f(oracle_acc, '.2f')} | "
            f"{_f(r.get('oracle_dual_pt'), '.2f')} | {_f(r.get('oracle_gap_pt'), '+.2f')} | "
            f"{_f(r.get('oracle_saving_pct'), '+.1f')} | {_f(r.get('regret'), '.0f')} | "
            f"{_f(r.get('oracle_misses'), 'd')} | {_f(r.get('oracle_s_above'), '.0f')} |"
        )
    return "\n".join(lines)


def targets(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    out = []
    by = {(r["scenario"], r["label"]): r for r in rows}
    for scn in dict.fromkeys(r["scenario"] for r in rows):
        b = by.get((scn, "balanced"))
        if b is None or b.get("oracle_gap_pt") is None:
            continue
        gap, save = b["oracle_gap_pt"], b["oracle_saving_pct"]
        what = "lifetime" if b["gap_basis"] == "lifetime" else "energy"
        out.append((f"{scn}: balanced within 0.2 pt of the oracle at equal {what}", gap <= 0.2, f"{gap:+.2f} pt"))
        ok = None if save is None or math.isnan(save) else save <= 3.0
        out.append((f"{scn}: balanced within 3 % of the oracle's {what} at equal accuracy", ok,
                    "n/a" if ok is None else f"{save:+.1f} %"))
        allowed = b["oracle_misses"] + 0.005 * b["frames_arrived"]
        out.append((f"{scn}: balanced misses <= oracle + 0.5 % of frames", b["deadline_misses"] <= allowed,
                    f"{b['deadline_misses']} vs {b['oracle_misses']} + {0.005 * b['frames_arrived']:.0f}"))
        if b["oracle_s_above"] == 0:
            out.append((f"{scn}: balanced 0 s above the limit (oracle 0 s)", b["time_above_tcrit_s"] == 0,
                        f"{b['time_above_tcrit_s']:.0f} s"))
    bat = by.get(("drone", "battery"))
    if bat is not None and bat.get("oracle_saving_pct") is not None:
        s = bat["oracle_saving_pct"]
        out.append(("drone: battery within 3 % of the oracle's lifetime at equal accuracy",
                    None if math.isnan(s) else s <= 3.0, f"{s:+.1f} % ({bat['gap_basis']})"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--policies", default=None, help="default: every policies/*.toml preset")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--grid-c", type=float, default=0.25, help="DP temperature step (°C)")
    ap.add_argument("--dp-step", type=float, default=10.0, help="DP stage length (s)")
    ap.add_argument("--ladder")
    a = ap.parse_args()
    from sim import pick_ladder

    ladder, label = pick_ladder(a.ladder)
    policies = a.policies.split(",") if a.policies else shipped_policies()
    if "balanced" not in policies:
        policies.insert(0, "balanced")
    scenarios = a.scenarios.split(",")
    t0 = time.perf_counter()
    order = sorted(scenarios, key=lambda s: ORDER.index(s) if s in ORDER else len(ORDER))
    jobs = [(s, policies, ladder.to_json(), a.grid_c, a.dp_step) for s in order]
    rows = []
    with ProcessPoolExecutor(max_workers=max(1, min(a.workers, len(jobs)))) as ex:
        for fut in as_completed([ex.submit(run_scenario, j) for j in jobs]):
            block = fut.result()
            rows += block
            print(f"-- {block[0]['scenario']} done after {time.perf_counter() - t0:.0f} s", flush=True)
            print(table(block), flush=True)
    rows.sort(key=lambda r: scenarios.index(r["scenario"]))
    print(f"\nLadder: {label}.  Oracle: Lagrangian + per-tick / DP (grid {a.grid_c} °C, stages {a.dp_step} s); "
          f"every number from a replay through simulate().  {time.perf_counter() - t0:.0f} s wall, "
          f"{a.workers} worker(s).")
    secs = {r["scenario"]: (r["_seconds"], r["_method"]) for r in rows}
    print("per scenario: " + ", ".join(f"{k} {v[1]} {v[0]:.0f} s" for k, v in secs.items()))
    print()
    print(table(rows))
    print("\noracle / best-static rows: under balanced's energy (its lifetime where its battery emptied). "
          "* battery life projected from the drain (the pack did not empty).")
    print("\n| target | met | value |\n|---|---|---|")
    for name, ok, val in targets(rows):
        print(f"| {name} | {'met' if ok else ('n/a' if ok is None else 'MISSED')} | {val} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
