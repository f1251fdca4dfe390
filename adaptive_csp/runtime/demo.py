"""``adaptive-csp demo``: the shipped model on a simulated conveyor-belt camera, with a simulated battery
that drains with the energy the chosen levels use and a device that heats; or, with ``--video PATH`` /
``--camera N``, on a real source with this machine's real sensors.

Simulation (the default).  The frames come from :class:`~.conveyor.Conveyor`; inference is real (the
shipped model on this CPU, through :class:`AdaptiveRunner`).  Energy and heat come from
:mod:`adaptive_csp.sim`: a device class (default ``jetson-nano``) turns each level's latency measured here
into latency and power on that board (:class:`~adaptive_csp.sim.DeviceModel`), which drains a
:class:`~adaptive_csp.sim.Battery` and heats a :class:`~adaptive_csp.sim.ThermalModel`.  Time is compressed:
each camera frame stands for ``--sim-seconds`` of operation at ``--fps`` frames per second, so an hour of
belt fits in a few seconds of demo.  The policy reads battery and temperature through the same sensor path
as on a device (a :class:`~adaptive_csp.sensors.ScriptedSource` in a :class:`~adaptive_csp.sensors.SensorPoller`)
and runs on the simulated clock.  The battery is sized to last about 1.25× the run at the full level
unless ``--battery-wh`` says otherwise.  These are models, not measurements: see ``adaptive_csp.sim.device``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptive_csp.control.presets import DEFAULT_POLICY

__all__ = ["main"]

DEFAULT_PLOT = "adaptive-csp-demo.png"


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="adaptive-csp demo", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default=DEFAULT_POLICY, help=f"preset name or TOML path (default {DEFAULT_POLICY})")
    ap.add_argument("--frames", type=int, default=None,
                    help="frames to run (simulation default 600; a video/camera runs to its end / Ctrl-C)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--video", metavar="PATH", help="run on a video file with this machine's sensors")
    src.add_argument("--camera", metavar="N", type=int, help="run on camera N with this machine's sensors")
    ap.add_argument("--plot", metavar="PATH", default=DEFAULT_PLOT,
                    help=f"where to write the PNG (default ./{DEFAULT_PLOT}, in the current directory)")
    ap.add_argument("--no-plot", action="store_true", help="do not write a plot")
    ap.add_argument("--no-content", action="store_true", help="turn content-aware demand off")
    ap.add_argument("--deadline-ms", type=float, default=None, help="per-frame deadline for the policy")
    ap.add_argument("--device-class", default="jetson-nano", help="simulated board (adaptive_csp.sim)")
    ap.add_argument("--ambient", type=float, default=35.0, help="simulated ambient temperature, °C")
    ap.add_argument("--battery-wh", type=float, default=None, help="simulated battery capacity")
    ap.add_argument("--fps", type=float, default=15.0, help="simulated camera rate the board must keep")
    ap.add_argument("--sim-seconds", type=float, default=6.0, help="simulated seconds per demo frame")
    ap.add_argument("--telemetry", metavar="PATH", help="export telemetry (.jsonl or .csv)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true", help="no live status line")
    return ap.parse_args(argv)


class Status:
    """A live status line: rewritten in place on a terminal, a line every ~10 % otherwise."""

    def __init__(self, total: int | None, quiet: bool):
        self.quiet, self.total = quiet, total
        self.tty = sys.stderr.isatty()
        self.every = max(1, (total or 500) // 10)
        self.last = 0.0

    def __call__(self, i: int, text: str) -> None:
        if self.quiet:
            return
        if self.tty:
            now = time.perf_counter()
            if now - self.last >= 0.1:
                self.last = now
                sys.stderr.write("\r" + text[:150].ljust(150))
                sys.stderr.flush()
        elif i % self.every == 0:
            print(text, flush=True)

    def done(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\n")


def _level_latencies(model: Any, reps: int = 15) -> list[float]:
    """Median batch-1 latency (ms) of every ladder level on this CPU (interleaved, after a warm-up)."""
    x = torch.zeros(1, model.meta["preprocess"].get("in_chans", 1), *model.meta["preprocess"]["input_size"])
    n = len(model.levels)
    times: list[list[float]] = [[] for _ in range(n)]
    with torch.inference_mode():
        for i in range(n):
            for _ in range(3):
                model(x, i)
        for _ in range(reps):
            for i in range(n):
                t = time.perf_counter()
                model(x, i)
                times[i].append((time.perf_counter() - t) * 1000.0)
    return [float(np.median(t)) for t in times]


def simulate(a: argparse.Namespace) -> int:
    from adaptive_csp.data.fashion_mnist import load_sample
    from adaptive_csp.levels import LevelLadder, Rung
    from adaptive_csp.models.pretrained import pretrained
    from adaptive_csp.runtime.conveyor import Conveyor
    from adaptive_csp.runtime.runner import AdaptiveRunner
    from adaptive_csp.sensors import ManualClock, ScriptedSource, SensorPoller
    from adaptive_csp.sim import Battery, DeviceModel, ThermalModel, get_device_class

    frames = 600 if a.frames is None else a.frames
    if frames < 1 or not a.sim_seconds > 0 or not a.fps > 0:
        raise ValueError("--frames, --sim-seconds and --fps must be > 0")
    model = pretrained().prepare()
    ladder = model.levels
    if not all(r.latency_ms for r in ladder.rungs):  # no measured latencies shipped: measure them here
        lat = _level_latencies(model)
        ladder = LevelLadder(Rung(r.level, r.macs, r.params, ms, r.latency_ms_b32, r.accuracy, r.extra)
                             for r, ms in zip(ladder.rungs, lat, strict=True))
    dc = get_device_class(a.device_class)
    dev = DeviceModel.from_ladder(ladder, dc)
    dt = float(a.sim_seconds)

    def power(level: int, temp: float) -> float:
        busy = min(1.0, a.fps * dev.latency_s(level, temperature_c=temp))
        return dev.power_w(busy)

    full = len(ladder) - 1
    cap_wh = a.battery_wh or power(full, a.ambient) * frames * dt / 3600.0 * 1.25
    battery = Battery(capacity_wh=cap_wh)
    thermal = ThermalModel(dc.r_k_per_w, dc.c_j_per_k, t_amb_c=a.ambient)
    clock = ManualClock(0.0)
    source = ScriptedSource(lambda t: {"battery_percent": battery.percent, "plugged": False,
                                       "temperature_c": thermal.temperature_c, "power_w": last_power[0]},
                            clock=clock, name="sim")
    last_power = [dc.idle_power_w]
    poller = SensorPoller(source, rate_hz=1.0 / dt, clock=clock)
    poller.poll_once()
    sample = load_sample()
    belt = Conveyor(sample.images.numpy(), sample.labels.numpy(), seed=a.seed)
    runner = AdaptiveRunner(model, policy=a.policy, sensors=poller, deadline_ms=a.deadline_ms,
                            content=not a.no_content, clock=clock)
    status = Status(frames, a.quiet)
    hist: dict[str, list] = {k: [] for k in ("t", "level", "cap", "battery", "temp", "acc", "power")}
    correct = scored = 0
    energy_full_j, start_pct = 0.0, battery.percent
    t0 = time.perf_counter()
    with runner:
        for i, fr in enumerate(belt.frames(frames)):
            pred = runner.infer(fr.image)
            if fr.scored:
                scored += 1
                correct += int(pred.label == fr.label)
            temp = thermal.temperature_c
            p = power(pred.level, temp)
            last_power[0] = p
            energy_full_j += power(full, temp) * dt
            battery.drain(p, dt)
            thermal.step(p, dt)
            clock.advance(dt)
            poller.poll_once()
            acc = correct / scored if scored else math.nan
            for k, v in zip(hist, (clock(), pred.level, runner.policy_level, battery.percent, temp, acc, p),
                            strict=True):
                hist[k].append(v)
            fps = (i + 1) / max(1e-9, time.perf_counter() - t0)
            status(i, f"[{i + 1}/{frames}] level {pred.level}/{full} | battery {battery.percent:5.1f}% | "
                      f"{temp:5.1f} °C | {fps:6.1f} fps | acc "
                      f"{'  -  ' if math.isnan(acc) else f'{100 * acc:5.1f}%'} | {pred.reason}")
            if battery.empty:
                print(f"\nbattery empty after {i + 1} frames", file=sys.stderr)
                break
        stats = runner.stats()
    status.done()
    wall = time.perf_counter() - t0
    used_j = (start_pct - battery.percent) / 100.0 * cap_wh * 3600.0
    print(f"demo summary: policy {runner.policy.name}, {stats['calls']} frames in {wall:.1f} s "
          f"({stats['calls'] / max(wall, 1e-9):.0f} fps on this CPU); simulated {dc.name}, "
          f"{hist['t'][-1] / 60:.0f} min at {a.fps:g} fps, ambient {a.ambient:g} °C")
    print(f"  accuracy on items under the camera: "
          f"{'n/a' if not scored else f'{100 * correct / scored:.1f}%'} ({scored} frames, {belt.items} items)"
          + ("  [placeholder weights]" if "PLACEHOLDER" in str(model.meta.get("note", "")) else ""))
    print("  levels used: " + ", ".join(f"{lv}: {n}" for lv, n in stats["per_level"].items())
          + f"; switches {stats['switches']}")
    print(f"  battery {start_pct:.1f}% -> {battery.percent:.1f}% of {cap_wh:.2f} Wh; energy "
          f"{used_j / 3600:.3f} Wh vs {energy_full_j / 3600:.3f} Wh at the full level throughout "
          f"({100 * (1 - used_j / energy_full_j):+.0f}% saved)" if energy_full_j else "")
    print(f"  temperature max {max(hist['temp']):.1f} °C, final {thermal.temperature_c:.1f} °C "
          f"(throttling above {dc.t_trip_c:g} °C)")
    print(f"  latency on this CPU: p50 {stats['p50_ms']:.2f} ms, p95 {stats['p95_ms']:.2f} ms")
    if a.telemetry:
        _export(runner, a.telemetry)
    if not a.no_plot:
        _plot(a.plot, hist, [("level", "level (cap dotted)"), ("battery", "battery %"), ("temp", "temperature °C"),
                             ("acc", "running accuracy")], f"adaptive-csp demo: policy {runner.policy.name}",
              "simulated time (s)")
    return 0


def real(a: argparse.Namespace) -> int:
    from adaptive_csp.runtime.runner import AdaptiveRunner

    src: Any = a.video if a.video is not None else a.camera
    hist: dict[str, list] = {k: [] for k in ("t", "level", "cap", "latency", "battery", "temp")}
    status = Status(a.frames, a.quiet)
    t0 = time.perf_counter()
    with AdaptiveRunner(policy=a.policy, sensors="auto", deadline_ms=a.deadline_ms,
                        content=not a.no_content) as runner:
        try:
            for i, pred in enumerate(runner.stream(src, max_frames=a.frames)):
                r = runner.readings()
                now = time.perf_counter() - t0
                vals = (now, pred.level, runner.policy_level, pred.latency_ms,
                        getattr(r, "battery_percent", None), getattr(r, "temperature_c", None))
                for k, v in zip(hist, vals, strict=True):
                    hist[k].append(math.nan if v is None else v)
                extra = "".join(f" | {lab} {v:.1f}" for lab, v in (("battery %", vals[4]), ("°C", vals[5]))
                                if v is not None)
                status(i, f"[{i + 1}] {pred.class_name} {pred.score:.2f} | level {pred.level} | "
                          f"{pred.latency_ms:.1f} ms | {(i + 1) / max(now, 1e-9):.1f} fps{extra} | {pred.reason}")
        except KeyboardInterrupt:
            pass
        stats = runner.stats()
        if a.telemetry:
            _export(runner, a.telemetry)
    status.done()
    print(f"demo summary: policy {runner.policy.name}, {stats['frames']} frames, skipped {stats['skipped']}, "
          f"levels {stats['per_level']}, switches {stats['switches']}, p50 {stats['p50_ms'] or 0:.2f} ms, "
          f"p95 {stats['p95_ms'] or 0:.2f} ms")
    if not a.no_plot and hist["t"]:
        panels = [("level", "level (cap dotted)"), ("latency", "latency ms")]
        panels += [(k, lab) for k, lab in (("battery", "battery %"), ("temp", "temperature °C"))
                   if not all(math.isnan(v) for v in hist[k])]
        _plot(a.plot, hist, panels, f"adaptive-csp demo: policy {runner.policy.name} on {src}", "time (s)")
    return 0


def _export(runner: Any, path: str) -> None:
    p = Path(path)
    (runner.export_csv if p.suffix.lower() == ".csv" else runner.export_jsonl)(p)
    print(f"  telemetry: {p.resolve()}")


def _plot(path: str, hist: dict[str, list], panels: list[tuple[str, str]], title: str, xlabel: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  no plot: matplotlib is not installed (pip install 'adaptive-csp[plot]')")
        return
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.0 * len(panels)), sharex=True)
    for ax, (key, label) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.plot(hist["t"], hist[key], lw=1.2, drawstyle="steps-post" if key == "level" else "default")
        if key == "level":
            ax.plot(hist["t"], hist["cap"], ":", lw=1.0, color="grey", drawstyle="steps-post")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[-1].set_xlabel(xlabel)
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    print(f"  plot: {out.resolve()}")


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    try:
        return real(a) if (a.video is not None or a.camera is not None) else simulate(a)
    except ValueError as e:
        print(f"adaptive-csp demo: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
