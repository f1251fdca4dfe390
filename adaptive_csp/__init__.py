"""adaptive-csp: one elastic CSP network whose compute is chosen per call by a resource-aware policy."""

from adaptive_csp.levels import Level, LevelLadder, Rung, StageLevel

__version__ = "0.1.0"

__all__ = ["Level", "LevelLadder", "Rung", "StageLevel", "__version__"]
