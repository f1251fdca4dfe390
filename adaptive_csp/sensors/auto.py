"""Merging sources, and ``create_source(spec)``: "auto" merges what is present on this machine.

A :class:`MergedSource` reads each child in priority order; for each field the first non-None value
wins, per-zone temperatures are united (first source wins a name clash), and faults are united.  A
child that raises or returns None adds a ``source:<name>:error`` / ``source:<name>:none`` fault and is
otherwise skipped, so one broken sensor does not hide the others (logged once per child and kind).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from adaptive_csp.sensors.base import close_source, source_interval, source_name
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.util.log import OnceLogger

__all__ = ["create_source", "MergedSource", "NullSource", "make_source", "SOURCE_NAMES"]

log = logging.getLogger(__name__)

SOURCE_NAMES = ("auto", "psutil", "sysfs", "jtop", "none")
_SCALARS = ("cpu_percent", "per_cpu_percent", "load_avg", "cpu_pressure", "battery_percent", "plugged",
            "battery_power_w", "power_w", "gpu_percent", "own_cpu_percent")


class NullSource:
    """No sensors at all: every field None (policies then run unconstrained or on runtime stats only)."""

    name = "none"
    min_interval_s = 0.0
    available = True

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock

    def read(self) -> Readings:
        return Readings(timestamp=self.clock(), source=self.name)


class MergedSource:
    def __init__(self, sources: list[Any], clock: Callable[[], float] = time.monotonic):
        if not sources:
            raise ValueError("MergedSource needs at least one source")
        self.sources = list(sources)
        self.clock = clock
        self.name = "+".join(source_name(s) for s in self.sources)
        self.min_interval_s = max(source_interval(s) for s in self.sources)
        self.available = any(getattr(s, "available", True) for s in self.sources)
        self._once = OnceLogger(log)

    def read(self) -> Readings:
        now = self.clock()
        merged: dict[str, Any] = {}
        temps: dict[str, float] = {}
        faults: list[str] = []
        hottest: float | None = None
        for s in self.sources:
            n = source_name(s)
            try:
                r = s.read()
            except Exception as e:  # noqa: BLE001 - one broken child must not hide the others
                self._once(f"{n}:error:{type(e).__name__}", "source %s raised %s: %s", n, type(e).__name__, e)
                faults.append(f"source:{n}:error")
                continue
            if not isinstance(r, Readings):
                self._once(f"{n}:none", "source %s returned %r instead of Readings", n, type(r).__name__)
                faults.append(f"source:{n}:none")
                continue
            for k in _SCALARS:
                if k not in merged:
                    v = getattr(r, k)
                    if v is not None:
                        merged[k] = v
            if r.temperatures_c:
                for z, t in r.temperatures_c.items():
                    temps.setdefault(z, t)
            if r.temperature_c is not None and (hottest is None or r.temperature_c > hottest):
                hottest = r.temperature_c
            faults.extend(r.faults)
        if temps:
            merged["temperatures_c"] = temps
            hottest = max([*temps.values(), *([hottest] if hottest is not None else [])])
        if hottest is not None:
            merged["temperature_c"] = hottest
        return Readings(timestamp=now, source=self.name, faults=tuple(dict.fromkeys(faults)), **merged)

    def close(self) -> None:
        for s in self.sources:
            close_source(s)


def _auto(clock: Callable[[], float]) -> Any:
    found: list[Any] = []
    if "jtop" in sys.modules or _jtop_installed():
        from adaptive_csp.sensors.jtop_source import JtopSource

        j = JtopSource(clock=clock, quiet=True)
        if j.available:
            found.append(j)
    if sys.platform.startswith("linux"):
        from adaptive_csp.sensors.sysfs_source import SysfsSource

        s = SysfsSource(clock=clock)
        if s.available:
            found.append(s)
            if s.absent():
                log.info("auto sensors: this machine has no %s", ", ".join(s.absent()))
    try:
        from adaptive_csp.sensors.psutil_source import PsutilSource

        found.append(PsutilSource(clock=clock))
    except ImportError:
        log.warning("auto sensors: psutil is not installed")
    if not found:
        return NullSource(clock)
    return found[0] if len(found) == 1 else MergedSource(found, clock)


def _jtop_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("jtop") is not None
    except (ImportError, ValueError):
        return False


def create_source(spec: Any = "auto", *, clock: Callable[[], float] = time.monotonic) -> Any:
    """``"auto" | "psutil" | "sysfs" | "jtop" | "none"``, a source object (returned as is), or a list.

    A list holds specs or objects and becomes a :class:`MergedSource` in that priority order; a list
    of dicts/Readings (a script) becomes a :class:`~adaptive_csp.sensors.ScriptedSource`.
    """
    if spec is None:
        spec = "none"
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "auto":
            return _auto(clock)
        if key == "psutil":
            from adaptive_csp.sensors.psutil_source import PsutilSource

            return PsutilSource(clock=clock)
        if key == "sysfs":
            from adaptive_csp.sensors.sysfs_source import SysfsSource

            return SysfsSource(clock=clock)
        if key == "jtop":
            from adaptive_csp.sensors.jtop_source import JtopSource

            return JtopSource(clock=clock)
        if key == "none":
            return NullSource(clock)
        raise ValueError(f"unknown sensor source {spec!r}; expected one of {SOURCE_NAMES}, an object "
                         "with read(), or a list")
    if isinstance(spec, (list, tuple)):
        if spec and all(isinstance(x, (dict, Readings)) for x in spec):
            from adaptive_csp.sensors.scripted import ScriptedSource

            return ScriptedSource(list(spec), clock=clock)
        parts = [create_source(x, clock=clock) for x in spec]
        return parts[0] if len(parts) == 1 else MergedSource(parts, clock)
    if callable(getattr(spec, "read", None)):
        return spec
    raise TypeError(f"a sensor source must be a name, an object with read(), or a list; got {spec!r}")

make_source = create_source  # the name before the one-verb API; kept as an alias
