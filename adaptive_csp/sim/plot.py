"""A PNG of one run: level (and DVFS frequency), battery, temperature and latency over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_result"]


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
