"""Linux sysfs/procfs source: thermal zones, power supplies, RAPL energy counters, CPU pressure.

- ``/sys/class/thermal/thermal_zone*/{type,temp}`` (m°C) → ``temperatures_c`` (zone type as key);
- ``/sys/class/power_supply/*``: a ``type`` of Battery gives ``capacity`` (%), ``status`` and
  ``power_now`` (µW) or ``current_now`` (µA) × ``voltage_now`` (µV); Mains/USB ``online`` → plugged;
- ``/sys/class/powercap/intel-rapl:N/energy_uj`` (top-level packages only, subzones would double count)
  → watts from the counter's delta between two reads, wrapping at ``max_energy_range_uj``;
- ``/proc/pressure/cpu`` "some" → ``cpu_pressure``: the share of the time since the previous read in which
  some runnable task waited for a CPU, from the delta of the kernel's ``total`` stall counter (µs) — an
  instantaneous signal; "avg10", a 10-s average that takes ~20 s to decay, only on the first read;
  ``/proc/loadavg`` → ``load_avg``.

Everything is discovered once at construction; ``root`` relocates the tree (tests build a fake one).
Unreadable files (RAPL is root-only on many kernels) are absent, logged once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adaptive_csp.sensors.readings import Readings
from adaptive_csp.util.log import OnceLogger

__all__ = ["SysfsSource"]

log = logging.getLogger(__name__)


class SysfsSource:
    name = "sysfs"
    min_interval_s = 0.1  # RAPL watts need a measurable counter delta

    def __init__(self, root: str | Path = "/", clock: Callable[[], float] = time.monotonic):
        self.root = Path(root)
        self.clock = clock
        self._once = OnceLogger(log)
        sysc = self.root / "sys" / "class"
        self.zones: list[tuple[str, Path]] = []
        for z in sorted(sysc.glob("thermal/thermal_zone*")):
            name = self._text(z / "type") or z.name
            if (z / "temp").exists():
                key = name if name not in dict(self.zones) else f"{name}.{z.name}"
                self.zones.append((key, z / "temp"))
        self.batteries: list[Path] = []
        self.mains: list[Path] = []
        for ps in sorted(sysc.glob("power_supply/*")):
            kind = (self._text(ps / "type") or "").lower()
            if kind == "battery" and (ps / "capacity").exists():
                self.batteries.append(ps)
            elif kind in ("mains", "usb", "usb_c", "ups") and (ps / "online").exists():
                self.mains.append(ps)
        self.rapl: list[Path] = [p for p in sorted(sysc.glob("powercap/*")) if p.name.count(":") == 1
                                 and (p / "energy_uj").exists()]
        self._rapl_last: tuple[float, list[float]] | None = None
        self._psi = self.root / "proc" / "pressure" / "cpu"
        self._psi_last: tuple[float, float] | None = None  # (clock, total µs) of the previous read
        self._loadavg = self.root / "proc" / "loadavg"
        self.has_psi = self._psi.exists()
        self.available = bool(self.zones or self.batteries or self.rapl or self.has_psi
                              or self._loadavg.exists())

    # helpers ---------------------------------------------------------------------------------------
    def _text(self, p: Path) -> str | None:
        try:
            return p.read_text().strip()
        except OSError as e:
            self._once(f"read:{p}", "cannot read %s (%s); treated as absent", p, e, level=logging.INFO)
            return None

    def _num(self, p: Path) -> float | None:
        t = self._text(p)
        if t is None:
            return None
        try:
            return float(t)
        except ValueError:
            return float("nan")  # garbage in a sensor file: a fault, flagged by Readings.sanitized

    def absent(self) -> list[str]:
        """Names of what this machine lacks (for the CLI and the log)."""
        out = []
        if not self.zones:
            out.append("thermal zones")
        if not self.batteries:
            out.append("battery")
        if not self.rapl:
            out.append("RAPL")
        if not self.has_psi:
            out.append("PSI")
        return out

    # reads -----------------------------------------------------------------------------------------
    def _battery(self, kw: dict[str, Any]) -> None:
        b = self.batteries[0]
        kw["battery_percent"] = self._num(b / "capacity")
        status = (self._text(b / "status") or "").lower()
        p = self._num(b / "power_now")
        if p is None:
            i, v = self._num(b / "current_now"), self._num(b / "voltage_now")
            if i is not None and v is not None:
                p = abs(i) * v / 1e6
        if p is not None:
            p = abs(p) / 1e6  # µW → W; sign from status
            kw["battery_power_w"] = -p if status == "charging" else p
        plugged = None
        if self.mains:
            plugged = any(self._num(m / "online") == 1 for m in self.mains)
        if status in ("charging", "full", "not charging"):
            plugged = True
        elif status == "discharging" and plugged is None:
            plugged = False
        kw["plugged"] = plugged

    def _rapl_watts(self, now: float) -> float | None:
        vals = []
        for p in self.rapl:
            v = self._num(p / "energy_uj")
            if v is None:
                return None
            vals.append(v)
        last, self._rapl_last = self._rapl_last, (now, vals)
        if last is None or now <= last[0]:
            return None
        joules = 0.0
        for p, v, v0 in zip(self.rapl, vals, last[1], strict=False):
            d = v - v0
            if d < 0:  # counter wrapped
                d += self._num(p / "max_energy_range_uj") or 0.0
            joules += d / 1e6
        return joules / (now - last[0])

    def _pressure(self, now: float) -> float | None:
        """PSI "some" as a percentage of the time since the last read (see the module docstring)."""
        text = self._text(self._psi)
        some = next((ln.split() for ln in (text or "").splitlines() if ln.startswith("some")), None)
        if some is None:
            return None
        fields = dict(p.split("=", 1) for p in some[1:] if "=" in p)
        try:
            total, avg10 = float(fields["total"]), float(fields["avg10"])
        except (KeyError, ValueError):
            return float("nan")  # garbage: a fault, flagged by Readings.sanitized
        last, self._psi_last = self._psi_last, (now, total)
        if last is None or now <= last[0] or total < last[1]:
            return avg10
        return min(100.0, 100.0 * (total - last[1]) / 1e6 / (now - last[0]))

    def read(self) -> Readings:
        now = self.clock()
        kw: dict[str, Any] = {"timestamp": now, "source": self.name}
        if self.zones:
            temps = {}
            for key, p in self.zones:
                v = self._num(p)
                if v is not None:
                    temps[key] = v / 1000.0
            kw["temperatures_c"] = temps or None
        if self.batteries:
            self._battery(kw)
        if self.rapl:
            kw["power_w"] = self._rapl_watts(now)
        if self.has_psi:
            kw["cpu_pressure"] = self._pressure(now)
        t = self._text(self._loadavg) if self._loadavg.exists() else None
        if t:
            try:
                kw["load_avg"] = tuple(float(x) for x in t.split()[:3])
            except ValueError:
                kw["load_avg"] = (float("nan"),)
        return Readings.sanitized(**kw)
