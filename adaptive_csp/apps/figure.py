"""The demo's pictures, drawn with matplotlib's object-oriented API (no pyplot, no global backend).

:func:`story_figure`: the simulated day — the level with the policy's cap and each cap change marked by
its cause, battery, temperature (trip line, ambient), CPU load, and running "right and on time" on items,
adaptive and static-max on one figure; below them what a user got: "right and on time" and "right when
answered" per arm with their 95 % item-bootstrap intervals (:mod:`adaptive_csp.apps.score`).  :func:`camera_figure`: a run on real frames with this machine's sensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["story_figure", "camera_figure", "CAUSE_COLOURS"]

CAUSE_COLOURS = {"battery": "tab:green", "thermal": "tab:red", "contention": "tab:orange", "latency": "tab:purple",
                 "content": "tab:gray", "unconstrained": "tab:blue", "fault": "black"}
ADAPTIVE, STATIC = "tab:blue", "0.45"


def _figure(rows: int, height: float = 1.9) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # optional dependency: pip install 'adaptive-csp[demo]'

    fig = Figure(figsize=(10.5, height * rows + 0.6), layout="constrained")
    return fig, fig.subplots(rows, 1, sharex=True)


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def _running(correct: list[bool], scored: list[bool], on_time: list[float] | None = None) -> np.ndarray:
    w = np.ones(len(correct)) if on_time is None else np.asarray(on_time, dtype=float)
    c = np.cumsum(np.asarray(correct, dtype=float) * np.asarray(scored, dtype=float) * w)
    n = np.cumsum(np.asarray(scored, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, 100.0 * c / np.maximum(n, 1), np.nan)


def _spans(ax: Any, x: np.ndarray, mask: np.ndarray, colour: str, label: str) -> None:
    """Shade the stretches where ``mask`` holds."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(int), 0]))
    step = x[1] - x[0] if len(x) > 1 else 1.0
    for k, (a, b) in enumerate(zip(edges[::2], edges[1::2], strict=True)):
        ax.axvspan(x[a], x[b - 1] + step, color=colour, alpha=0.12, lw=0, label=label if k == 0 else None)


def _story_axes() -> tuple[Any, list[Any], Any]:
    """Five time panels sharing the x axis, and a panel of the two figures below them."""
    from matplotlib.figure import Figure  # optional dependency: pip install 'adaptive-csp[demo]'

    fig = Figure(figsize=(10.5, 1.9 * 5 + 2.6), layout="constrained")
    gs = fig.add_gridspec(6, 1, height_ratios=[1.0] * 5 + [1.1])
    ax = [fig.add_subplot(gs[0])]
    ax += [fig.add_subplot(gs[i], sharex=ax[0]) for i in range(1, 5)]
    return fig, ax, fig.add_subplot(gs[5])


def _figures_panel(axis: Any, run: Any) -> None:
    """Per arm: "right and on time" and "right when answered", bars with their bootstrap intervals."""
    from adaptive_csp.apps.score import FIGURES

    sc = run.scores()
    names = list(run.arms)
    width = 0.38
    for j, (key, label) in enumerate(FIGURES.items()):
        ivs = [sc[k].on_time if key == "on_time" else sc[k].when_answered for k in names]
        est = np.array([100 * iv.estimate for iv in ivs])
        err = np.array([[100 * (iv.estimate - iv.lo) for iv in ivs], [100 * (iv.hi - iv.estimate) for iv in ivs]])
        pos = np.arange(len(names)) + (j - 0.5) * width
        axis.barh(pos, est, height=width, xerr=np.nan_to_num(err), capsize=4, color=("tab:green", "tab:cyan")[j],
                  alpha=0.8)
        for y, v, iv in zip(pos, est, ivs, strict=True):
            axis.text(1, y, f"{label}: {v:.1f} % [{100 * iv.lo:.1f}, {100 * iv.hi:.1f}]", va="center", fontsize=7)
    axis.set_yticks(np.arange(len(names)), [run.arms[k].runner.policy.name for k in names])
    axis.invert_yaxis()
    axis.set_xlim(0, 100)
    first = sc[names[0]]
    axis.set_xlabel(f"% of {first.frames} scored frames ({first.items} distinct items); bars: "
                    f"{100 * first.on_time.level:.0f} % item-cluster bootstrap intervals")
    axis.grid(alpha=0.3, axis="x")


