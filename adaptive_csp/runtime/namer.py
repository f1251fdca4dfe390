"""The second stage of a detector: a classifier that names each box from a crop of the model input.

A detector finds the garments far better than it names them (class-agnostic mAP@.5 0.95 against 0.75
with classes on the test scenes; ``docs/results/detection.md``).  :class:`CropNamer` cuts a square grey
crop around every kept box from the same pixels the detector saw (:func:`adaptive_csp.data.crops.item_crops`,
as ``meta["namer"]`` of the namer's checkpoint says: size, supersampling, margin), runs an elastic
classifier trained on such crops (``adaptive-csp train-namer``) on its own engine, of the same kind as the
detector's, and returns each box's class probabilities.

Levels: the namer is elastic too, and runs the rung whose relative cost is the detector rung's
(:meth:`CropNamer.level_for`): the cheapest namer rung that costs at least the same fraction of its full
rung, so the detector's cheapest rung names with the namer's cheapest and full with full.  Its time is
part of the call's ``postprocess`` stage.

Mirror averaging (``flip``): each crop and its left-right mirror run in one batch and their softmaxes are
averaged — garments are named the same either way round; on 1 763 validation crops it names 1.1–1.3 points
more items at the full rung (the shipped namer and the one before it) for one batch of twice the crops.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_csp.data.crops import item_crops
from adaptive_csp.runtime.heads import _softmax

__all__ = ["CropNamer", "grey_input", "resolve_namer"]

log = logging.getLogger("adaptive_csp.runtime")


def grey_input(x: np.ndarray, on_frame_path: bool, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """One preprocessed image as the grey [0, 1] picture it came from: on the frame path ``h×w×C`` on the
    0..255 scale, else ``C×h×w`` normalised with ``mean`` / ``std`` (the channel mean either way, so the
    colour order does not matter)."""
    from adaptive_csp.engines.base import as_numpy

    a = as_numpy(x)
    if on_frame_path:
        return a.mean(-1) / 255.0
    m = np.asarray(mean, np.float32).reshape(-1, 1, 1)
    s = np.asarray(std, np.float32).reshape(-1, 1, 1)
    return (a * s + m).mean(0)


class CropNamer:
    """Class probabilities of boxes, from an elastic classifier trained on item crops (module docstring).

    model: a classifier whose ``meta["namer"]`` says how its crops are cut (``train-namer`` writes it);
    engine / device / engine_options: as for the runner (the detector's engine name, so both run alike);
    costs: the detector ladder's relative costs, matched to the namer's rungs; detector_weight: how much
    the detector's own class scores count beside the namer's (:meth:`names`); flip: average each crop's
    softmax with its left-right mirror's (module docstring)."""

    grey_input = staticmethod(grey_input)  # for the head, which never imports this module (no import circle)

    def __init__(self, model: Any, costs: Sequence[float], engine: str = "auto", device: Any = None,
                 engine_options: dict | None = None, detector_weight: float = 0.0, flip: bool = False):
        from adaptive_csp.engines.select import create_engine

        meta = dict(getattr(model, "meta", None) or {})
        spec = meta.get("namer")
        if not isinstance(spec, dict):
            raise ValueError("a namer needs a classifier trained by `adaptive-csp train-namer` "
                             "(its meta has no 'namer' entry)")
        if str(meta.get("task", "classify")) != "classify":
            raise ValueError(f"a namer must be a classifier, got a {meta.get('task')!r} model")
        pre = meta.get("preprocess") or {}
        self.size = int(spec.get("size", 28))
        self.supersample = int(spec.get("supersample", 4))
        self.margin = float(spec.get("margin", 1.0))
        size = tuple(pre.get("input_size", (self.size, self.size)))
        if size != (self.size, self.size) or int(pre.get("in_chans", 1)) != 1:
            raise ValueError(f"namer crops are {self.size}×{self.size} grey, but the model reads "
                             f"{pre.get('in_chans')}×{size}")
        self.mean = float(pre.get("mean", [0.0])[0])
        self.std = float(pre.get("std", [1.0])[0])
        self.class_names = [str(n) for n in meta.get("class_names") or ()]
        if isinstance(detector_weight, bool) or not isinstance(detector_weight, (int, float)) \
                or not 0 <= detector_weight <= 10:
            raise ValueError(f"detector_weight must be a number in [0, 10], got {detector_weight!r}")
        #: exponent of the detector's own class scores in :meth:`names` (0: the namer alone)
        self.detector_weight = float(detector_weight)
        if not isinstance(flip, bool):
            raise ValueError(f"flip must be True or False, got {flip!r}")
        #: average each crop's class probabilities with its mirror image's (:meth:`probs`)
        self.flip = flip
        self.model = model
        self.engine = create_engine(model, engine, device, **(engine_options or {}))
        own = self.engine.ladder.costs
        self.levels = [self._match(c, own) for c in costs]

    @staticmethod
    def _match(cost: float, own: Sequence[float]) -> int:
        for j, c in enumerate(own):
            if c >= cost - 1e-9:
                return j
        return len(own) - 1

    def level_for(self, detector_level: int) -> int:
        """The namer's ladder index for a call at the detector's ladder index ``detector_level``."""
        return self.levels[min(max(int(detector_level), 0), len(self.levels) - 1)]

    def crops(self, grey: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``k×1×size×size`` normalised float32 namer inputs of ``boxes`` (xyxy, pixels of ``grey``)."""
        c = item_crops(grey, boxes, self.size, self.supersample, self.margin)
        return ((c - self.mean) / self.std)[:, None]

    def batch(self, grey: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """What the namer's engine runs for ``boxes``: :meth:`crops`, followed by their mirror images when
        :attr:`flip` is set (``2k`` rows)."""
        c = self.crops(grey, boxes)
        return np.ascontiguousarray(np.concatenate([c, c[..., ::-1]]) if self.flip else c)

    def probs(self, grey: np.ndarray, boxes: np.ndarray, detector_level: int) -> np.ndarray:
        """``k×K`` float32 class probabilities of ``boxes`` in the grey [0, 1] image ``grey``."""
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        if not len(b):
            return np.zeros((0, len(self.class_names)), np.float32)
        logits = self.engine.run(self.batch(grey, b), self.level_for(detector_level))
        p = np.stack(_softmax(np.asarray(logits))[0])  # the runtime's one softmax (runtime.heads)
        return (p[:len(b)] + p[len(b):]) / 2 if self.flip else p

    def names(self, grey: np.ndarray, boxes: np.ndarray, detector_level: int, det_cls: Any = None) -> np.ndarray:
        """``k×K`` class probabilities of ``boxes``: the namer's, times the detector's own class scores
        ``det_cls`` (k×K, normalised per box) to the power :attr:`detector_weight`, renormalised (a product
        of experts; weight 0: the namer's alone)."""
        p = self.probs(grey, boxes, detector_level)
        if det_cls is None or self.detector_weight == 0 or not len(p):
            return p
        q = np.asarray(det_cls, np.float64).reshape(p.shape)
        q = np.maximum(q / np.maximum(q.sum(1, keepdims=True), 1e-12), 1e-12)
        f = p * q ** self.detector_weight
        return (f / np.maximum(f.sum(1, keepdims=True), 1e-30)).astype(np.float32)

    def relabel(self, grey: np.ndarray, boxes: np.ndarray, scores: np.ndarray, det_cls: Any, detector_level: int,
                score_thresh: float, iou_thresh: float, max_det: int, multi_label: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One image's kept boxes (input pixels), the detector's scores and class scores (``det_cls``, k×K
        or None) → ``(boxes, scores, labels)`` named by :meth:`names`: a box's score for class ``k`` is
        ``score · p_k`` (the detector's confidence that an item is there, times the probability that it is
        a ``k``); its best class (``multi_label``: every class) above ``score_thresh``, then class-aware
        NMS at ``iou_thresh`` again (two boxes the detector named apart may now share a name), best first,
        at most ``max_det``."""
        import torch

        from adaptive_csp.detect.boxes import batched_nms

        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        p = self.names(grey, b, detector_level, det_cls) * np.asarray(scores, np.float32).reshape(-1, 1)
        if multi_label:
            i, lab = np.nonzero(p > score_thresh)
        else:
            i = np.arange(len(b))
            lab = p.argmax(1) if len(b) else np.zeros(0, np.int64)
            m = p[i, lab] > score_thresh
            i, lab = i[m], lab[m]
        bb, ss = b[i], p[i, lab].astype(np.float32)
        keep = batched_nms(torch.from_numpy(bb), torch.from_numpy(ss), torch.from_numpy(lab.astype(np.int64)),
                           iou_thresh)[:max_det].numpy()
        return bb[keep], ss[keep], lab[keep].astype(np.int64)

    def latency_ms(self, image_hw: Sequence[int], boxes: int = 3, rounds: int = 7) -> list[float]:
        """Per detector rung (this namer's ``costs`` order): milliseconds to name ``boxes`` boxes in an
        ``image_hw`` input — cut the crops and run the matched namer rung at batch ``boxes`` — measured
        here (warm, interleaved, medians; each namer rung once).  What a call's ``postprocess`` stage adds
        at that rung when it keeps ``boxes`` boxes: the runner adds it to the ladder the policy decides on
        (:meth:`AdaptiveRunner.calibrate`) and the demo to its simulated device's costs."""
        from adaptive_csp.util.timing import interleaved_medians

        if isinstance(boxes, bool) or not isinstance(boxes, int) or boxes < 1:
            raise ValueError(f"boxes must be an int >= 1, got {boxes!r}")
        h, w = (int(v) for v in image_hw)
        grey = np.random.default_rng(0).random((h, w), dtype=np.float32)
        side = max(4.0, min(h, w) / 4.0)
        xs = np.linspace(0.0, max(0.0, w - side), boxes)
        b = np.stack([xs, np.full(boxes, (h - side) / 2), xs + side, np.full(boxes, (h + side) / 2)], 1)
        own = sorted(set(self.levels))

        def call(j: int):
            return lambda: self.engine.run(self.batch(grey, b), j)

        ms = dict(zip(own, interleaved_medians([call(j) for j in own], rounds=rounds, iters=3, warmup=3),
                      strict=True))
        return [float(ms[j]) for j in self.levels]

    def close(self) -> None:
        self.engine.close()


def resolve_namer(option: Any, meta: dict, engine: Any, device: Any = None, engine_options: dict | None = None
                  ) -> tuple[CropNamer | None, bool]:
    """The runner's namer for ``DetectOptions.namer`` (``option``) and whether the runner made it (and
    closes it): None for a classifier, for None / False, and for "auto" when the detector's ``meta`` names
    none; a :class:`CropNamer` as given; else one over the model named (a shipped name or a checkpoint
    path, read by :func:`adaptive_csp.models.factory.pretrained`) or given (a classifier module), on an
    engine of the detector's engine's kind with the same options, its rungs matched to the detector's.
    ``meta["namer"]`` is a name / path, or ``{"model": ..., "detector_weight": w, "flip": bool}``
    (:meth:`CropNamer.names`, :meth:`CropNamer.probs`)."""
    if option is None or option is False or str(meta.get("task", "classify")) != "detect":
        return None, False
    if isinstance(option, CropNamer):
        return option, False
    weight, flip = 0.0, False
    if isinstance(option, str) and option == "auto":
        option = meta.get("namer")
        if not option:
            return None, False
        if isinstance(option, dict):  # {"model": name or path, "detector_weight": w, "flip": bool}
            weight, flip = option.get("detector_weight", 0.0), option.get("flip", False)
            option = option.get("model")
        if not isinstance(option, (str, Path)) or not str(option):
            raise ValueError(f"meta['namer'] must name a namer model, got {meta.get('namer')!r}")
        if importlib.util.find_spec("torch") is None:  # a bundle without torch: the namer is a torch checkpoint
            log.info("the detector names namer %r, but torch is not installed: using the detector's own classes",
                     option)
            return None, False
    model = option
    if isinstance(option, (str, Path)):
        from adaptive_csp.models.factory import pretrained

        model = pretrained(option)
    name = getattr(engine, "name", "auto")
    return CropNamer(model, engine.ladder.costs, name, device, engine_options, weight, flip), True
