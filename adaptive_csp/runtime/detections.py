"""Detections: what :class:`~adaptive_csp.runtime.AdaptiveRunner` returns for a detector, and how it gets there.

A detector level's output is ``N×A×(4+K)``: boxes ``xyxy`` in model-input pixels, then K per-class scores
in [0, 1].  :class:`DetectionDecoder` runs the detector's own post-processing
(:func:`adaptive_csp.detect.boxes.postprocess`: score threshold, class-aware NMS, ``max_det``) and maps
each image's boxes into its frame with the preprocessor's geometry
(:meth:`adaptive_csp.runtime.preprocess.Preprocessor.geometry`), clipped to the frame.

Thresholds per rung: a detector checkpoint's ``meta["postprocess"]`` may hold ``"per_level"``, a table
``{level key: {"score_thresh": t, "iou_thresh": u}}`` chosen on validation for each rung
(:func:`adaptive_csp.train.detect_thresholds.select_thresholds`); :meth:`DetectionDecoder.from_meta`
reads it against the runner's ladder, and each call decodes with the thresholds of the rung that ran.  A
rung without an entry uses the file's ``score_thresh`` / ``iou_thresh``; a ``score_thresh=`` /
``iou_thresh=`` given to the runner overrides every rung.

The confidence a detector reports to policies and to content demand (:func:`detection_confidence`): the
mean score of a frame's kept detections, 1.0 for a frame with none (nothing uncertain was seen); for a
batch, the lowest frame's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Detection", "Detections", "DetectionDecoder", "detection_confidence", "to_frame", "POSTPROCESS_DEFAULTS"]

#: a detector's post-processing when neither the runner's call nor the model's ``meta["postprocess"]`` sets it
POSTPROCESS_DEFAULTS = {"score_thresh": 0.25, "iou_thresh": 0.6, "max_det": 100}


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


def detection_confidence(scores: Sequence[float] | np.ndarray) -> float:
    """The mean score of a frame's kept detections; 1.0 when there are none."""
    return float(np.mean(scores)) if len(scores) else 1.0


def to_frame(boxes: np.ndarray, geometry: tuple[float, float, float, float], frame_h: int, frame_w: int) -> np.ndarray:
    """Boxes ``k×4`` xyxy in model-input pixels → frame pixels (``frame = o + s · input``), clipped to the frame."""
    ox, oy, sx, sy = geometry
    out = np.empty(boxes.shape, np.float32)
    out[:, 0::2] = np.clip(ox + sx * boxes[:, 0::2], 0.0, frame_w)
    out[:, 1::2] = np.clip(oy + sy * boxes[:, 1::2], 0.0, frame_h)
    return out


def _check_thresh(score_thresh: Any, iou_thresh: Any) -> tuple[float, float]:
    for what, v, lo_open in (("score_thresh", score_thresh, False), ("iou_thresh", iou_thresh, True)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 < v <= 1.0 if lo_open
                                                                         else 0.0 <= v <= 1.0):
            raise ValueError(f"{what} must be a number in {'(0, 1]' if lo_open else '[0, 1]'}, got {v!r}")
    return float(score_thresh), float(iou_thresh)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class DetectionDecoder:
    """Engine output + frame sizes → per-frame ``(boxes, scores, labels, class names)`` in frame coordinates.

    score_thresh: keep class scores above it (0..1); iou_thresh: class-aware NMS overlap (0..1];
    max_det: at most this many detections per frame (>= 1); multi_label: every class above the threshold
    may give a box, not only each box's best class (for COCO evaluation; see ``postprocess``).
    """

    def __init__(self, class_names: Sequence[str] | None = None, score_thresh: float = 0.25,
                 iou_thresh: float = 0.6, max_det: int = 100, multi_label: bool = False,
                 per_level: Mapping[int, tuple[float, float]] | None = None):
        self.score_thresh, self.iou_thresh = _check_thresh(score_thresh, iou_thresh)
        if isinstance(max_det, bool) or not isinstance(max_det, (int, np.integer)) or max_det < 1:
            raise ValueError(f"max_det must be an int >= 1, got {max_det!r}")
        self.class_names = [str(n) for n in class_names] if class_names else None
        self.max_det = int(max_det)
        self.multi_label = bool(multi_label)
        #: ladder index → (score_thresh, iou_thresh) of that rung; other rungs use the two above
        self.per_level: dict[int, tuple[float, float]] = {
            int(i): _check_thresh(*t) for i, t in (per_level or {}).items()}

    @classmethod
    def from_meta(cls, postprocess: Mapping[str, Any] | None, class_names: Sequence[str] | None,
                  levels: Iterable[Any] | None = None, score_thresh: float | None = None,
                  iou_thresh: float | None = None, max_det: int | None = None,
                  multi_label: bool = False) -> DetectionDecoder:
        """The decoder a model's ``meta["postprocess"]`` describes, its ``per_level`` table matched to
        ``levels`` (the ladder, by level key); explicit ``score_thresh`` / ``iou_thresh`` / ``max_det``
        override the file for every rung."""
        post = {**POSTPROCESS_DEFAULTS, **(postprocess or {})}
        table = post.get("per_level") or {}
        if not isinstance(table, Mapping):
            raise ValueError(f"postprocess['per_level'] must map level keys to thresholds, got {type(table).__name__}")
        base_s = post["score_thresh"] if score_thresh is None else score_thresh
        base_i = post["iou_thresh"] if iou_thresh is None else iou_thresh
        per: dict[int, tuple[float, float]] = {}
        for i, lv in enumerate(levels or ()):
            row = table.get(getattr(lv, "key", str(lv)))
            if row is not None:
                per[i] = (row.get("score_thresh", base_s) if score_thresh is None else score_thresh,
                          row.get("iou_thresh", base_i) if iou_thresh is None else iou_thresh)
        return cls(class_names, base_s, base_i, post["max_det"] if max_det is None else max_det, multi_label, per)

    def thresholds(self, level: int | None = None) -> tuple[float, float]:
        """``(score_thresh, iou_thresh)`` a call for ladder index ``level`` decodes with."""
        return self.per_level.get(level, (self.score_thresh, self.iou_thresh)) if level is not None \
            else (self.score_thresh, self.iou_thresh)

    def name(self, label: int) -> str:
        names = self.class_names
        return names[label] if names and 0 <= label < len(names) else str(label)

    def __call__(self, out: np.ndarray, sizes: Sequence[tuple[int, int]],
                 geometry: Callable[[int, int], tuple[float, float, float, float]], level: int | None = None
                 ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]]:
        """Decode ``out`` (the ladder index ``level`` that produced it picks the rung's thresholds)."""
        from adaptive_csp.detect.boxes import postprocess

        out = np.asarray(out)
        if out.ndim != 3 or out.shape[-1] < 5 or out.shape[0] != len(sizes):
            raise ValueError(f"a detector level must output N×A×(4+K) for N = {len(sizes)} frames, got shape "
                             f"{out.shape}")
        k = self.class_names and len(self.class_names)
        if k and out.shape[-1] != 4 + k:
            raise ValueError(f"the detector outputs {out.shape[-1] - 4} class scores but meta['class_names'] "
                             f"has {k} names")
        res = []
        st, it = self.thresholds(level)
        for (b, s, lb), (h, w) in zip(postprocess(out, st, it, self.max_det, self.multi_label), sizes, strict=True):
            labels = lb.numpy().astype(np.int64)
            res.append((_readonly(to_frame(b.float().numpy(), geometry(h, w), h, w)),
                        _readonly(s.float().numpy().astype(np.float32)), _readonly(labels),
                        [self.name(i) for i in labels.tolist()]))
        return res
