"""Sensors: one immutable :class:`Readings` snapshot, sources that produce it, a background poller.

A source is any object with ``read() -> Readings``.  ``create_source("auto")`` merges what this machine
has (jtop, sysfs/procfs, psutil); :class:`ScriptedSource` plays lists, functions of time and traces;
:class:`SensorPoller` keeps the latest snapshot on a thread so deciding never waits on a sensor.
"""

from adaptive_csp.sensors.auto import SOURCE_NAMES, MergedSource, NullSource, create_source, make_source
from adaptive_csp.sensors.base import Source
from adaptive_csp.sensors.poller import SensorPoller
from adaptive_csp.sensors.readings import LIMITS, Readings
from adaptive_csp.sensors.scripted import ManualClock, ScriptedSource, load_trace, write_trace

__all__ = [
    "Readings", "LIMITS", "Source", "create_source", "make_source", "SOURCE_NAMES", "MergedSource",
    "NullSource", "ScriptedSource", "ManualClock", "load_trace", "write_trace", "SensorPoller",
    "PsutilSource", "SysfsSource", "JtopSource",
]


def __getattr__(name: str):  # lazy: keep `import adaptive_csp.sensors` light
    if name == "PsutilSource":
        from adaptive_csp.sensors.psutil_source import PsutilSource

        return PsutilSource
    if name == "SysfsSource":
        from adaptive_csp.sensors.sysfs_source import SysfsSource

        return SysfsSource
    if name == "JtopSource":
        from adaptive_csp.sensors.jtop_source import JtopSource

        return JtopSource
    raise AttributeError(name)
