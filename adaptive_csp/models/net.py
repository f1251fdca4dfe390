"""The elastic network: ``model(x, level)`` with the level an argument, never module state.

Two execution paths, same numbers:

* **prepared** (eval mode, ladder levels and any level with calibrated BN statistics): the level's
  static module — sliced, BN folded, contiguous — built once and cached.  This is what makes an
  elastic forward as fast as a static network of that shape.
* **slicing** (training, or a level nothing was prepared for): first-k slicing through the elastic
  ops with the shared BN statistics.

Per-level BN statistics (``bn_stats[level.key]``) come from :meth:`ElasticNet.calibrate_bn`
(post-training re-estimation, as OFA and US-Nets do; indispensable once the width changes) and are used
by both :meth:`export` and the prepared path.

Device and dtype follow the weights: ``model.to(device / dtype)`` moves the per-level BN statistics too
and drops the prepared cache, and everything built later (exports, prepared modules) is built on the
weights' device and dtype.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from adaptive_csp.levels import Level, LevelLadder, Rung
from adaptive_csp.models.config import ModelCfg
from adaptive_csp.models.elastic import ElasticModel, count_level_macs
from adaptive_csp.models.registry import get_model_cfg
from adaptive_csp.nn.elastic import ConvBN, fold, scale_width
from adaptive_csp.nn.stage import Stage, StaticStage

__all__ = ["ElasticNet", "StaticNet", "create_model", "default_ladder", "candidate_ladder_levels", "count_macs"]

class StaticNet(nn.Module):
    """One level of an :class:`ElasticNet` as a plain module (what :meth:`ElasticNet.export` returns)."""

    def __init__(self, stem: nn.Module, pool: bool, stages: list[StaticStage], head: nn.Linear | None):
        super().__init__()
        self.stem = stem
        self.pool = nn.MaxPool2d(3, 2, 1) if pool else nn.Identity()
        self.stages = nn.ModuleList(stages)
        self.head = head if head is not None else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.pool(self.stem(x))
        feats: list[torch.Tensor] = []
        for s in self.stages:
            x = s(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem(x))
        for s in self.stages:
            x = s(x)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def candidate_ladder_levels(cfg: ModelCfg) -> list[Level]:
    """The levels a ladder is generated from before anything is measured: per width, blocks off and
    full depth; at full width, depth first (cheap on latency) then the split ratio, uniform over stages."""
    n = len(cfg.stages)
    top = cfg.split_ratio
    levels: list[Level] = []
    for w in cfg.widths:
        levels += [Level([(top, 0)] * n, w), Level([(top, d) for d in cfg.depths], w)]
    lower = cfg.ratios[len(cfg.ratios) // 2 - 1] if len(cfg.ratios) > 1 else top
    for b in range(1, max(cfg.depths) + 1):
        for r in (lower, top):
            levels.append(Level([(r, min(b, d)) for d in cfg.depths]))
    return list(dict.fromkeys(levels))


def default_ladder(cfg: ModelCfg, features_only: bool = False) -> LevelLadder:
    """The ladder of a model nothing was measured for: :func:`candidate_ladder_levels` ordered by MACs
    (cheapest first, the full level last), with MACs recorded so policies see MAC ratios as costs."""
    full = Level([(cfg.split_ratio, d) for d in cfg.depths])
    counted = {lv: count_macs(cfg, lv, features_only=features_only) for lv in candidate_ladder_levels(cfg)}
    order = sorted((lv for lv in counted if lv != full), key=lambda lv: (counted[lv], lv.key))
    kept: list[Level] = []
    for lv in order:  # strictly increasing MACs: of equal-cost candidates the first (by key) stays
        if counted[lv] < counted[full] and (not kept or counted[lv] > counted[kept[-1]]):
            kept.append(lv)
    kept.append(full)
    return LevelLadder(Rung(level=lv, macs=counted[lv]) for lv in kept)


@functools.lru_cache(maxsize=32)
def _meta_model(cfg: ModelCfg, features_only: bool) -> ElasticNet:
    with torch.device("meta"):
        return ElasticNet(cfg, features_only=features_only, ladder=LevelLadder([Level([(cfg.split_ratio, 0)] * len(cfg.stages))]))


def count_macs(cfg: ModelCfg, level: Level, input_size: tuple[int, int] | None = None,
               features_only: bool = False) -> int:
    """MACs of one image at ``level`` (:func:`~adaptive_csp.models.elastic.count_level_macs`)."""
    return count_level_macs(_meta_model(cfg, features_only), level, cfg.in_chans, tuple(input_size or cfg.input_size))


class ElasticNet(ElasticModel):
    """The elastic CSP classifier (or, ``features_only``, backbone): see the module docstring."""

    def __init__(self, cfg: ModelCfg, features_only: bool = False, ladder: LevelLadder | None = None):
        super().__init__(ladder)
        self.cfg = cfg
        self.features_only = features_only
        st = cfg.stem
        self.stem = ConvBN(cfg.in_chans, st.out_chs, st.kernel_size, st.stride, act=cfg.act)
        self.stem_pool = st.pool
        prev = st.out_chs
        stages = []
        for s in cfg.stages:
            down_chs = s.out_chs if (s.down_growth or not cfg.cross) else prev
            stages.append(Stage(prev, s.out_chs, s.depth, s.stride, cross=cfg.cross, exp_ratio=s.exp_ratio,
                                split_ratio=cfg.split_ratio, bottle_ratio=s.bottle_ratio, groups=s.groups,
                                block=s.block, down=s.down, down_chs=down_chs,
                                down_groups=s.down_groups, act=cfg.act))
            prev = s.out_chs
        self.stages = nn.ModuleList(stages)
        self.num_features = prev
        self.head = nn.Linear(prev, cfg.num_classes)

    def _default_ladder(self) -> LevelLadder:
        return default_ladder(self.cfg, self.features_only)

    def _meta_twin(self) -> ElasticNet:
        return _meta_model(self.cfg, self.features_only)

    def _sliced(self, x: torch.Tensor, level: Level) -> list[torch.Tensor]:
        return self._features_sliced(x, level)

    def _check_install(self, module: nn.Module) -> None:
        if self.features_only and not hasattr(module, "forward_features"):
            raise ValueError("a features_only model needs a module with forward_features()")

    # --- forward ----------------------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.cfg.in_chans:
            raise ValueError(f"{self.cfg.name} expects N×{self.cfg.in_chans}×H×W input, got shape "
                             f"{tuple(x.shape)}")

    def forward(self, x: torch.Tensor, level: int | Level | None = None):
        lv = self.resolve(level)
        self._check_input(x)
        if not self.training:
            if self.features_only:
                return self.prepared(lv).forward_features(x)
            return self.prepared(lv)(x)
        feats = self._features_sliced(x, lv)
        if self.features_only:
            return feats
        c = feats[-1].shape[1]
        w, b = self.head.weight, self.head.bias
        return F.linear(torch.flatten(F.adaptive_avg_pool2d(feats[-1], 1), 1), w if c == w.shape[1] else w[:, :c], b)

    def _features_sliced(self, x: torch.Tensor, lv: Level) -> list[torch.Tensor]:
        x = self.stem(x, scale_width(self.stem.cout, lv.width))
        if self.stem_pool:
            x = F.max_pool2d(x, 3, 2, 1)
        feats = []
        for stage, s in zip(self.stages, lv.stages):
            x = stage(x, s.ratio, s.blocks, lv.width)
            feats.append(x)
        return feats

    def features(self, x: torch.Tensor, level: int | Level | None = None) -> list[torch.Tensor]:
        """Per-stage feature maps at ``level`` (for detection necks)."""
        lv = self.resolve(level)
        self._check_input(x)
        if not self.training:
            return self.prepared(lv).forward_features(x)
        return self._features_sliced(x, lv)

    def export(self, level: int | Level | None = None, calib: dict | None = None) -> StaticNet:
        """A plain static module holding only ``level``'s sliced, BN-folded weights (eval semantics).

        ``calib``: BN statistics by conv name to fold instead of ``bn_stats[level.key]`` (a detector passes
        its own, estimated with its neck attached)."""
        lv = self.resolve(level)
        calib = self.bn_stats.get(lv.key, {}) if calib is None else calib
        names = {id(m): n for n, m in self.named_modules() if isinstance(m, ConvBN)}

        def stats(op: ConvBN):
            return calib.get(names[id(op)])

        cin = scale_width(self.stem.cout, lv.width)
        stem = fold(self.stem, self.cfg.in_chans, cin, stats(self.stem))
        stages = []
        for stage, s in zip(self.stages, lv.stages):
            stages.append(stage.export(cin, s.ratio, s.blocks, stats, lv.width))
            cin = scale_width(stage.out_chs, lv.width)
        head = None
        if not self.features_only:
            w = self.head.weight
            head = nn.Linear(cin, self.head.out_features, device=w.device, dtype=w.dtype)
            with torch.no_grad():
                head.weight.copy_(w[:, :cin])
                head.bias.copy_(self.head.bias)
        return self._frozen(StaticNet(stem, self.stem_pool, stages, head))


def create_model(name: str | ModelCfg, num_classes: int | None = None, in_chans: int | None = None,
                 features_only: bool = False, input_size: tuple[int, int] | None = None) -> ElasticNet:
    """Build an (untrained) elastic network from a preset name or a :class:`ModelCfg`."""
    over = {k: v for k, v in (("num_classes", num_classes), ("in_chans", in_chans),
                              ("input_size", input_size)) if v is not None}
    cfg = name if isinstance(name, ModelCfg) else get_model_cfg(name)
    if over:
        cfg = ModelCfg.model_validate({**cfg.model_dump(), **over})
    return ElasticNet(cfg, features_only=features_only)
