"""Heads: the stage after the engine, one interface for both tasks.

A head turns what a level output into the runner's answer, in two steps:

* ``decode(y, geometry, level, probs)`` — post-processing (timed as the call's ``postprocess`` stage).
  Returns ``(payload, batch, confidence, count, summary)``: what ``results`` needs, the number of frames,
  the confidence reported to policies (``RuntimeStats.confidence``) and content demand, the number of
  detections content demand sees (None for a classifier) and the raw telemetry result.
* ``results(payload, batched, level, latency_ms, reason, times)`` — one result per frame
  (:mod:`.results`), a list for a batch.

:class:`ClassifyHead`: softmax (or, on the ONNX frame path whose graph already did it, only top-1) →
:class:`~adaptive_csp.runtime.results.Prediction`.  Its confidence is the top-1 probability (a batch: the
lowest).

:class:`DetectHead`: a level's ``N×A×(4+K)`` output (boxes ``xyxy`` in model-input pixels, then K class
scores in [0, 1]) → :class:`~adaptive_csp.runtime.results.Detections` through :class:`DetectionDecoder`:
the detector's own post-processing (:func:`adaptive_csp.detect.boxes.postprocess`: score threshold,
class-aware NMS, ``max_det``), then each image's boxes mapped into its frame with the geometry the
preprocess stage returned (:meth:`adaptive_csp.runtime.preprocess.Preprocessor.frame_geometry`), clipped to
the frame.  Its confidence is the mean score of a frame's kept detections, 1.0 for a frame with none
(nothing uncertain was seen); for a batch, the lowest frame's.

A second stage may name the kept boxes (``DetectHead(decoder, namer)``, :mod:`adaptive_csp.runtime.namer`):
each box's crop of the model input, named by a classifier trained on such crops, fused with the detector's
own class scores; NMS runs again on the new names, and the time counts in ``postprocess``.

Thresholds per rung: a detector checkpoint's ``meta["postprocess"]`` may hold ``"per_level"``, a table
``{level key: {"score_thresh": t, "iou_thresh": u}}`` chosen on validation for each rung
(:func:`adaptive_csp.train.detect_thresholds.select_thresholds`); :meth:`DetectionDecoder.from_meta`
reads it against the runner's ladder, and each call decodes with the thresholds of the rung that ran.  A
rung without an entry uses the file's ``score_thresh`` / ``iou_thresh``; a ``score_thresh=`` /
``iou_thresh=`` given to the runner (:class:`DetectOptions`) overrides every rung.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptive_csp.runtime.results import Detection, Detections, Prediction, detection_confidence, prediction

__all__ = ["Head", "ClassifyHead", "DetectHead", "DetectOptions", "DetectionDecoder", "make_head", "to_frame",
           "detection_confidence", "Detection", "POSTPROCESS_DEFAULTS"]

#: a detector's post-processing when neither the runner's call nor the model's ``meta["postprocess"]`` sets it
POSTPROCESS_DEFAULTS = {"score_thresh": 0.25, "iou_thresh": 0.6, "max_det": 100}

_exp = math.exp


class Head:
    """The interface both heads share (module docstring).  ``needs_geometry``: the head maps results into
    each frame, so the preprocess stage must return the frames' geometry."""

    task = ""
    needs_geometry = False

    def decode(self, y: np.ndarray, geometry: Any, level: int, probs: bool, x: Any = None) -> tuple:
        """``x``: the engine's input (a second stage may read it; ``probs``: it came by the frame path)."""
        raise NotImplementedError

    def results(self, payload: Any, batched: bool, level: int, latency_ms: float, reason: str,
                times: tuple[float, ...] | None) -> Any:
        raise NotImplementedError


# classification -------------------------------------------------------------------------------------------
def _softmax(logits: np.ndarray) -> tuple[list[np.ndarray], list[int], list[float]]:
    """Read-only float32 probability rows, top-1 labels and scores of N×K logits: the one softmax for every
    engine.  Batch 1 stays in plain Python floats until one array is made: in a camera loop the code runs
    with caches cold from the forward pass, where every numpy call costs several µs."""
    if logits.shape[0] == 1:
        row = logits[0].tolist()
        mx = max(row)
        e = [_exp(v - mx) for v in row]
        tot = sum(e)
        p = [v / tot for v in e]
        j = p.index(max(p))
        pa = np.array(p, dtype=np.float32)
        pa.flags.writeable = False
        return [pa], [j], [float(pa[j])]
    lg = logits.astype(np.float64)
    e = np.exp(lg - lg.max(1, keepdims=True))
    e /= e.sum(1, keepdims=True)
    j = e.argmax(1)
    pa = e.astype(np.float32)
    pa.flags.writeable = False
    return list(pa), j.tolist(), pa[np.arange(len(j)), j].tolist()


