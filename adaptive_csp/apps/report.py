"""What the demos share: the story's clock and events, the watcher that feeds the live view, the summary
and hindsight lines, the JSON record, and printing where a plot went (``adaptive-csp demo``, its camera
and detection variants, :mod:`adaptive_csp.apps.demo`, :mod:`.camera`, :mod:`.detect_demo`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["summary_lines", "hindsight_lines", "record", "export_telemetry"]


def export_telemetry(runner: Any, path: str | None) -> None:
    """``--telemetry PATH``: the runner's records as CSV (``.csv``) or JSON lines (anything else), and where."""
    if not path:
        return
    p = Path(path)
    (runner.export_csv if p.suffix.lower() == ".csv" else runner.export_jsonl)(p)
    print(f"  telemetry: {p.resolve()}")


def _hhmm(t: float) -> str:
    m = int(t // 60)
    return f"{m // 60:d}:{m % 60:02d}"


def _events(run: Any, k: int) -> list[str]:
    """Story events at step ``k``: the belt starts or stops, the background job starts or ends."""
    out = []
    if k and run.belt_busy[k] != run.belt_busy[k - 1]:
        out.append("the belt starts moving" if run.belt_busy[k] else "the belt stops (idle)")
    load = run.traces.load
    if k and (load[k] >= 0.5) != (load[k - 1] >= 0.5):
        out.append(f"a background job {'starts' if load[k] >= 0.5 else 'ends'} (other processes "
                   f"{100 * load[k]:.0f} % CPU)")
    return out


class _Watch:
    """Feeds the live view and prints events and cap changes as they happen."""

    def __init__(self, view: Any):
        self.view, self.changes = view, 0

    def __call__(self, run: Any, k: int) -> None:
        from adaptive_csp.apps.live import Status

        a, s = run.adaptive, run.static
        clock = _hhmm(run.t[k])
        for ev in _events(run, k):
            self.view.event(f"{clock}  {ev}")
        for c in a.changes[self.changes:]:
            arrow = "down" if c.new < c.old else "up"
            self.view.event(f"{clock}  level cap {c.old} -> {c.new} ({arrow}, {c.cause}): {c.reason}")
        self.changes = len(a.changes)
        st = Status(k + 1, len(run.t), a.rec["level"][-1], a.rec["cap"][-1], run.full_level, a.rec["reason"][-1],
                    (k + 1) / max(run.wall_s, 1e-9), a.rec["battery_pct"][-1], a.rec["temperature_c"][-1],
                    a.world.dev.device.t_trip_c, a.rec["cpu_percent"][-1], a.accuracy, s.accuracy, clock)
        self.view.update(st)


def _plot(draw: Any) -> None:
    try:
        out = draw()
    except ImportError:
        print("  no plot: matplotlib is not installed (pip install 'adaptive-csp[demo]')")
        return
    print(f"  plot: {out.resolve()}")


def _dur(s: float | None) -> str:
    if s is None:
        return "n/a"
    h, rem = divmod(int(round(s)), 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def _fmt_pct(v: float | None, nd: int = 1) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f} %"


def _ci(iv: Any, nd: int = 1, sign: bool = False) -> str:
    """``86.5 % [82.1, 90.3]`` from an Interval of a share (points with ``sign``)."""
    if iv is None or math.isnan(iv.estimate):
        return "n/a"
    f = f"{{:{'+' if sign else ''}.{nd}f}}"
    est = f.format(100 * iv.estimate) + ("" if sign else " %")
    if math.isnan(iv.lo):
        return est
    return f"{est} [{f.format(100 * iv.lo)}, {f.format(100 * iv.hi)}]"


def _belt_line(run: Any, sc: dict[str, Any]) -> str:
    a = sc["adaptive"]
    per = np.bincount(np.unique(np.asarray(run.items)[np.asarray(run.scored, dtype=bool)],
                                return_inverse=True)[1]) if a.frames else np.zeros(1, int)
    iv = a.on_time
    return (f"  belt: {a.frames} scored frames of {a.items} distinct items ({per.min()}-{per.max()} frames each); "
            f"[..] = {100 * iv.level:.0f} % item-cluster bootstrap interval ({iv.resamples} resamples of the "
            "items, seed 0)")


def summary_lines(run: Any) -> list[str]:
    """The summary table of both arms and the one line of what adaptation bought (numbers from ``run``)."""
    sm, sc = run.summaries(), run.scores()
    a, s = sm["adaptive"], sm["static-max"]
    scn = run.scenario
    n = len(run.t)
    fps = n / max(run.wall_s, 1e-9)
    rows = [
        ("energy", f"{a['energy_j'] / 3600:.2f} Wh", f"{s['energy_j'] / 3600:.2f} Wh"),
        ("battery", *(f"{x['battery_start_pct']:.0f} -> {x['battery_end_pct']:.0f} %"
                      if x["battery_start_pct"] is not None else "mains" for x in (a, s))),
        ("battery life" + (" (projected)" if a["battery_life_projected"] else ""),
         _dur(a["battery_life_s"]), _dur(s["battery_life_s"])),
        (f"time above trip ({a['t_trip_c']:g} °C)", _dur(a["time_above_trip_s"]), _dur(s["time_above_trip_s"])),
        ("max temperature", f"{a['max_temperature_c']:.1f} °C", f"{s['max_temperature_c']:.1f} °C"),
        ("deadline misses (all frames)", _fmt_pct(a["deadline_miss_pct"], 2), _fmt_pct(s["deadline_miss_pct"], 2)),
        ("scored frames answered in time", *(f"{sc[k].answered:.0f} of {sc[k].frames}" for k in run.arms)),
        ("right and on time", *(_ci(sc[k].on_time) for k in run.arms)),
        ("right when answered", *(_ci(sc[k].when_answered) for k in run.arms)),
        ("mean level", f"{a['mean_level']:.2f}", f"{s['mean_level']:.2f}"),
    ]
    w = max(len(r[0]) for r in rows) + 2
    cw = max(14, *(len(x) + 2 for r in rows for x in r[1:]))
    out = [
        "",
        f"demo summary: model {run.model_name} ({run.full_level + 1} levels), policy {a['policy']} vs static-max, "
        f"same {n} frames",
        f"  scenario {scn.name}: {_dur(n * run.dt)} simulated on a {scn.device} in steps of {run.dt:g} s; "
        f"{run.wall_s:.1f} s on this CPU ({fps:.0f} frames/s, both arms)",
        _belt_line(run, sc),
        f"  {'':<{w}}{a['policy']:>{cw}}{'static-max':>{cw}}",
    ]
    out += [f"  {name:<{w}}{x:>{cw}}{y:>{cw}}" for name, x, y in rows]
    for k, v in (("adaptive", a), ("static-max", s)):
        if v["battery_empty_at_s"] is not None:
            out.append(f"  {k}: battery empty after {_dur(v['battery_empty_at_s'])}")
    both = sc.get("both_answered")
    if both is not None and both.frames > 0:
        out.append(f"  right when answered, on the {both.frames:.0f} scored frames both answered in time: "
                   f"{a['policy']} {_ci(both.a)}, static-max {_ci(both.b)}, difference {_ci(both.difference, sign=True)} "
                   "points")
    causes: dict[str, int] = {}
    for c in run.adaptive.changes:
        causes[c.cause] = causes.get(c.cause, 0) + 1
    out.append("  level-cap changes by cause: " + (", ".join(f"{k} {v}" for k, v in causes.items()) or "none"))
    g, d = run.gains(), sc.get("difference")
    out.append("adaptation bought: " + ", ".join((
        "n/a energy" if g["energy_pct"] is None else f"{g['energy_pct']:.1f} % less energy",
        "n/a battery" if g["battery_life_pct"] is None else f"{g['battery_life_pct']:.1f} % longer battery",
        f"{_ci(d and d['on_time'], sign=True)} points right and on time",
        f"{_ci(d and d['answered'], sign=True)} points right when answered")))
    return out


def hindsight_lines(run: Any, bounds: dict[str, Any]) -> list[str]:
    """Each arm's schedule replayed through the simulator beside the oracle and the best static level in
    hindsight, all scored the oracle's way (:mod:`adaptive_csp.apps.hindsight`)."""
    cols = [k for k in (*run.arms, "oracle", "best-static") if k in bounds]
    if not cols:
        return [f"  hindsight: not shown: {bounds.get('missing', 'nothing to show')}"]
    names = {k: run.arms[k].runner.policy.name if k in run.arms else k for k in cols}
    lim = run.adaptive.world.dev.device.t_crit_c

    def val(r: dict[str, Any], key: str) -> str:
        v = r.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "n/a"
        return {"accuracy": lambda: f"{100 * v:.2f} %", "energy_j": lambda: f"{v / 3600:.2f} Wh",
                "seconds_above_limit": lambda: _dur(v), "mean_level": lambda: f"{v:.2f}"}.get(key, lambda: f"{v}")()

    rows = [("right and on time (ladder)", "accuracy"), ("energy", "energy_j"), ("deadline misses (frames)", "misses"),
            (f"time above {lim:g} °C", "seconds_above_limit"), ("level switches", "switches"),
            ("mean level", "mean_level")]
    w = max(len(r[0]) for r in rows) + 2
    at = (f"lasting as long as {names[cols[0]]}'s battery ({_dur(bounds['min_lifetime_s'])})"
          if "min_lifetime_s" in bounds else f"at {names[cols[0]]}'s energy")
    out = ["  hindsight: " + ("the simulator's oracle and the best static level on this day's known traces "
                          f"{at}, and " if "oracle" in cols else "")
           + "each arm's own schedule replayed through the simulator;",
           "  scored alike: frames answered in time (all frames, belt idle or not) at their level's test accuracy",
           f"  {'':<{w}}" + "".join(f"{names[c]:>14}" for c in cols)]
    out += [f"  {label:<{w}}" + "".join(f"{val(bounds[c], key):>14}" for c in cols) for label, key in rows]
    hold = getattr(run.scenario, "scene_hold_s", 0.0)
    for k, arm in run.arms.items():
        n = sum(arm.rec.get("skipped", []))
        if n:
            out.append(f"  {names[k]} skipped {n} frames (frame interval); the simulator scores each by its last answer "
                       f"decayed over scene_hold_s = {hold:g} s" + (" (0: as wrong)" if not hold else "")
                       + ", the belt above by the answer it got")
    o = bounds.get("oracle")
    if o and o.get("dual_bound") is not None:
        gap = 100 * (o["dual_bound"] - o["accuracy"])
        out.append(f"  oracle: dual bound {100 * o['dual_bound']:.2f} % ({gap:+.2f} points above its schedule"
                   + ("; below it, so no bound here)" if gap < 0 else ")"))
    if "missing" in bounds:
        out.append(f"  oracle: not shown: {bounds['missing']}")
    return out


def record(run: Any, bounds: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the summary is computed from: per-frame records of both arms, the truth, the summary."""
    return {
        "scenario": run.scenario.name, "dt": run.dt, "t": list(map(float, run.t)), "label": run.labels,
        "scored": run.scored, "item": run.items, "belt_busy": run.belt_busy,
        "load": list(map(float, run.traces.load)),
        "arms": {k: a.rec for k, a in run.arms.items()},
        "changes": [vars(c) for c in run.adaptive.changes],
        "summary": run.summaries(), "gains": run.gains(), "model": run.model_name,
        "scores": {k: (v.as_dict() if hasattr(v, "as_dict") else {f: vars(iv) for f, iv in v.items()})
                   for k, v in run.scores().items()},
        "hindsight": bounds,
    }


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return str(v)
