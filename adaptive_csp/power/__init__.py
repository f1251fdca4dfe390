"""Power-aware actuation: DVFS actuators behind one interface.

* :class:`SimulatedDVFS` — always available; :class:`CpufreqDVFS` (Linux sysfs) and :class:`JetsonDVFS`
  (jtop: nvpmodel + jetson_clocks, a slow actuator with a long cooldown) — opt-in, refusing cleanly
  without hardware or permission (:class:`DVFSUnavailable`, :class:`DVFSPermissionError`).

Actuators act; policies only request a frequency (``Decision.frequency``).  The joint (level, frequency)
policy is a policy: :mod:`adaptive_csp.control.dvfs` (``JointDVFSPolicy``, ``joint_policy``).
"""

from adaptive_csp.power.actuators import CpufreqDVFS, JetsonDVFS, SimulatedDVFS, get_actuator
from adaptive_csp.power.base import (
    DEFAULT_STEPS,
    DVFSActuator,
    DVFSError,
    DVFSNotEnabled,
    DVFSPermissionError,
    DVFSUnavailable,
)

__all__ = ["DVFSActuator", "DVFSError", "DVFSUnavailable", "DVFSPermissionError", "DVFSNotEnabled",
           "DEFAULT_STEPS", "SimulatedDVFS", "CpufreqDVFS", "JetsonDVFS", "get_actuator"]
