"""How far each policy is from the clairvoyant oracle: the three columns of ``adaptive-csp compare``.

For a policy's run (a summary dict of :meth:`SimResult.summary`):

* ``oracle_gap_pt`` — accuracy gap at equal energy: the oracle's accuracy (right and on time) under the
  policy's energy, minus the policy's, in points.  On a battery that emptied during the run, "equal
  energy" is "a battery lasting at least as long" (``min_lifetime_s``).
* ``oracle_saving_pct`` — energy (or lifetime) gap at equal accuracy: the least energy at which the oracle
  reaches the policy's accuracy, found by bisection along its Lagrangian frontier, as a saving in % of the
  policy's energy; on an emptied battery, how much longer (%) the oracle lasts at that accuracy.
* ``regret`` — right-and-on-time answers the policy lost against the oracle at equal energy (a count:
  ``oracle_gap_pt / 100 × frames arrived``).
"""

from __future__ import annotations

from typing import Any

from adaptive_csp.sim.oracle import OracleProblem, OracleResult

__all__ = ["lifetime_mode", "gaps", "oracle_rows", "GAP_KEYS"]

GAP_KEYS = ("oracle_gap_pt", "oracle_saving_pct", "regret", "gap_basis")


def lifetime_mode(prob: OracleProblem, row: dict[str, Any]) -> bool:
    """Compare lifetimes (not energy) when the policy's battery emptied and the pack never met a charger."""
    bs = prob.scn.battery
    return bool(bs is not None and not bs.plugged and not bs.events and row.get("battery_life_s")
                and not row.get("battery_life_projected"))  # fmt: skip


def _at(prob: OracleProblem, row: dict[str, Any], life: bool, static: bool = False) -> OracleResult:
    kw = {"min_lifetime_s": row["battery_life_s"]} if life else {"energy_budget_j": row["energy_j"]}
    return prob.best_static(**kw) if static else prob.solve(**kw)


def gaps(prob: OracleProblem, row: dict[str, Any]) -> dict[str, Any]:
    """The three columns for one policy run on ``prob``'s scenario (see the module docstring)."""
    acc = row.get("on_time_accuracy")
    if acc is None:
        return dict.fromkeys(GAP_KEYS)
    life = lifetime_mode(prob, row)
    o = _at(prob, row, life)
    same = prob.at_accuracy(acc, lifetime=life)
    if life:
        saving = 100.0 * ((same.lifetime_s or 0.0) - row["battery_life_s"]) / row["battery_life_s"]
    else:
        saving = 100.0 * (row["energy_j"] - same.energy_j) / row["energy_j"] if row["energy_j"] else 0.0
    if same.accuracy < acc - 1e-9:  # the oracle cannot reach it (its accuracy ceiling is lower)
        saving = float("nan")
    return {"oracle_gap_pt": 100.0 * (o.accuracy - acc), "oracle_saving_pct": saving,
            "regret": (o.accuracy - acc) * row["frames_arrived"], "gap_basis": "lifetime" if life else "energy",
            "oracle_misses": o.misses, "oracle_s_above": o.seconds_above_limit,
            "oracle_dual_pt": None if o.dual_bound is None else 100.0 * o.dual_bound}  # fmt: skip


def _row(res: OracleResult, like: dict[str, Any], label: str) -> dict[str, Any]:
    d = res.sim.summary() if res.sim is not None else {}
    d.update(label=label, params={}, scenario=like["scenario"], seed=like["seed"])
    d.update(dict.fromkeys(GAP_KEYS))
    return d


def oracle_rows(rows: list[dict[str, Any]], problems: dict[tuple[str, int], OracleProblem],
                reference: str = "balanced") -> list[dict[str, Any]]:  # fmt: skip
    """``rows`` with the gap columns filled, and after each (scenario, seed) block an ``oracle`` and a
    ``best-static`` row under the reference policy's energy (or lifetime; the first row when the reference
    did not run)."""
    out: list[dict[str, Any]] = []
    blocks: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        blocks.setdefault((r["scenario"], r["seed"]), []).append(r)
    for key, block in blocks.items():
        prob = problems[key]
        for r in block:
            out.append({**r, **gaps(prob, r)})
        ref = next((r for r in block if r["label"] == reference), block[0])
        life = lifetime_mode(prob, ref)
        out.append(_row(_at(prob, ref, life), ref, "oracle"))
        out.append(_row(_at(prob, ref, life, static=True), ref, "best-static"))
    return out
