"""Control: policies turn (Readings, RuntimeStats, ladder) into a level index with a reason.

``get_policy("battery")`` builds a preset from ``policies/battery.toml``; governors (thermal PI /
step_wise, p95 latency, battery target runtime, CPU contention, static cap) compose under
:class:`GovernedPolicy` — the most conservative bound wins — and a :class:`HysteresisLadder` applies
dead bands, degrade-fast / recover-slow and cooldowns.
"""

from adaptive_csp.control.battery import BatteryGovernor
from adaptive_csp.control.compose import GovernedPolicy
from adaptive_csp.control.config import (
    BatteryConfig,
    ConfidenceConfig,
    ContentionConfig,
    LadderConfig,
    LatencyConfig,
    PolicyConfig,
    ThermalConfig,
)
from adaptive_csp.control.dvfs import EnergyCurve, JointDVFSPolicy, joint_policy
from adaptive_csp.control.governors import ConfidenceGovernor, ContentionGovernor, Governor, StaticCap
from adaptive_csp.control.ladder import HysteresisLadder, level_for_budget
from adaptive_csp.control.latency import LatencyGovernor
from adaptive_csp.control.policy import Decision, Policy, RuntimeStats
from adaptive_csp.control.presets import (
    DEFAULT_POLICY,
    PRESETS,
    build_policy,
    create_policy,
    get_policy,
    load_config,
    preset_dir,
    register_policy,
    registered,
)
from adaptive_csp.control.thermal import ThermalPI, ThermalStepWise

__all__ = [
    "Policy", "Decision", "RuntimeStats", "GovernedPolicy", "Governor", "HysteresisLadder",
    "level_for_budget", "ThermalPI", "ThermalStepWise", "LatencyGovernor", "BatteryGovernor",
    "ContentionGovernor", "ConfidenceGovernor", "StaticCap", "PolicyConfig", "LadderConfig", "ThermalConfig", "LatencyConfig",
    "BatteryConfig", "ContentionConfig", "ConfidenceConfig", "PRESETS", "DEFAULT_POLICY", "create_policy", "get_policy", "register_policy", "registered",
    "load_config", "build_policy", "preset_dir", "JointDVFSPolicy", "joint_policy", "EnergyCurve",
]
