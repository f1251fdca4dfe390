"""psutil source: CPU utilisation (whole machine and per CPU), load average, battery, temperatures.

Utilisation is computed from this source's own ``cpu_times`` deltas, not from ``psutil.cpu_percent``,
whose module-global state would be shared with any other caller (and whose first call returns a
meaningless 0.0 — FACTS.md "Machine and packages").  The first ``read`` after construction therefore
already covers the time since construction.  Absent hardware (no battery, no sensors) → None fields.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from adaptive_csp.sensors.readings import Readings
from adaptive_csp.util.log import OnceLogger

__all__ = ["PsutilSource"]

log = logging.getLogger(__name__)


def _busy_idle(t: Any) -> tuple[float, float]:
    idle = float(getattr(t, "idle", 0.0)) + float(getattr(t, "iowait", 0.0))
    total = float(sum(t))
    # guest time is already counted in user time on Linux
    total -= float(getattr(t, "guest", 0.0)) + float(getattr(t, "guest_nice", 0.0))
    return total - idle, idle


class PsutilSource:
    """``read()`` → Readings with cpu_percent, per_cpu_percent, load_avg, battery and temperatures."""

    name = "psutil"
    min_interval_s = 0.1  # shorter windows give noisy utilisation

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        import psutil  # a core dependency, imported here so the package imports without it

        self._ps = psutil
        self.clock = clock
        self._once = OnceLogger(log)
        self._last = self._times()
        self._proc = psutil.Process()
        self._ncpu = max(1, len(self._last or ()) or 1)
        self._proc_last = self._proc_time()
        self.has_battery = self._call("sensors_battery") is not None
        temps = self._call("sensors_temperatures")
        self.has_temperatures = bool(temps)
        self.available = True

    def _call(self, fn: str) -> Any:
        f = getattr(self._ps, fn, None)
        if f is None:
            return None
        try:
            return f()
        except Exception as e:  # noqa: BLE001 - platform-specific failures become absent values
            self._once(f"{fn}:{type(e).__name__}", "psutil.%s() failed (%s); treated as absent", fn, e)
            return None

    def _times(self) -> list[tuple[float, float]] | None:
        try:
            return [_busy_idle(t) for t in self._ps.cpu_times(percpu=True)]
        except Exception as e:  # noqa: BLE001
            self._once("cpu_times", "psutil.cpu_times failed (%s); cpu utilisation absent", e)
            return None

    def _proc_time(self) -> tuple[float, float] | None:
        try:
            t = self._proc.cpu_times()
            return time.monotonic(), float(t.user + t.system)
        except Exception:  # noqa: BLE001
            return None

    def _own(self) -> float | None:
        now, last = self._proc_time(), self._proc_last
        self._proc_last = now
        if now is None or last is None or now[0] <= last[0]:
            return None
        return max(0.0, min(100.0, 100.0 * (now[1] - last[1]) / (now[0] - last[0]) / self._ncpu))

    def _cpu(self) -> tuple[float | None, tuple[float, ...] | None]:
        now = self._times()
        last, self._last = self._last, now
        if not now or not last or len(now) != len(last):
            return None, None
        per = []
        busy_sum = total_sum = 0.0
        for (b1, i1), (b0, i0) in zip(now, last, strict=False):
            db, di = max(0.0, b1 - b0), max(0.0, i1 - i0)
            tot = db + di
            per.append(100.0 * db / tot if tot > 0 else 0.0)
            busy_sum += db
            total_sum += tot
        if total_sum <= 0:
            return None, None
        return min(100.0, 100.0 * busy_sum / total_sum), tuple(min(100.0, p) for p in per)

    def read(self) -> Readings:
        cpu, per = self._cpu()
        kw: dict[str, Any] = {"timestamp": self.clock(), "source": self.name,
                              "cpu_percent": cpu, "per_cpu_percent": per,
                              "own_cpu_percent": self._own()}
        la = self._call("getloadavg")
        if la is not None:
            kw["load_avg"] = tuple(la)
        if self.has_battery:
            b = self._call("sensors_battery")
            if b is not None:
                kw["battery_percent"] = b.percent
                kw["plugged"] = None if b.power_plugged is None else bool(b.power_plugged)
        if self.has_temperatures:
            temps = self._call("sensors_temperatures") or {}
            zones: dict[str, float] = {}
            for chip, entries in temps.items():
                for k, e in enumerate(entries):
                    label = e.label or str(k)
                    zones[f"{chip}/{label}"] = e.current
            if zones:
                kw["temperatures_c"] = zones
        return Readings.sanitized(**kw)
