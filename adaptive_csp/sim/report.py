"""Tables of simulation summaries: the comparison table, a pivot on one metric, the default policy list."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["markdown_table", "pivot_table", "default_policies", "COLUMNS"]


def default_policies() -> list[str]:
    """The control package's presets, then the baselines (static-max, static-min, ondemand, unity)."""
    from adaptive_csp.control import PRESETS
    from adaptive_csp.control.baselines import BASELINES

    return [n for n in PRESETS if n not in BASELINES] + list(BASELINES)


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


def _num(digits: int):
    return lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.{digits}f}"


#: the oracle columns (``adaptive_csp.sim.regret``), shown when the rows carry them
GAP_COLUMNS = [
    ("right & on time %", "on_time_accuracy", _fmt_acc),
    ("acc gap to oracle pt", "oracle_gap_pt", _num(2)),
    ("oracle saving at equal acc %", "oracle_saving_pct", _num(1)),
    ("regret (answers)", "regret", lambda v: "n/a" if v is None else f"{v:.0f}"),
]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """One row per (scenario, policy[params], seed) with the headline metrics (and the oracle's columns
    when the rows carry them: :func:`adaptive_csp.sim.regret.oracle_rows`)."""
    keys = [(r["scenario"], r["label"]) for r in rows]
    cols = list(COLUMNS) + ([("seed", "seed", str)] if len(set(keys)) < len(keys) else [])
    if any("oracle_gap_pt" in r for r in rows):
        cols += GAP_COLUMNS
    lines = ["| " + " | ".join(c[0] for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = []
        for _, key, fmt in cols:
            if key is None:
                cells.append(_fmt_life(r["battery_life_s"], r["battery_life_projected"]))
            elif r.get(key) is None and key in ("oracle_gap_pt", "oracle_saving_pct", "regret"):
                cells.append("-")
            else:
                cells.append(fmt(r.get(key)))
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
