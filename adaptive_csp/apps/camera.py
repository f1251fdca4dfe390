"""``adaptive-csp demo --source …``: the shipped model on real frames with this machine's real sensors.

The source is a camera index (``0``), a video file, or a folder of images (read in name order).  The
runner polls the host's sensors (``sensors="auto"``: CPU load and pressure everywhere, battery and
temperatures where the hardware has them), so the level follows the real CPU load; the live view and
the PNG show what was measured, and nothing is simulated.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from adaptive_csp.runtime.sources import IMAGE_SUFFIXES, image_folder

__all__ = ["run_camera", "open_frames", "IMAGE_SUFFIXES"]

def open_frames(source: str) -> Any:
    """A camera index, a video path or an image folder → what ``runner.stream`` takes."""
    s = str(source).strip()
    if s.isdigit():
        return int(s)
    p = Path(s)
    if p.is_dir():
        return image_folder(p)
    if not p.exists():
        raise ValueError(f"no camera, video file or image folder {s!r}")
    return str(p)


def run_camera(args: argparse.Namespace) -> int:
    from adaptive_csp.apps.figure import camera_figure
    from adaptive_csp.apps.live import LiveView, Status
    from adaptive_csp.apps.report import _plot, export_telemetry
    from adaptive_csp.apps.story import CapWatch
    from adaptive_csp.runtime.runner import AdaptiveRunner

    src = open_frames(args.source)
    keys = ("t", "level", "cap", "latency_ms", "cpu_percent", "battery_pct", "temperature_c")
    hist: dict[str, list] = {k: [] for k in keys}
    view = LiveView(f"adaptive-csp demo on {args.source}", total=args.frames, quiet=args.quiet)
    t0 = time.perf_counter()
    watch = CapWatch()
    with AdaptiveRunner(policy=args.policy, sensors="auto", deadline_ms=args.deadline_ms, engine=args.engine,
                        content=not args.no_content, resize=getattr(args, "resize", None),
                        roi=getattr(args, "roi", None)) as runner:
        full = runner.ladder.full
        try:
            for i, pred in enumerate(runner.stream(src, max_frames=args.frames)):
                r = runner.readings()
                now = time.perf_counter() - t0
                cap = runner.policy_level
                c = watch.note(now, cap, pred.reason)
                if c is not None:
                    view.event(f"{now:7.1f} s  level cap {c.old} -> {c.new} ({c.cause}): {c.reason}")
                vals = (now, pred.level, cap, pred.latency_ms, getattr(r, "cpu_percent", None),
                        getattr(r, "battery_percent", None), getattr(r, "temperature_c", None))
                for k, v in zip(keys, vals, strict=True):
                    hist[k].append(math.nan if v is None else v)
                view.update(Status(i + 1, args.frames, pred.level, cap, full, pred.reason, (i + 1) / max(now, 1e-9),
                                   vals[5], vals[6], None, vals[4], clock=f"{now:.1f} s"))
        except KeyboardInterrupt:
            pass
        finally:
            view.close()
        stats = runner.stats()
        export_telemetry(runner, args.telemetry)
    print(f"demo summary: policy {runner.policy.name} on {args.source}: {stats['frames']} frames, "
          f"skipped {stats['skipped']}, levels {stats['per_level']}, switches {stats['switches']}, "
          f"p50 {stats['p50_ms'] or 0:.2f} ms, p95 {stats['p95_ms'] or 0:.2f} ms")
    if not args.no_plot and hist["t"]:
        _plot(lambda: camera_figure(hist, args.plot, f"adaptive-csp demo: policy {runner.policy.name} on "
                                                     f"{args.source} (this machine's sensors)"))
    return 0
