"""``adaptive-csp demo``: what adaptation buys, on the shipped model.

Default: a simulated stretch of a battery camera's day on a conveyor belt (the ``conveyor`` scenario):
the battery drains, a background job loads the CPU, the belt stands idle for a while, the sun heats the
enclosure.  The same frames go through the chosen policy and through ``static-max`` on one simulated
clock; inference is real, battery and heat come from the simulator's device, battery and thermal models
(:mod:`adaptive_csp.apps.story`).  It prints each change of the policy's level cap with its reason, a
summary of both arms and the line "X % less energy, Y % longer battery, Z points right and on time", and
writes a PNG.  ``--scenario`` plays any of the simulator's scenarios instead.

What a user gets is scored two ways on the belt's items (:mod:`adaptive_csp.apps.score`): "right and on
time" (a late or dropped frame answers nothing and counts as wrong) and "right when answered" (late and
dropped frames left out), each with a 95 % item-cluster bootstrap interval, and so is the difference of
the two arms (paired by item).  Beside them stands the simulator's oracle on the same scenario, ladder and
device at the policy's energy (:mod:`adaptive_csp.apps.hindsight`).

``--source 0 | video.mp4 | image-folder``: real frames with this machine's real sensors
(:mod:`adaptive_csp.apps.camera`).

``--task detect``: the same day with a detector on a belt carrying several items at once, boxes drawn
into a video and a strip in ``--out`` (:mod:`adaptive_csp.apps.detect_demo`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from adaptive_csp.apps.report import (  # noqa: F401
    _jsonable,
    _plot,
    _Watch,
    export_telemetry,
    hindsight_lines,
    record,
    summary_lines,
)

__all__ = ["configure", "run", "DEFAULT_PLOT", "summary_lines", "hindsight_lines", "record"]

DEFAULT_PLOT = "adaptive-csp-demo.png"
ENGINES = ("auto", "torch", "onnxruntime", "cuda")


def configure(ap: argparse.ArgumentParser) -> None:
    from adaptive_csp.control.presets import DEFAULT_POLICY

    ap.description = __doc__.split("\n\n")[0].strip("`") if not ap.description else ap.description
    ap.add_argument("--policy", default=DEFAULT_POLICY, help="preset name, baseline or TOML path")
    from adaptive_csp.sim.scenario import list_scenarios

    ap.add_argument("--scenario", default="conveyor",
                    help=f"simulator scenario: one of {', '.join(list_scenarios())}, or a TOML path")
    ap.add_argument("--source", metavar="SRC",
                    help="real frames instead of the simulation: a camera index, a video file or an image folder")
    ap.add_argument("--engine", default="auto", choices=ENGINES, help="inference engine")
    ap.add_argument("--frames", type=int, default=None,
                    help="simulation: steps to play the scenario in (classify: 1200, detect: 600); "
                         "--source: stop after this many frames")
    ap.add_argument("--plot", metavar="PATH", default=DEFAULT_PLOT, help="where to write the PNG")
    ap.add_argument("--no-plot", action="store_true", help="do not write a PNG")
    ap.add_argument("--no-content", action="store_true", help="turn content-aware demand off")
    ap.add_argument("--deadline-ms", type=float, default=None, help="--source: per-frame deadline for the policy")
    ap.add_argument("--resize", choices=("stretch", "letterbox", "center_crop"), default=None,
                    help="--source: how frames of another shape become the model's input (default: the model's, "
                    "stretch)")
    ap.add_argument("--roi", type=int, nargs=4, metavar=("X", "Y", "W", "H"), default=None,
                    help="--source: look only at this region of each frame (frame pixels)")
    ap.add_argument("--telemetry", metavar="PATH", help="export the adaptive runner's telemetry (.jsonl or .csv)")
    ap.add_argument("--record", metavar="PATH", help="simulation: write every frame of both arms and the summary (JSON)")
    ap.add_argument("--seed", type=int, default=0, help="conveyor seed (which items, in which order)")
    ap.add_argument("--quiet", action="store_true", help="no live view and no events: only the summary")
    ap.add_argument("--task", choices=("classify", "detect"), default="classify",
                    help="classify (the classifier demo) or detect (a detector on a belt of several items)")
    ap.add_argument("--model", metavar="PATH", default=None,
                    help="--task detect: a detector checkpoint (default: the shipped detector)")
    ap.add_argument("--out", metavar="DIR", default="adaptive-csp-detect-demo",
                    help="--task detect: folder for detections.mp4 and strip.png (boxes drawn)")
    ap.add_argument("--no-video", action="store_true", help="--task detect: write strip.png only")


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    try:
        if args.task == "detect":
            from adaptive_csp.apps.detect_demo import run_detect

            return run_detect(args)
        if args.source is not None:
            from adaptive_csp.apps.camera import run_camera

            return run_camera(args)
        return _simulated(args)
    except (ValueError, ValidationError) as e:
        print(f"adaptive-csp demo: {e}", file=sys.stderr)
        return 2


# ------------------------------------------------------------------------------------------------------------
# the simulated day
# ------------------------------------------------------------------------------------------------------------
def _simulated(args: argparse.Namespace) -> int:
    from adaptive_csp.apps.live import LiveView
    from adaptive_csp.apps.story import DEFAULT_FRAMES, run_story

    frames = DEFAULT_FRAMES if args.frames is None else args.frames
    view = LiveView("adaptive-csp demo", total=frames, quiet=args.quiet)
    if view.quiet or not view.panel:
        print(f"adaptive-csp demo: policy {args.policy} vs static-max, scenario {args.scenario}, {frames} frames",
              flush=True)
    try:
        run = run_story(args.policy, args.scenario, frames, engine=args.engine, seed=args.seed,
                        content=not args.no_content, on_frame=_Watch(view))
    finally:
        view.close()
    from adaptive_csp.apps.hindsight import hindsight

    bounds = hindsight(run)
    for line in summary_lines(run) + hindsight_lines(run, bounds):
        print(line)
    export_telemetry(run.adaptive.runner, args.telemetry)
    if args.record:
        p = Path(args.record)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(record(run, bounds), default=_jsonable))
        print(f"  record: {p.resolve()}")
    if not args.no_plot:
        _plot(lambda: _story_png(run, args.plot))
    return 0


def _story_png(run: Any, path: str) -> Path:
    from adaptive_csp.apps.figure import story_figure

    return story_figure(run, path)
