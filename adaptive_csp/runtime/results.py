"""What one ``AdaptiveRunner.infer`` call answers: a :class:`Prediction` (a classifier) or :class:`Detections`
(a detector), one per frame.

Both carry the level that ran, the call's latency and the reason for the level, and ``times``: the
``time.perf_counter`` stamps at the stage boundaries of the call (start, after preprocess, after the
decision, after the engine, after post-processing).  :attr:`Prediction.speed` turns them into milliseconds
per stage, the way Ultralytics' predictor reports ``speed``; a batch's results share the whole call's
stamps, as they share ``latency_ms``.  Raw stamps keep the hot path to one tuple per call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

__all__ = ["Prediction", "Detections", "Detection", "STAGES", "stage_ms", "detection_confidence", "prediction"]

#: the stages of one call, in order; ``times`` has one stamp more than there are stages
STAGES = ("preprocess", "decide", "inference", "postprocess")


def stage_ms(times: Sequence[float] | None) -> dict[str, float] | None:
    """``{stage: milliseconds}`` from a call's stage stamps (None when there are none)."""
    if not times:
        return None
    return {s: (times[i + 1] - times[i]) * 1000.0 for i, s in enumerate(STAGES)}


@dataclass(frozen=True, slots=True)
class Prediction:
    label: int
    class_name: str
    score: float  # top-1 probability
    probs: np.ndarray  # class probabilities (float32, read-only view)
    level: int  # ladder index that ran
    latency_ms: float  # this infer call: preprocess + decide + forward + softmax (the whole batch)
    reason: str  # why this level (the binding constraint, or a fault)
    frame_index: int | None = None  # set by stream()
    times: tuple[float, ...] | None = None  # the call's stage stamps (module docstring)

    @property
    def speed(self) -> dict[str, float] | None:
        """Milliseconds per stage of the call: ``{preprocess, decide, inference, postprocess}``."""
        return stage_ms(self.times)


_new = object.__new__
_s_label, _s_name, _s_score, _s_probs, _s_level, _s_latency, _s_reason, _s_index, _s_times = (
    getattr(Prediction, f.name).__set__ for f in fields(Prediction))


def prediction(label: int, class_name: str, score: float, probs: np.ndarray, level: int, latency_ms: float,
               reason: str, times: tuple[float, ...] | None = None) -> Prediction:
    """``Prediction(label, class_name, score, probs, level, latency_ms, reason, None, times)``, built for the
    camera loop: each slot written through its descriptor, where a frozen dataclass's generated
    ``__init__`` calls ``object.__setattr__`` per field (the dearest step of building a result)."""
    p = _new(Prediction)
    _s_label(p, label)
    _s_name(p, class_name)
    _s_score(p, score)
    _s_probs(p, probs)
    _s_level(p, level)
    _s_latency(p, latency_ms)
    _s_reason(p, reason)
    _s_index(p, None)
    _s_times(p, times)
    return p


class Detection(NamedTuple):
    """One detection: ``box`` ``(x1, y1, x2, y2)`` in frame pixels, its score, label and class name."""

    box: tuple[float, float, float, float]
    score: float
    label: int
    class_name: str


@dataclass(frozen=True, slots=True)
class Detections:
    """One frame's detections, best first.  ``len(d)`` is their number; iterating yields :class:`Detection`."""

    boxes: np.ndarray  # k×4 float32, xyxy in the original frame's pixel coordinates (read-only)
    scores: np.ndarray  # k float32 (read-only)
    labels: np.ndarray  # k int64 (read-only)
    class_names: list[str]  # the k labels' names
    level: int  # ladder index that ran
    latency_ms: float  # this infer call: preprocess + decide + forward + decode (the whole batch)
    reason: str  # why this level (the binding constraint, or a fault)
    frame_index: int | None = None  # set by stream()
    times: tuple[float, ...] | None = None  # the call's stage stamps (module docstring)

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[Detection]:
        for b, s, lb, n in zip(self.boxes.tolist(), self.scores.tolist(), self.labels.tolist(), self.class_names,
                               strict=True):
            yield Detection(tuple(b), s, lb, n)

    @property
    def confidence(self) -> float:
        """:func:`detection_confidence` of these detections."""
        return detection_confidence(self.scores)

    @property
    def speed(self) -> dict[str, float] | None:
        """Milliseconds per stage of the call: ``{preprocess, decide, inference, postprocess}``."""
        return stage_ms(self.times)


def detection_confidence(scores: Sequence[float] | np.ndarray) -> float:
    """The mean score of a frame's kept detections; 1.0 when there are none (nothing uncertain was seen)."""
    return float(np.mean(scores)) if len(scores) else 1.0
