"""Power-aware actuation: DVFS actuators behind one interface.

* :class:`SimulatedDVFS` — always available; :class:`CpufreqDVFS` (Linux sysfs) and :class:`JetsonDVFS`
  (jtop: nvpmodel + jetson_clocks, a slow actuator with a long cooldown) — opt-in, refusing cleanly
  without hardware or permission (:class:`DVFSUnavailable`, :class:`DVFSPermissionError`).

Actuators act; policies only request a frequency (``Decision.frequency``).  The joint (level, frequency)
policy is a policy: :mod:`adaptive_csp.control.dvfs` (``JointDVFSPolicy``, ``joint_policy``).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DVFSActuator", "DVFSError", "DVFSUnavailable", "DVFSPermissionError", "DVFSNotEnabled",
           "DEFAULT_STEPS", "SimulatedDVFS", "CpufreqDVFS", "JetsonDVFS", "get_actuator"]

_ACTUATORS = ("SimulatedDVFS", "CpufreqDVFS", "JetsonDVFS", "get_actuator")


def __getattr__(name: str) -> Any:  # names load on first use, as every package of adaptive_csp re-exports
    if name in __all__:
        mod = "actuators" if name in _ACTUATORS else "base"
        return getattr(importlib.import_module(f"adaptive_csp.power.{mod}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