def _top1(probs: np.ndarray) -> tuple[list[np.ndarray], list[int], list[float]]:
    """Like :func:`_softmax` for probabilities already computed (a frame graph's ``probs``, a fresh array)."""
    probs.flags.writeable = False
    if probs.shape[0] == 1:
        row = probs[0].tolist()
        s = max(row)
        return [probs[0]], [row.index(s)], [s]
    j = probs.argmax(1)
    return list(probs), j.tolist(), probs[np.arange(len(j)), j].tolist()


class ClassifyHead(Head):
    """Logits (or a frame graph's probabilities) → :class:`Prediction` per frame, named by ``class_names``."""

    task = "classify"

    def __init__(self, class_names: Sequence[str] | None = None):
        self.class_names = [str(n) for n in class_names] if class_names else None

    def decode(self, y: np.ndarray, geometry: Any, level: int, probs: bool, x: Any = None) -> tuple:
        top = _top1(y) if probs else _softmax(y)
        scores = top[2]
        return top, len(scores), scores[0] if len(scores) == 1 else min(scores), None, ("cls", top[1], scores)

    def results(self, payload: Any, batched: bool, level: int, latency_ms: float, reason: str,
                times: tuple[float, ...] | None) -> Prediction | list[Prediction]:
        pa, labels, scores = payload
        names = self.class_names
        if not batched:  # the camera loop: one frame, no lists on the way out
            lb = labels[0]
            return prediction(lb, names[lb] if names and lb < len(names) else str(lb), scores[0], pa[0], level,
                              latency_ms, reason, times)
        return [prediction(lb, names[lb] if names and lb < len(names) else str(lb), sc, pr, level, latency_ms,
                           reason, times) for pr, lb, sc in zip(pa, labels, scores, strict=True)]


# detection ------------------------------------------------------------------------------------------------
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
    """Engine output + frame geometry → per-frame ``(boxes, scores, labels, class names)`` in frame coordinates.

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

    def decode(self, out: np.ndarray, geometry: Sequence[Any], level: int | None = None,
               rename: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
               ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]]:
        """Decode ``out`` for frames of ``geometry`` (one :class:`~adaptive_csp.runtime.preprocess.FrameGeometry`
        per image); the ladder index ``level`` that produced it picks the rung's thresholds.

        ``rename(image index, boxes, scores, class scores, score_thresh, iou_thresh, max_det, multi_label)``:
        a second stage that names each image's kept boxes (input pixels, one per location: the detector's
        best class; ``class scores`` k×K, the detector's for every class) and returns ``(boxes, scores,
        labels)`` (:meth:`adaptive_csp.runtime.namer.CropNamer.relabel`)."""
        from adaptive_csp.detect.boxes import postprocess

        out = np.asarray(out)
        if out.ndim != 3 or out.shape[-1] < 5 or out.shape[0] != len(geometry):
            raise ValueError(f"a detector level must output N×A×(4+K) for N = {len(geometry)} frames, got shape "
                             f"{out.shape}")
        k = self.class_names and len(self.class_names)
        if k and out.shape[-1] != 4 + k:
            raise ValueError(f"the detector outputs {out.shape[-1] - 4} class scores but meta['class_names'] "
                             f"has {k} names")
        res = []
        st, it = self.thresholds(level)
        named = rename is not None
        kept = postprocess(out, st, it, self.max_det, self.multi_label and not named, with_index=named)
        for j, (k, g) in enumerate(zip(kept, geometry, strict=True)):
            b, s, lb = k[:3]
            bn, sn, labels = b.float().numpy(), s.float().numpy().astype(np.float32), lb.numpy().astype(np.int64)
            if named:  # the second stage, with the detector's class scores of each kept box
                bn, sn, labels = rename(j, bn, sn, out[j][k[3].numpy(), 4:], st, it, self.max_det, self.multi_label)
            res.append((_readonly(to_frame(bn, g.mapping, g.h, g.w)), _readonly(sn), _readonly(labels),
                        [self.name(i) for i in labels.tolist()]))
        return res

    def __call__(self, out: np.ndarray, sizes: Sequence[tuple[int, int]],
                 geometry: Callable[[int, int], tuple[float, float, float, float]], level: int | None = None
                 ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]]:
        """:meth:`decode` for frames of ``sizes`` ``(H, W)`` mapped by ``geometry(H, W) -> (ox, oy, sx, sy)``
        (:meth:`~adaptive_csp.runtime.preprocess.Preprocessor.geometry`)."""
        from adaptive_csp.runtime.preprocess import FrameGeometry

        return self.decode(out, [FrameGeometry(int(h), int(w), *geometry(h, w)) for h, w in sizes], level)


@dataclass(frozen=True)
class DetectOptions:
    """A detector's post-processing, given to the runner (``AdaptiveRunner(detect=DetectOptions(...))`` or
    the flat keywords of the same names).  None: the model's ``meta["postprocess"]`` (a bundle's), else
    :data:`POSTPROCESS_DEFAULTS`.  ``score_thresh`` in [0, 1]; ``iou_thresh`` class-aware NMS overlap in
    (0, 1]; at most ``max_det`` detections per frame; ``multi_label``: a box may be reported once per class
    above the threshold (COCO evaluation), not only for its best class.  Validated for every model, used
    only by a detector."""

    score_thresh: float | None = None
    iou_thresh: float | None = None
    max_det: int | None = None
    multi_label: bool = False
    #: the second stage naming the boxes (:mod:`adaptive_csp.runtime.namer`): "auto" — the one the
    #: detector's ``meta["namer"]`` names, if any; None / False — none, the detector's own classes; a
    #: shipped name, a checkpoint path, a classifier module or a ``CropNamer``
    namer: Any = "auto"

    def decoder(self, meta: Mapping[str, Any], class_names: Sequence[str] | None, levels: Iterable[Any]
                ) -> DetectionDecoder:
        """The decoder for a model's ``meta`` (its per-rung table matched to ``levels``), these options over it."""
        post = {**POSTPROCESS_DEFAULTS, **(meta.get("postprocess") or {})}
        return DetectionDecoder.from_meta(post, class_names, levels, self.score_thresh, self.iou_thresh,
                                          self.max_det, self.multi_label)