def story_figure(run: Any, path: str | Path) -> Path:
    """Write the simulated day of a :class:`~adaptive_csp.apps.story.StoryRun` to ``path`` (PNG)."""
    a, s = run.adaptive, run.static
    x = np.asarray(run.t) / 60.0
    fig, ax, figures = _story_axes()
    title = (f"adaptive-csp demo: {a.runner.policy.name} vs static-max on the '{run.scenario.name}' scenario "
             f"({run.scenario.device}, simulated), model {run.model_name}")
    fig.suptitle(title, fontsize=10)
    # level, cap and the causes of the cap's changes
    lv = ax[0]
    _spans(lv, x, ~np.asarray(run.belt_busy), "0.5", "belt idle")
    _spans(lv, x, np.asarray(run.traces.load) >= 0.5, "tab:orange", "background job")
    lv.step(x, s.rec["level"], where="post", color=STATIC, lw=1.2, ls="--", label="static-max")
    lv.step(x, a.rec["level"], where="post", color=ADAPTIVE, lw=0.6, alpha=0.45, label="level that ran")
    lv.step(x, a.rec["cap"], where="post", color=ADAPTIVE, lw=1.8, label="policy cap")
    seen: set[str] = set()
    for c in a.changes:
        col = CAUSE_COLOURS.get(c.cause, "black")
        lv.plot([c.t / 60.0], [c.new], "v" if c.new < c.old else "^", color=col, ms=6,
                label=f"cap change: {c.cause}" if c.cause not in seen else None)
        seen.add(c.cause)
    lv.set_ylabel("ladder level")
    lv.set_ylim(-0.5, run.full_level + 0.8)
    lv.legend(loc="lower left", fontsize=7, ncol=4)
    # battery
    bt = ax[1]
    for arm, col, ls in ((a, ADAPTIVE, "-"), (s, STATIC, "--")):
        bt.plot(x, arm.rec["battery_pct"], color=col, ls=ls, label=arm.name)
    bt.set_ylabel("battery %")
    bt.legend(loc="upper right", fontsize=7)
    # temperature
    tp = ax[2]
    for arm, col, ls in ((a, ADAPTIVE, "-"), (s, STATIC, "--")):
        tp.plot(x, arm.rec["temperature_c"], color=col, ls=ls, label=arm.name)
    tp.plot(x, run.traces.ambient_c, color="tab:brown", lw=0.8, label="ambient")
    tp.axhline(a.world.dev.device.t_trip_c, color="tab:red", lw=0.8, ls=":", label="trip")
    tp.set_ylabel("°C")
    tp.legend(loc="upper left", fontsize=7, ncol=4)
    # CPU load
    cp = ax[3]
    cp.plot(x, 100.0 * np.asarray(run.traces.load), color="tab:orange", label="other processes")
    cp.plot(x, a.rec["cpu_percent"], color=ADAPTIVE, lw=0.8, label="whole CPU (adaptive)")
    cp.set_ylabel("CPU %")
    cp.set_ylim(0, 105)
    cp.legend(loc="upper right", fontsize=7)
    # running "right and on time" on items
    ac = ax[4]
    for arm, col, ls in ((a, ADAPTIVE, "-"), (s, STATIC, "--")):
        ac.plot(x, _running(arm.rec["correct"], run.scored, arm.rec["on_time"]), color=col, ls=ls, label=arm.name)
    ac.set_ylabel("right and on time\nso far %")
    ac.set_xlabel("simulated time (min)")
    ac.legend(loc="lower right", fontsize=7)
    for axis in ax:
        axis.grid(alpha=0.3)
    _figures_panel(figures, run)
    return _save(fig, path)


def camera_figure(hist: dict[str, list], path: str | Path, title: str) -> Path:
    """Level (cap dotted), latency and whichever of CPU load, battery and temperature were measured."""
    panels = [("level", "level (cap dotted)"), ("latency_ms", "latency ms")]
    panels += [(k, lab) for k, lab in (("cpu_percent", "CPU %"), ("battery_pct", "battery %"),
                                        ("temperature_c", "temperature °C"))
               if not all(v is None or np.isnan(v) for v in hist[k])]
    fig, ax = _figure(len(panels), 1.7)
    fig.suptitle(title, fontsize=10)
    t = hist["t"]
    for axis, (key, label) in zip(np.atleast_1d(ax), panels, strict=True):
        vals = [np.nan if v is None else v for v in hist[key]]
        axis.plot(t, vals, lw=1.0, drawstyle="steps-post" if key == "level" else "default")
        if key == "level":
            axis.plot(t, hist["cap"], ":", lw=1.0, color="grey", drawstyle="steps-post")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    np.atleast_1d(ax)[-1].set_xlabel("time (s)")
    return _save(fig, path)
