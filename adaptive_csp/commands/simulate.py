"""``adaptive-csp simulate``: one policy in one scenario on the simulated clock."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from adaptive_csp.control.presets import DEFAULT_POLICY
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sim.scenario import ScenarioError
from adaptive_csp.sim.sweep import parse_value

__all__ = ["configure", "run", "load_ladder", "fail", "CLI_ERRORS"]

#: what a subcommand reports as a one-line message (exit status 2) instead of a traceback
CLI_ERRORS = (ScenarioError, ValueError, RuntimeError, TypeError, KeyError)


def fail(msg: str) -> int:
    print(f"adaptive-csp: {msg}", file=sys.stderr)
    return 2


def load_ladder(path: str | None) -> LevelLadder:
    """``--ladder`` JSON, or the shipped model's ladder when it has measured batch-1 latencies."""
    from adaptive_csp.sim.simulate import resolve_ladder

    ladder = resolve_ladder(path)
    if path is None and not all(r.latency_ms for r in ladder.rungs):
        raise ValueError(
            "the shipped model's ladder has no measured batch-1 latencies (placeholder model?): "
            "run `adaptive-csp profile` or pass --ladder path.json (LevelLadder.to_json format)"
        )
    return ladder


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_value(value)


def configure(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--policy", default=DEFAULT_POLICY, help="preset name, policy TOML path, or a baseline")
    ap.add_argument("--scenario", default="factory", help="shipped scenario name or a TOML path")
    ap.add_argument("--ladder", help="LevelLadder JSON (default: the shipped model's measured ladder)")
    ap.add_argument("--device", help="override the scenario's device class")
    ap.add_argument("--seed", type=int, help="override the scenario's seed")
    ap.add_argument("--duration", type=float, help="override the scenario's duration (s)")
    ap.add_argument("--set", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                    help="policy parameter; VALUE is read as JSON (70, 0.5, true, null), else a string")
    ap.add_argument("--plot", help="PNG path (default sim-POLICY-SCENARIO.png)")
    ap.add_argument("--no-plot", action="store_true", help="write no plot")
    ap.add_argument("--json", help="write the summary as JSON here")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")


def run(a: argparse.Namespace) -> int:
    from adaptive_csp.sim.simulate import simulate

    try:
        r = simulate(a.policy, a.scenario, ladder=load_ladder(a.ladder), device=a.device, seed=a.seed,
                     overrides=dict(a.set), progress=not a.quiet, duration_s=a.duration)  # fmt: skip
    except CLI_ERRORS as e:
        return fail(str(e))
    print(r.format())
    if a.json:
        Path(a.json).write_text(json.dumps(r.summary(), indent=1, default=str))
    if not a.no_plot:
        from adaptive_csp.sim.plot import plot_result

        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{r.policy}-{r.scenario}")
        path = plot_result(r, a.plot or f"sim-{safe}.png")
        print(f"  plot               {path}")
    return 0
