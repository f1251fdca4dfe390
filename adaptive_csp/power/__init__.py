"""Power-aware actuation: DVFS actuators behind one interface and a joint (level, frequency) policy.

* :class:`SimulatedDVFS` — always available; :class:`CpufreqDVFS` (Linux sysfs) and :class:`JetsonDVFS`
  (jtop: nvpmodel + jetson_clocks, a slow actuator with a long cooldown) — opt-in, refusing cleanly
  without hardware or permission (:class:`DVFSUnavailable`, :class:`DVFSPermissionError`).
* :class:`JointDVFSPolicy` — wraps a level policy and picks the frequency (and possibly a higher level)
  that fits the same energy budget and the deadline.
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
from adaptive_csp.power.joint import EnergyCurve, JointDVFSPolicy, joint_policy

__all__ = ["DVFSActuator", "DVFSError", "DVFSUnavailable", "DVFSPermissionError", "DVFSNotEnabled",
           "DEFAULT_STEPS", "SimulatedDVFS", "CpufreqDVFS", "JetsonDVFS", "get_actuator", "EnergyCurve",
           "JointDVFSPolicy", "joint_policy"]
