"""PNGs: one run's level (and DVFS frequency), battery, temperature and latency over time; a comparison's
energy against accuracy per scenario."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_result", "plot_comparison"]


def _stride(n: int, max_points: int) -> int:
    return max(1, n // max_points)


def plot_result(result, path: str | Path, max_points: int = 4000) -> Path:
    """Write ``result``'s traces (a :class:`SimResult` run with ``record=True``) to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tr = result.trace
    if not tr:
        raise ValueError("this result has no traces (run simulate(..., record=True))")
    s = _stride(len(tr["t"]), max_points)
    t = np.asarray(tr["t"])[::s] / 3600.0
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    ax = axes[0]
    ax.step(t, np.asarray(tr["level"])[::s], where="post", lw=0.8, label="level")
    ax.set_ylabel("ladder level")
    ax2 = ax.twinx()
    ax2.plot(t, np.asarray(tr["frequency"])[::s], color="tab:orange", lw=0.6, alpha=0.7, label="f / f_max")
    ax2.set_ylabel("f / f_max")
    ax2.set_ylim(0, 1.05)
    ax.set_title(f"{result.policy} on {result.scenario} ({result.device})")
    ax = axes[1]
    if "soc" in tr:
        ax.plot(t, 100.0 * np.asarray(tr["soc"])[::s], color="tab:green")
        ax.set_ylim(0, 102)
        ax.set_ylabel("battery %")
    else:
        ax.plot(t, np.asarray(tr["power_w"])[::s], color="tab:green", lw=0.6)
        ax.set_ylabel("power W (mains)")
    ax = axes[2]
    ax.plot(t, np.asarray(tr["temperature_c"])[::s], color="tab:red", label="device")
    ax.plot(t, np.asarray(tr["ambient_c"])[::s], color="tab:gray", lw=0.6, label="ambient")
    ax.axhline(result.t_crit_c, color="k", ls="--", lw=0.8, label="T_crit")
    ax.set_ylabel("°C")
    ax.legend(loc="lower right", fontsize=7)
    ax = axes[3]
    lat = np.asarray(tr["latency_ms"])
    # per-plot-bin maximum so short spikes stay visible after downsampling
    n = len(lat) // s * s
    lat_b = lat[:n].reshape(-1, s).max(axis=1) if s > 1 else lat
    ax.plot(t[: len(lat_b)], lat_b, lw=0.6, color="tab:purple", label="service time")
    ax.axhline(result.deadline_ms, color="k", ls="--", lw=0.8, label="deadline")
    ax.set_ylabel("latency ms")
    ax.set_xlabel("simulated time (h)")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_comparison(rows: list[dict], path: str | Path) -> Path:
    """One panel per scenario of a ``compare`` table: each policy's energy (Wh) against its accuracy right
    and on time, the oracle and best-static rows marked, so a policy's distance to the frontier shows.
    matplotlib's Figure API (no global state); extra ``plot``."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'adaptive-csp[plot]'") from None
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    if not scenarios:
        raise ValueError("nothing to plot: the comparison has no rows")
    cols = min(3, len(scenarios))
    nrows = -(-len(scenarios) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, scn in zip(axes, scenarios):
        for r in (r for r in rows if r["scenario"] == scn):
            acc = r.get("on_time_accuracy", r.get("mean_accuracy"))
            if acc is None or r.get("energy_j") is None:
                continue
            name = str(r["policy"])
            special = name in ("oracle", "best-static")
            ax.scatter(r["energy_j"] / 3600.0, 100.0 * acc, marker="*" if special else "o",
                       s=90 if special else 30, color="black" if name == "oracle" else None, zorder=3)
            ax.annotate(name, (r["energy_j"] / 3600.0, 100.0 * acc), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_title(scn, fontsize=9)
        ax.set_xlabel("energy (Wh)")
        ax.set_ylabel("right and on time (%)")
        ax.grid(alpha=0.3)
    for ax in axes[len(scenarios):]:
        ax.set_visible(False)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    return p
