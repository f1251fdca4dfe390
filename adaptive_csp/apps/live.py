"""The demo's live terminal view: one refreshing panel on a terminal (rich), plain lines otherwise.

In the spirit of jtop: the level as a bar with the policy's cap marked, battery, temperature, CPU load,
frame rate, accuracy so far and the reason for the current level.  Events (a level change and its
reason, the belt starting or stopping) are printed above the panel on a terminal and as lines otherwise;
without a terminal, or without rich installed (``pip install 'adaptive-csp[demo]'``), a status line is
printed every tenth of the run instead of the panel.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["Status", "LiveView", "level_bar"]


@dataclass
class Status:
    """What the panel shows; None = not known (e.g. no battery on this machine)."""

    frame: int
    total: int | None
    level: int
    cap: int
    full: int
    reason: str
    fps: float
    battery_pct: float | None = None
    temperature_c: float | None = None
    trip_c: float | None = None
    cpu_percent: float | None = None
    accuracy: float | None = None
    accuracy_ref: float | None = None  # the static-max arm's, when there is one
    clock: str = ""  # simulated time of day, or wall time

    def line(self) -> str:
        """The plain one-line form."""
        tot = f"/{self.total}" if self.total else ""
        parts = [f"[{self.frame}{tot}] {self.clock}".rstrip(), f"level {self.level}/{self.full} (cap {self.cap})"]
        parts += [f"{lab} {fmt}" for lab, fmt in (
            ("battery", _pct(self.battery_pct)), ("temp", _deg(self.temperature_c)), ("cpu", _pct(self.cpu_percent)),
            ("acc", _pct(None if self.accuracy is None else 100 * self.accuracy))) if fmt != "–"]
        parts.append(f"{self.fps:.0f} fps")
        return " | ".join(parts) + f" | {self.reason}"


def _pct(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0f}%"


def _deg(v: float | None) -> str:
    return "–" if v is None or math.isnan(v) else f"{v:.1f} °C"


def level_bar(level: int, cap: int, full: int, width: int = 22) -> str:
    """``█`` up to the level that ran, ``▒`` up to the policy's cap, ``·`` above it."""
    n = max(1, full)
    lv = round(width * max(0, level) / n)
    cp = max(lv, round(width * max(0, cap) / n))
    return "█" * lv + "▒" * (cp - lv) + "·" * (width - cp)


class LiveView:
    """``update(status)`` per frame, ``event(text)`` for what deserves a line, ``close()`` at the end."""

    def __init__(self, title: str, *, total: int | None = None, quiet: bool = False, stream: TextIO | None = None,
                 refresh_hz: float = 8.0):
        self.title, self.total, self.quiet = title, total, quiet
        self.stream = stream or sys.stdout
        self._live: Any = None
        self._every = max(1, (total or 500) // 10)
        if quiet or not _isatty(self.stream):
            return
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError:
            return
        self._console = Console(file=self.stream)
        self._live = Live(console=self._console, refresh_per_second=refresh_hz, transient=False)
        self._live.start()

    @property
    def panel(self) -> bool:
        return self._live is not None

    def event(self, text: str) -> None:
        if self.quiet:
            return
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def update(self, s: Status) -> None:
        if self.quiet:
            return
        if self._live is not None:
            self._live.update(self._render(s))
        elif s.frame % self._every == 0 or (self.total and s.frame == self.total):
            print(s.line(), file=self.stream, flush=True)

    def _render(self, s: Status) -> Any:
        from rich.panel import Panel
        from rich.table import Table

        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column()
        tot = f" of {s.total}" if s.total else ""
        t.add_row("frame", f"{s.frame}{tot}   {s.clock}   {s.fps:.0f} fps")
        t.add_row("level", f"{level_bar(s.level, s.cap, s.full)}  {s.level}/{s.full}  (cap {s.cap})")
        if s.battery_pct is not None and not math.isnan(s.battery_pct):
            t.add_row("battery", f"{_bar(s.battery_pct, 100)}  {s.battery_pct:5.1f} %")
        if s.temperature_c is not None and not math.isnan(s.temperature_c):
            trip = f"  (trip {s.trip_c:g} °C)" if s.trip_c else ""
            t.add_row("temperature", f"{_bar(s.temperature_c, s.trip_c or 100)}  {s.temperature_c:5.1f} °C{trip}")
        if s.cpu_percent is not None:
            t.add_row("CPU load", f"{_bar(s.cpu_percent, 100)}  {s.cpu_percent:5.1f} %")
        if s.accuracy is not None:
            ref = "" if s.accuracy_ref is None else f"   static-max {100 * s.accuracy_ref:.1f} %"
            t.add_row("right, on time", f"{100 * s.accuracy:.1f} % of items so far{ref}")
        t.add_row("reason", s.reason)
        return Panel(t, title=self.title, border_style="blue")

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def _bar(v: float, top: float, width: int = 22) -> str:
    n = round(width * min(1.0, max(0.0, v / top))) if top > 0 else 0
    return "█" * n + "·" * (width - n)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
