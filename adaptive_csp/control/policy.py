"""The policy interface: readings + runtime stats + ladder → a level index, with its reason.

Policies decide; they never touch a model, a sensor or a clock.  They may keep state of their own
(hysteresis, integrators, cooldown timers); time comes in through ``RuntimeStats.now`` so the same
object runs under the real clock in :class:`~adaptive_csp.AdaptiveRunner` and under the simulated clock
in :mod:`adaptive_csp.sim`.  A policy object is driven by one caller at a time (the runner serialises
calls to ``decide``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings

__all__ = ["RuntimeStats", "Decision", "Policy"]


@dataclass(frozen=True)
class RuntimeStats:
    """What the runtime knows about itself when it asks for a decision."""

    now: float  # seconds on the caller's clock (monotonic in the runner, simulated in sim)
    level: int  # the level index that ran last
    latencies_ms: tuple[float, ...] = ()  # recent inference latencies, oldest first
    confidence: float | None = None  # last prediction's top-1 probability
    deadline_ms: float | None = None  # the runner's per-frame deadline, if any
    frequency: float | None = None  # current DVFS frequency as a fraction of f_max, if known
    fps: float | None = None  # frames per second the source offers (processed or not), if known
    scene_steady: bool | None = None  # content demand: the scene asks for the cheapest level (steady,
    # confident or empty); None = no content signal
    frame_interval: int = 1  # the frame interval in force (every k-th frame runs)


@dataclass(frozen=True)
class Decision:
    """A level index and the reason it was chosen (which constraint bound it).

    ``frame_interval``: run every k-th frame (1 = every frame); the frames between are answered by the
    last result.  A policy never asks for an interval that would run fewer than its ``min_fps`` frames per
    second of the source (it asks for 1 when it does not know the source's frame rate).
    """

    level: int
    reason: str
    frequency: float | None = None  # requested DVFS frequency (fraction of f_max), None = leave it
    frame_interval: int = 1

    def __post_init__(self) -> None:
        k = self.frame_interval
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Decision.frame_interval must be an int >= 1, got {k!r}")


class Policy(ABC):
    """Base class of all policies.

    ``safe_level`` is where the runner falls back when sensors or the policy fail; as an index it may
    be negative (``-1`` = full level) and is resolved against the ladder with :meth:`safe_index`.
    """

    name: str = "policy"
    safe_level: int = 0

    @abstractmethod
    def decide(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> Decision:
        """Choose a level index of ``ladder``."""

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget internal state (integrators, timers)."""

    def safe_index(self, ladder: LevelLadder) -> int:
        return ladder.clamp(self.safe_level % len(ladder) if self.safe_level < 0 else self.safe_level)
