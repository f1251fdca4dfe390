"""The adaptive detector: the elastic CSP backbone + an elastic CSP-PAN neck + an FCOS head, one set of
weights, ``model(x, level)`` with the level an argument.

A detector :class:`~adaptive_csp.levels.Level` has one entry per backbone stage followed by one per neck
stage (``td4, td3, bu4, bu5``), and one network width that slices backbone, neck and head alike.  As for
classifiers there are two paths with the same numbers: training (first-k slicing, raw per-level maps for
the loss) and the prepared static module of a level (eval mode), whose output is what engines run::

    out = model.prepared(i)(x)     # N×A×(4+K): boxes xyxy in input pixels, per-class scores in [0, 1]

``A`` counts the anchor points of all pyramid levels (fixed for an input size), and a score is
``sqrt(sigmoid(class) · sigmoid(centerness))`` (FCOS).  :func:`adaptive_csp.detect.boxes.postprocess`
turns it into boxes after NMS.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from adaptive_csp.detect.head import FCOSHead, StaticHead
from adaptive_csp.detect.neck import CSPPAN, NECK_STAGES, StaticPAN
from adaptive_csp.levels import Level, LevelLadder, Rung
from adaptive_csp.models.config import ModelCfg, StageCfg, StemCfg
from adaptive_csp.models.elastic import ElasticModel, count_level_macs
from adaptive_csp.models.net import ElasticNet, StaticNet
from adaptive_csp.nn.elastic import ConvBN, scale_width

__all__ = ["DetCfg", "Detector", "StaticDetector", "DETECTOR_CFGS", "get_detector_cfg", "anchor_points",
           "detector_ladder", "count_det_macs"]


class DetCfg(BaseModel):
    """A detector: its backbone (the last three stages feed the neck), neck and head sizes, classes, input
    size and the FCOS assignment (``ranges``: max(l, t, r, b) in pixels splitting objects between the
    three pyramid levels; ``center_radius``: positives lie within this many strides of the box centre)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    backbone: ModelCfg
    neck_chs: int = Field(48, gt=0)
    neck_depth: int = Field(1, ge=0)
    head_chs: int = Field(48, gt=0)
    num_classes: int = Field(10, gt=0)
    input_size: tuple[int, int] = (96, 96)
    ranges: tuple[float, float] = (16.0, 32.0)
    center_radius: float = Field(1.5, gt=0)

    @model_validator(mode="after")
    def _check(self) -> DetCfg:
        if len(self.backbone.stages) < 3:
            raise ValueError("a detector backbone needs at least 3 stages (the neck reads the last three)")
        if not 0 < self.ranges[0] < self.ranges[1]:
            raise ValueError(f"ranges must be increasing and positive, got {self.ranges}")
        s = self.strides[-1]
        if self.input_size[0] % s or self.input_size[1] % s:
            raise ValueError(f"input_size {self.input_size} must be a multiple of the largest stride {s}")
        return self

    @property
    def strides(self) -> tuple[int, int, int]:
        st = self.backbone.stem.stride * (2 if self.backbone.stem.pool else 1)
        out = []
        for s in self.backbone.stages:
            st *= s.stride
            out.append(st)
        return tuple(out[-3:])

    @property
    def depths(self) -> tuple[int, ...]:
        return self.backbone.depths + (self.neck_depth,) * len(NECK_STAGES)

    @property
    def ratios(self) -> tuple[float, ...]:
        return self.backbone.ratios

    @property
    def widths(self) -> tuple[float, ...]:
        return self.backbone.widths

    @property
    def split_ratio(self) -> float:
        return self.backbone.split_ratio


def _det_backbone(stem: int, chs: tuple[int, ...], depths: tuple[int, ...]) -> ModelCfg:
    return ModelCfg(name="csp_det_backbone", cross=True, stem=StemCfg(out_chs=stem, kernel_size=3, stride=2),
                    stages=tuple(StageCfg(out_chs=c, depth=d, stride=2, block="dark") for c, d in zip(chs, depths)),
                    ratios=(0.25, 0.5), widths=(1 / 3, 0.5, 2 / 3, 1.0), act="relu", num_classes=1, in_chans=3,
                    input_size=(96, 96))


def _wide_backbone() -> ModelCfg:
    """The shipped classifier csp_wide's backbone (stem 24, stages 96 / 192 / 384 of depth 3, grouped
    downsamples, its ratios and widths) for RGB, with a stride-2 stem: pyramid strides 4 / 8 / 16, so a
    garment of ~56 input px meets the features at the scale the classifier learnt them (28 px at 2 / 4 / 8).
    ``--init-backbone csp_wide_fmnist`` fills it with the classifier's weights (detect/transfer.py)."""
    return ModelCfg(name="csp_det_wide_backbone", cross=True, stem=StemCfg(out_chs=24, kernel_size=3, stride=2),
                    stages=tuple(StageCfg(out_chs=c, depth=3, stride=2, block="dark", down_groups=g)
                                 for c, g in ((96, 1), (192, 6), (384, 12))),
                    ratios=(0.125, 0.25, 0.375, 0.5), widths=(1 / 3, 0.5, 2 / 3, 1.0), act="relu", num_classes=1,
                    in_chans=3, input_size=(128, 128))


