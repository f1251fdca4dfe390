"""One immutable, timestamped snapshot of everything the sensors know.

Every field but ``timestamp`` may be None (unknown / absent on this machine).  Sources build it with
:meth:`Readings.sanitized`, which drops impossible values (battery 250 %, −256 °C, negative power, NaN)
and names what it dropped, so a lying sensor becomes an absent one instead of a wrong decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["Readings", "LIMITS"]

# Sanity limits: values outside are treated as sensor faults and replaced by None.
LIMITS: dict[str, tuple[float, float]] = {
    "cpu_percent": (0.0, 100.0),
    "per_cpu_percent": (0.0, 100.0),
    "load_avg": (0.0, 10_000.0),
    "cpu_pressure": (0.0, 100.0),  # PSI some, percent of the last poll interval
    "battery_percent": (0.0, 100.0),
    "battery_power_w": (-1_000.0, 1_000.0),  # + discharging, − charging
    "temperatures_c": (-40.0, 150.0),
    "temperature_c": (-40.0, 150.0),
    "power_w": (0.0, 10_000.0),
    "gpu_percent": (0.0, 100.0),
    "own_cpu_percent": (0.0, 100.0),
}


def _ok(name: str, v: Any) -> bool:
    if v is None or isinstance(v, bool):
        return False
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    lo, hi = LIMITS[name]
    return math.isfinite(f) and lo <= f <= hi


@dataclass(frozen=True)
class Readings:
    timestamp: float  # time.monotonic() of the read (or the simulated clock)
    cpu_percent: float | None = None  # whole-machine utilisation, 0..100
    per_cpu_percent: tuple[float, ...] | None = None
    load_avg: tuple[float, float, float] | None = None  # 1, 5, 15 min
    cpu_pressure: float | None = None  # /proc/pressure/cpu "some": % of the time since the last read
    battery_percent: float | None = None  # state of charge, 0..100
    plugged: bool | None = None
    battery_power_w: float | None = None  # discharge power (+) or charge power (−)
    temperatures_c: dict[str, float] | None = None  # per zone / sensor
    temperature_c: float | None = None  # hottest zone
    power_w: float | None = None  # whole-device or package power
    gpu_percent: float | None = None
    source: str = ""  # which source(s) produced it
    faults: tuple[str, ...] = field(default=(), compare=False)  # what sanitizing dropped
    own_cpu_percent: float | None = None  # this process's share of the whole machine, 0..100

    @classmethod
    def sanitized(cls, **kw: Any) -> Readings:
        """Build a snapshot, replacing out-of-range or non-numeric values by None (recorded in faults)."""
        faults: list[str] = list(kw.pop("faults", ()))
        for name in LIMITS:
            if name not in kw or kw[name] is None:
                continue
            v = kw[name]
            if name in ("per_cpu_percent", "load_avg"):
                try:
                    vals = tuple(float(x) for x in v)
                except (TypeError, ValueError):
                    vals = ()
                if not vals or not all(_ok(name, x) for x in vals):
                    faults.append(f"{name}:invalid")
                    kw[name] = None
                else:
                    kw[name] = vals
            elif name == "temperatures_c":
                good = {str(k): float(x) for k, x in dict(v).items() if _ok(name, x)}
                if len(good) != len(v):
                    faults.append("temperatures_c:invalid")
                kw[name] = good or None
            elif not _ok(name, v):
                faults.append(f"{name}:invalid")
                kw[name] = None
            else:
                kw[name] = float(v)
        if kw.get("temperature_c") is None and kw.get("temperatures_c"):
            kw["temperature_c"] = max(kw["temperatures_c"].values())
        if "plugged" in kw and kw["plugged"] is not None and not isinstance(kw["plugged"], bool):
            faults.append("plugged:invalid")
            kw["plugged"] = None
        ts = kw.get("timestamp")
        if ts is None or not _finite(ts):
            raise ValueError(f"Readings.timestamp must be a finite number, got {ts!r}")
        return cls(faults=tuple(faults), **kw)

    def with_(self, **kw: Any) -> Readings:
        return replace(self, **kw)

    def age(self, now: float) -> float:
        return now - self.timestamp

    def summary(self) -> dict[str, Any]:
        """Small dict for telemetry: the scalar fields that are known."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("per_cpu_percent", "temperatures_c", "faults", "source", "load_avg"):
                continue
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = v
        return out


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
