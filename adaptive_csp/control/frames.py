"""Frame rate as a second knob: the frame interval a governed policy asks for (``Decision.frame_interval``).

Rule: run every ``steady_interval``-th frame while the scene is steady (``RuntimeStats.scene_steady``,
content demand at its cheapest level: nothing moves, or nothing is there), and every ``k``-th frame when a
governor's energy budget cannot hold even the cheapest rung at every frame (its ``interval``, e.g.
:class:`~adaptive_csp.control.battery.BatteryGovernor`); the larger of the two, never more than
``max_interval`` and never so large that fewer than ``min_fps`` frames per second of the source run
(``k ≤ fps / min_fps``).  Without the source's frame rate (``RuntimeStats.fps`` None) every frame runs:
``min_fps`` could not be honoured.  A frame that does not run is answered by the last result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from adaptive_csp.control.policy import RuntimeStats

__all__ = ["FrameRule"]


class FrameRule:
    def __init__(self, min_fps: float = 5.0, steady_interval: int = 2, max_interval: int = 8,
                 energy: bool = True):
        if not min_fps > 0:
            raise ValueError(f"min_fps must be > 0, got {min_fps!r}")
        if int(steady_interval) < 1 or int(max_interval) < 1:
            raise ValueError("steady_interval and max_interval must be >= 1")
        self.min_fps = float(min_fps)
        self.steady_interval, self.max_interval = int(steady_interval), int(max_interval)
        self.energy = bool(energy)

    def most(self, fps: float | None) -> int:
        """The largest interval that keeps ``min_fps`` at a source of ``fps`` (1 when unknown)."""
        if fps is None or not 0 < fps < math.inf:
            return 1
        return max(1, min(self.max_interval, int(math.floor(fps / self.min_fps + 1e-9))))

    def choose(self, stats: RuntimeStats, governors: Sequence[object]) -> tuple[int, str]:
        """``(interval, why)``; why is "" for 1."""
        most = self.most(stats.fps)
        if most <= 1:
            return 1, ""
        k, why = 1, ""
        if stats.scene_steady and self.steady_interval > 1:
            k, why = self.steady_interval, "steady scene"
        if self.energy:
            for g in governors:
                gk = getattr(g, "interval", 1)
                if gk > k:
                    k, why = gk, f"{g.name} budget below the cheapest rung"
        k = min(k, most)
        if k <= 1:
            return 1, ""
        return k, f"every {k}th frame: {why} (min {self.min_fps:g} fps)"