# csp_det: pyramid strides 8 / 16 / 32 on 96 px belt frames (items of 12–48 px); widths 1/3 … 1 of a
# network wide enough that its top level's compute, not ONNX Runtime's per-op overhead, sets the latency.
DETECTOR_CFGS = {
    "csp_det": lambda: DetCfg(name="csp_det", backbone=_det_backbone(24, (48, 96, 192, 384), (1, 2, 2, 1)),
                              neck_chs=72, head_chs=72),
    # csp_det_wide: the classifier's backbone (above) on 128 px letterboxed frames of every size; objects
    # up to ~24 px go to stride 4, ~24–48 px to stride 8, larger to stride 16
    "csp_det_wide": lambda: DetCfg(name="csp_det_wide", backbone=_wide_backbone(), neck_chs=72, head_chs=72,
                                   input_size=(128, 128), ranges=(12.0, 24.0)),
    "csp_det_tiny": lambda: DetCfg(name="csp_det_tiny", backbone=_det_backbone(6, (6, 12, 12), (1, 1, 1)),
                                   neck_chs=12, head_chs=12, num_classes=3, input_size=(32, 32),
                                   ranges=(4.0, 8.0)),
}


def get_detector_cfg(name: str, **overrides) -> DetCfg:
    if name not in DETECTOR_CFGS:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTOR_CFGS))}")
    cfg = DETECTOR_CFGS[name]()
    return DetCfg.model_validate({**cfg.model_dump(), **overrides}) if overrides else cfg


def anchor_points(sizes: list[tuple[int, int]], strides: Iterable[int], device=None, dtype=None):
    """Centres of every map cell, level by level, row-major: (A×2 xy in input pixels, A strides)."""
    pts, sts = [], []
    for (h, w), s in zip(sizes, strides):
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * s
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * s
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        pts.append(torch.stack([xx.reshape(-1), yy.reshape(-1)], 1))
        sts.append(torch.full((h * w,), float(s), device=device, dtype=dtype))
    return torch.cat(pts), torch.cat(sts)


def flatten_maps(maps: list[torch.Tensor]) -> torch.Tensor:
    """Per-level ``N×C×H×W`` maps → one ``N×A×C`` tensor (levels concatenated, cells row-major)."""
    return torch.cat([m.flatten(2) for m in maps], 2).transpose(1, 2)


def decode_maps(maps: list[torch.Tensor], strides: tuple[int, ...]) -> torch.Tensor:
    """Raw head maps → ``N×A×(4+K)``: boxes xyxy in input pixels, per-class scores."""
    sizes = [tuple(m.shape[-2:]) for m in maps]
    pts, sts = anchor_points(sizes, strides, maps[0].device, maps[0].dtype)
    o = flatten_maps(maps)
    d = F.softplus(o[..., :4]) * sts[:, None]
    boxes = torch.cat([pts - d[..., :2], pts + d[..., 2:]], -1)
    scores = torch.sqrt(torch.sigmoid(o[..., 5:]) * torch.sigmoid(o[..., 4:5]))
    return torch.cat([boxes, scores], -1)


