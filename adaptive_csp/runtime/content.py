"""Content-aware demand: what the *scene* asks for, below the policy's resource cap.

The policy answers "how much compute may I spend" (battery, heat, deadline); this answers "how much does
this scene need".  The runner runs ``min(policy cap, demand)``.

- **Scene change**: the mean absolute difference between consecutive model inputs (0..1 pixel units) above
  ``change`` → demand jumps to the full level and is held there for ``hold_frames`` frames.
- **Low confidence**: a top-1 probability below ``low_conf`` → demand rises ``up_step`` levels above the
  level that produced it, held for ``hold_frames`` frames.
- **Steady and confident**: after ``steady_frames`` consecutive frames with a small difference
  (below ``still``) and a confidence of at least ``high_conf``, demand falls one level (down to
  ``min_level``) and the count starts again — so it falls slowly and rises at once.
- **Empty scene** (optional, ``empty_std``): a model input whose pixel standard deviation is below it
  (a bare conveyor belt, a dark room) drops demand to ``min_level`` at once — there is nothing to classify;
  the first frame that is not empty again counts as a scene change (something arrived), however small
  its pixel difference.

Detectors (:meth:`ContentDemand.result_detections`, fed by the runner instead of :meth:`result`): the
confidence is the mean score of the frame's detections (1.0 with none) and goes through the same
low-confidence / steady rules, plus two on the number of detections:

- **Crowded** (optional, ``crowd``): at least ``crowd`` detections in a frame (overlaps, clutter) → demand
  jumps to the full level, held for ``hold_frames`` frames.
- **Nothing found** (optional, ``empty_frames``): that many consecutive frames without a detection, once
  any hold has run out, drop demand to ``min_level`` at once (an empty belt); a scene change brings the
  full level back when the next item arrives.

All thresholds are on the un-normalised [0, 1] image the model sees, so they do not depend on the camera's
resolution.  Not thread-safe by itself: the runner calls it under its lock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adaptive_csp.util.tensors import is_tensor

__all__ = ["ContentDemand"]


@dataclass
class ContentDemand:
    change: float = 0.08
    still: float = 0.03
    low_conf: float = 0.6
    high_conf: float = 0.85
    steady_frames: int = 8
    hold_frames: int = 5
    up_step: int = 2
    min_level: int = 0
    empty_std: float | None = 0.02
    crowd: int | None = None
    empty_frames: int | None = 4

    def __post_init__(self) -> None:
        if not 0 <= self.still <= self.change:
            raise ValueError(f"need 0 <= still ({self.still}) <= change ({self.change})")
        if not 0 <= self.low_conf <= self.high_conf <= 1:
            raise ValueError(f"need 0 <= low_conf ({self.low_conf}) <= high_conf ({self.high_conf}) <= 1")
        if self.steady_frames < 1 or self.hold_frames < 0 or self.up_step < 1 or self.min_level < 0:
            raise ValueError("steady_frames and up_step must be >= 1, hold_frames and min_level >= 0")
        for what, v in (("crowd", self.crowd), ("empty_frames", self.empty_frames)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{what} must be None or an int >= 1, got {v!r}")
        self.reset()

    def reset(self, full: int | None = None) -> None:
        self.full = full if full is not None else getattr(self, "full", 0)
        self.demand = self.full
        self.hold = 0
        self.steady = 0
        self.diff = 0.0
        self.empty = False
        self.nothing = 0  # consecutive frames without a detection (detectors)
        self.why = "content: start"
        self._prev: np.ndarray | None = None
        if not hasattr(self, "_std"):
            self._std = np.ones((1, 1, 1), np.float32)

    def bind(self, full: int, std: list[float] | tuple[float, ...]) -> ContentDemand:
        """Attach to a ladder's top index and the preprocessing's std (to undo normalisation)."""
        self.reset(full)
        self._std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
        return self

    # before inference -------------------------------------------------------------------------------------
    def observe(self, x) -> int:
        """Look at the model input (N×C×H×W numpy array or tensor, normalised; the last frame counts); return
        the demanded level."""
        last = x[-1]
        if is_tensor(last):
            last = last.detach().cpu().float().numpy()
        frame = np.array(last, dtype=np.float32)  # a copy: the caller may reuse its buffer
        std = self._std
        prev, self._prev = self._prev, frame
        same = prev is not None and prev.shape == frame.shape
        self.diff = float((np.abs(frame - prev) * std).mean()) if same else 0.0
        was_empty = self.empty
        self.empty = self.empty_std is not None and float((frame * std).std(ddof=1)) < self.empty_std
        if self.empty:
            self.demand, self.hold, self.steady = self.min_level, 0, 0
            self.why = "content: empty scene"
        elif self.diff > self.change or was_empty:
            self.demand, self.hold, self.steady, self.nothing = self.full, self.hold_frames, 0, 0
            self.why = (f"content: scene change {self.diff:.3f}" if self.diff > self.change
                        else "content: something arrived in an empty scene")
        return self.demand

    # after inference --------------------------------------------------------------------------------------
    def result(self, score: float, level: int) -> None:
        """Feed back the top-1 probability (the lowest of a batch) and the level that produced it."""
        if self.empty:
            return
        if score < self.low_conf:
            self.demand = max(self.demand, min(self.full, level + self.up_step))
            self.hold, self.steady = self.hold_frames, 0
            self.why = f"content: low confidence {score:.2f}"
            return
        if self.hold > 0:
            self.hold -= 1
            return
        if score >= self.high_conf and self.diff < self.still:
            self.steady += 1
            if self.steady >= self.steady_frames and self.demand > self.min_level:
                self.demand -= 1
                self.steady = 0
                self.why = "content: steady, confident"
        else:
            self.steady = 0

    def result_detections(self, count: int, confidence: float, level: int) -> None:
        """Detector feedback: the number of detections (the most of a batch), their confidence (mean score,
        1.0 with none; the lowest of a batch) and the level that produced them."""
        if self.empty:
            return
        if count == 0 and self.empty_frames is not None:
            if self.hold > 0:
                self.hold -= 1
                return
            self.nothing += 1
            self.steady = 0
            if self.nothing >= self.empty_frames and self.demand > self.min_level:
                self.demand = self.min_level
                self.why = f"content: nothing detected for {self.nothing} frames"
            return
        self.nothing = 0
        if self.crowd is not None and count >= self.crowd:
            self.demand, self.hold, self.steady = self.full, self.hold_frames, 0
            self.why = f"content: crowded scene ({count} detections)"
            return
        self.result(confidence, level)