class DetectHead(Head):
    """A level's ``N×A×(4+K)`` output → :class:`Detections` per frame, in that frame's pixels."""

    task = "detect"
    needs_geometry = True

    def __init__(self, decoder: DetectionDecoder, namer: Any = None, mean: Sequence[float] = (0.0,),
                 std: Sequence[float] = (1.0,)):
        self.decoder = decoder
        #: a :class:`~adaptive_csp.runtime.namer.CropNamer` naming the kept boxes, or None (the detector's
        #: own classes); ``mean`` / ``std``: the detector's normalisation, to see the input's pixels again
        self.namer = namer
        self.mean, self.std = tuple(mean), tuple(std)
        if namer is not None and decoder.class_names and namer.class_names \
                and list(namer.class_names) != list(decoder.class_names):
            raise ValueError(f"the namer's classes {namer.class_names} are not the detector's "
                             f"{decoder.class_names}")

    def decode(self, y: np.ndarray, geometry: Any, level: int, probs: bool, x: Any = None) -> tuple:
        rename = None
        if self.namer is not None and x is not None:
            namer, mean, std = self.namer, self.mean, self.std
            grey_input = namer.grey_input  # the input's grey picture, as the namer reads it

            def rename(j: int, b: np.ndarray, s: np.ndarray, cls: Any, *post: Any) -> tuple:
                if not len(b):  # nothing kept: no picture to rebuild, no crops
                    return b, s, np.zeros(0, np.int64)
                return namer.relabel(grey_input(x[j], probs, mean, std), b, s, cls, level, *post)

        per = self.decoder.decode(y, geometry, level, rename)  # the rung's own thresholds
        n = sum(len(d[1]) for d in per)
        mean = float(sum(float(d[1].sum()) for d in per) / n) if n else None
        return (per, len(per), min(detection_confidence(d[1]) for d in per), max(len(d[1]) for d in per),
                ("det", n, mean))

    def results(self, payload: Any, batched: bool, level: int, latency_ms: float, reason: str,
                times: tuple[float, ...] | None) -> Detections | list[Detections]:
        out = [Detections(b, s, lb, names, level, latency_ms, reason, None, times) for b, s, lb, names in payload]
        return out if batched else out[0]


def make_head(meta: Mapping[str, Any], class_names: Sequence[str] | None, levels: Iterable[Any],
              options: DetectOptions | None = None, namer: Any = None, mean: Sequence[float] = (0.0,),
              std: Sequence[float] = (1.0,)) -> Head:
    """The head for a model's ``meta["task"]``.  The detect options are validated for every task (a bad
    ``score_thresh`` fails the same way whatever the model).  ``namer``: a detector's second stage
    (:func:`adaptive_csp.runtime.namer.resolve_namer`), ``mean`` / ``std`` its normalisation."""
    decoder = (options or DetectOptions()).decoder(meta, class_names, levels)
    if str(meta.get("task", "classify")) == "detect":
        return DetectHead(decoder, namer, mean, std)
    return ClassifyHead(class_names)