class StaticDetector(nn.Module):
    """One level of a :class:`Detector` as plain modules (what ``export`` returns and engines run)."""

    def __init__(self, backbone: StaticNet, neck: StaticPAN, head: StaticHead, strides: tuple[int, ...]):
        super().__init__()
        self.backbone, self.neck, self.head = backbone, neck, head
        self.strides = tuple(strides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return decode_maps(self.head(self.neck(self.backbone.forward_features(x))), self.strides)


def candidate_det_levels(cfg: DetCfg) -> list[Level]:
    """Levels a detector ladder is chosen from: per width, backbone blocks off / on, neck blocks off / on,
    the split ratio at its lower and full value."""
    nn_ = len(NECK_STAGES)
    out = []
    for w in cfg.widths:
        for r in dict.fromkeys((cfg.ratios[0], cfg.split_ratio)):
            for bb in (0, 1, None):
                for nk in (0, None):
                    b = [(r, d if bb is None else min(bb, d)) for d in cfg.backbone.depths]
                    n = [(r, cfg.neck_depth if nk is None else 0)] * nn_
                    out.append(Level(b + n, w))
    return list(dict.fromkeys(out))


@functools.lru_cache(maxsize=16)
def _meta_detector(cfg: DetCfg) -> Detector:
    with torch.device("meta"):
        return Detector(cfg, ladder=LevelLadder([Level([(cfg.split_ratio, 0)] * len(cfg.depths))]))


def count_det_macs(cfg: DetCfg, level: Level, input_size: tuple[int, int] | None = None) -> int:
    """MACs of one image at ``level`` (:func:`~adaptive_csp.models.elastic.count_level_macs`)."""
    return count_level_macs(_meta_detector(cfg), level, cfg.backbone.in_chans, tuple(input_size or cfg.input_size))


@functools.lru_cache(maxsize=16)
def detector_ladder(cfg: DetCfg) -> LevelLadder:
    """The ladder of a detector nothing was measured for: candidates ordered by MACs, strictly increasing,
    the full level last (MAC ratios are the costs until ``profile`` measures latency)."""
    full = Level([(cfg.split_ratio, d) for d in cfg.depths])
    counted = {lv: count_det_macs(cfg, lv) for lv in candidate_det_levels(cfg)}
    counted[full] = count_det_macs(cfg, full)
    kept: list[Level] = []
    for lv in sorted((lv for lv in counted if lv != full), key=lambda lv: (counted[lv], lv.key)):
        if counted[lv] < counted[full] and (not kept or counted[lv] > counted[kept[-1]]):
            kept.append(lv)
    return LevelLadder(Rung(level=lv, macs=counted[lv]) for lv in [*kept, full])


class Detector(ElasticModel):
    """Elastic detector (see the module docstring).  ``meta``: task, preprocessing, class names."""

    def __init__(self, cfg: DetCfg, ladder: LevelLadder | None = None):
        super().__init__(ladder, meta={"task": "detect"})
        self.cfg = cfg
        bb = cfg.backbone
        self.backbone = ElasticNet(bb, features_only=True, ladder=LevelLadder([Level([(bb.split_ratio, 0)] * len(bb.stages))]))
        in_chs = tuple(s.out_chs for s in bb.stages[-3:])
        self.neck = CSPPAN(in_chs, cfg.neck_chs, cfg.neck_depth, cfg.split_ratio, bb.act)
        self.head = FCOSHead(cfg.neck_chs, cfg.head_chs, cfg.num_classes, 3, bb.act)

    def _default_ladder(self) -> LevelLadder:
        return detector_ladder(self.cfg)

    def _meta_twin(self) -> Detector:
        return _meta_detector(self.cfg)

    def _sliced(self, x: torch.Tensor, level: Level) -> list[torch.Tensor]:
        return self.raw(x, level)

    def _in_chans(self) -> int:
        return int(self.cfg.backbone.in_chans)

    def _split(self, lv: Level) -> tuple[Level, tuple]:
        nb = len(self.cfg.backbone.stages)
        return Level(lv.stages[:nb], lv.width), lv.stages[nb:]

    # --- forward ------------------------------------------------------------------------------------------
    def raw(self, x: torch.Tensor, level: int | Level | None = None) -> list[torch.Tensor]:
        """Per-pyramid-level raw head maps ``N×(4+1+K)×H×W`` by slicing (what the loss reads)."""
        lv = self.resolve(level)
        bl, nl = self._split(lv)
        self.backbone._check_input(x)
        feats = self.backbone._features_sliced(x, bl)
        return self.head(self.neck(feats, nl, lv.width), lv.width)

    def forward(self, x: torch.Tensor, level: int | Level | None = None) -> torch.Tensor:
        """``N×A×(4+K)`` boxes and scores (eval: the level's prepared module; training: by slicing)."""
        if not self.training:
            self.backbone._check_input(x)
            return self.prepared(level)(x)
        return decode_maps(self.raw(x, level), self.cfg.strides)

    def export(self, level: int | Level | None = None) -> StaticDetector:
        """A plain static module holding only ``level``'s sliced, BN-folded weights (eval semantics)."""
        lv = self.resolve(level)
        bl, nl = self._split(lv)
        calib = self.bn_stats.get(lv.key, {})
        names = {id(m): n for n, m in self.named_modules() if isinstance(m, ConvBN)}

        def stats(op: ConvBN):
            return calib.get(names[id(op)])

        bb_calib = {n[len("backbone."):]: v for n, v in calib.items() if n.startswith("backbone.")}
        backbone = self.backbone.export(bl, calib=bb_calib)
        in_chs = tuple(scale_width(s.out_chs, lv.width) for s in self.backbone.stages[-3:])
        neck = self.neck.export(in_chs, nl, lv.width, stats)
        head = self.head.export(scale_width(self.cfg.neck_chs, lv.width), lv.width, stats)
        return self._frozen(StaticDetector(backbone, neck, head, self.cfg.strides))
