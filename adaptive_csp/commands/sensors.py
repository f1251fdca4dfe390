"""``adaptive-csp sensors``: live readings and what each preset would choose, like a small jtop.

    adaptive-csp sensors                 # refresh in place (Ctrl-C to quit)
    adaptive-csp sensors --once          # one snapshot
    adaptive-csp sensors --once --json   # machine output (without --once: one JSON line per refresh)

Presets are evaluated on a ladder (``--ladder ladder.json``, else ``--levels N`` evenly spaced costs);
each keeps its state between refreshes, as it would in the runner.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from typing import Any

from adaptive_csp.control import PRESETS, create_policy
from adaptive_csp.control.policy import RuntimeStats
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.auto import create_source
from adaptive_csp.sensors.base import close_source, source_interval
from adaptive_csp.sensors.readings import Readings

__all__ = ["configure", "run", "snapshot", "render"]


def _ladder(args: argparse.Namespace):
    """``--ladder FILE`` (a ladder JSON or a model's JSON), ``--levels N`` (a synthetic even spread), else the
    shipped model's ladder, as a camera frame's runner on this machine would see it (batch 1)."""
    if args.ladder:
        with open(args.ladder) as f:
            doc = json.loads(f.read())
        return LevelLadder.from_dict(doc.get("ladder", doc) if isinstance(doc, dict) else doc)
    if args.levels:
        n = max(1, args.levels)
        return LevelLadder.from_costs([(i + 1) / n for i in range(n)])
    from adaptive_csp.models.pretrained import pretrained

    ladder = pretrained().levels
    view = getattr(ladder, "view", None)
    return view("ort", 1) if callable(view) else ladder


def _absent(source: Any) -> list[str]:
    out: list[str] = []
    for s in getattr(source, "sources", [source]):
        fn = getattr(s, "absent", None)
        if callable(fn):
            out += fn()
        if getattr(s, "available", True) is False:
            out.append(getattr(s, "name", type(s).__name__))
    return out


def _readings_dict(r: Readings) -> dict[str, Any]:
    d = {f.name: getattr(r, f.name) for f in fields(r)}
    for k in ("per_cpu_percent", "load_avg", "faults"):
        if d[k] is not None:
            d[k] = list(d[k])
    return d


def snapshot(source: Any, policies: dict[str, Any], ladder: Any, levels: dict[str, int]) -> dict[str, Any]:
    """One reading plus each policy's decision (levels are fed back, as a runner would)."""
    try:
        r = source.read()
    except Exception as e:  # noqa: BLE001 - the CLI shows the fault instead of dying
        r = Readings(timestamp=time.monotonic(), source="error", faults=(f"source:error:{type(e).__name__}",))
    if not isinstance(r, Readings):
        r = Readings(timestamp=time.monotonic(), source="none", faults=("source:none",))
    out: dict[str, Any] = {"readings": _readings_dict(r), "absent": _absent(source), "policies": {}}
    now = r.timestamp
    for name, p in policies.items():
        d = p.decide(r, RuntimeStats(now=now, level=levels.get(name, ladder.full)), ladder)
        levels[name] = d.level
        out["policies"][name] = {"level": d.level, "of": ladder.full, "reason": d.reason,
                                 "frequency": d.frequency}
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}"
    if isinstance(v, (list, tuple)):
        return " ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return str(v)


def render(snap: dict[str, Any]) -> str:
    r = snap["readings"]
    rows = [("source", r["source"]), ("cpu %", r["cpu_percent"]), ("per cpu %", r["per_cpu_percent"]),
            ("own cpu %", r.get("own_cpu_percent")), ("load avg", r["load_avg"]),
            ("cpu pressure %", r["cpu_pressure"]), ("battery %", r["battery_percent"]),
            ("plugged", r["plugged"]), ("battery W", r["battery_power_w"]), ("hottest C", r["temperature_c"]),
            ("zones C", r["temperatures_c"]), ("power W", r["power_w"]), ("gpu %", r["gpu_percent"])]
    lines = ["adaptive-csp sensors" + (f"   (absent here: {', '.join(snap['absent'])})" if snap["absent"] else "")]
    lines += [f"  {k:<15} {_fmt(v)}" for k, v in rows]
    if r["faults"]:
        lines.append(f"  {'faults':<15} {', '.join(r['faults'])}")
    lines.append("")
    lines.append(f"  {'preset':<12} {'level':>7}  reason")
    for name, d in snap["policies"].items():
        lines.append(f"  {name:<12} {d['level']:>3}/{d['of']:<3}  {d['reason']}")
    return "\n".join(lines)


def _positive(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def configure(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--source", default="auto", help="auto | psutil | sysfs | jtop | none")
    ap.add_argument("--once", action="store_true", help="print one snapshot and exit")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--rate", type=_positive, default=2.0, help="refresh rate in Hz")
    ap.add_argument("--count", type=int, default=0, help="stop after N refreshes (0 = until Ctrl-C)")
    ap.add_argument("--policies", default="", help="comma-separated policy names (empty: all presets)")
    ap.add_argument("--ladder", default=None, help="ladder JSON (LevelLadder.to_json) or a model's JSON "
                    "(default: the shipped model's ladder)")
    ap.add_argument("--levels", type=int, default=0, help="a synthetic ladder of N evenly spaced costs instead "
                    "of the shipped model's (0: off)")


def run(args: argparse.Namespace) -> int:
    try:
        source = create_source(args.source)
        ladder = _ladder(args)
        names = [n.strip() for n in args.policies.split(",") if n.strip()] or list(PRESETS)
        policies = {n: create_policy(n) for n in names}
    except Exception as e:  # noqa: BLE001 - a clean message, not a traceback
        print(f"adaptive-csp sensors: {e}", file=sys.stderr)
        return 2
    period = max(1.0 / args.rate, source_interval(source))
    levels: dict[str, int] = {}
    tty = sys.stdout.isatty() and not args.json
    n = 0
    try:
        time.sleep(min(period, 0.5))  # let utilisation and RAPL counters accumulate a first window
        while True:
            snap = snapshot(source, policies, ladder, levels)
            if args.json:
                print(json.dumps(snap, indent=1 if args.once else None, default=str), flush=True)
            else:
                print(("\x1b[H\x1b[2J" if tty else "") + render(snap), flush=True)
            n += 1
            if args.once or (args.count and n >= args.count):
                break
            time.sleep(period)
    except KeyboardInterrupt:
        pass
    finally:
        close_source(source)
    return 0
