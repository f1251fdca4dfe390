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
import threading
from collections import OrderedDict
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from adaptive_csp.levels import Level, LevelLadder, Rung
from adaptive_csp.models.config import ModelCfg
from adaptive_csp.nn.calib import estimate_bn
from adaptive_csp.nn.elastic import ConvBN, fold, scale_width
from adaptive_csp.nn.stage import Stage, StaticStage

__all__ = ["ElasticNet", "StaticNet", "default_ladder", "candidate_ladder_levels", "count_macs"]

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
    """MACs of one image at ``level``, counted by ``torch.utils.flop_counter`` (FLOPs / 2) on the meta
    device: shapes only, no memory, no arithmetic (so cheap enough for ladder generation)."""
    from torch.utils.flop_counter import FlopCounterMode

    h, w = input_size or cfg.input_size
    net = _meta_model(cfg, features_only).export(level)
    x = torch.zeros(1, cfg.in_chans, h, w, device="meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(x)
    return fc.get_total_flops() // 2


class ElasticNet(nn.Module):
    def __init__(self, cfg: ModelCfg, features_only: bool = False, ladder: LevelLadder | None = None):
        super().__init__()
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
        self.bn_stats: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
        self._ladder = ladder  # None: generated on first use (default_ladder counts MACs)
        self._prepared: OrderedDict[Level, StaticNet] = OrderedDict()
        self._lock = threading.Lock()
        self.meta: dict = {}  # preprocessing, class names, ... (filled by pretrained loading)

    # --- levels ---------------------------------------------------------------------------------------
    @property
    def levels(self) -> LevelLadder:
        if self._ladder is None:
            self._ladder = default_ladder(self.cfg, self.features_only)
        return self._ladder

    @levels.setter
    def levels(self, ladder: LevelLadder) -> None:
        for lv in ladder:
            self.validate(lv)
        self._ladder = ladder
        self.invalidate()

    def validate(self, level: Level) -> Level:
        ratios = [self.cfg.ratios] * len(self.cfg.stages)
        return level.validate(ratios, self.cfg.depths, self.cfg.widths)

    def resolve(self, level: int | Level | None) -> Level:
        """A ladder index, a :class:`Level`, or None (the full level) → a validated Level."""
        if level is None:
            return self.levels[-1]
        if isinstance(level, Level):
            return self.validate(level)
        if isinstance(level, bool) or not isinstance(level, int):
            raise ValueError(f"level must be a ladder index (int), a Level or None, got {type(level).__name__}")
        return self.levels[level]

    def full_level(self) -> Level:
        return Level([(self.cfg.split_ratio, d) for d in self.cfg.depths])

    def cheapest_level(self) -> Level:
        """Every stage's blocks off at the narrowest width: the least compute the architecture allows."""
        return Level([(self.cfg.split_ratio, 0)] * len(self.cfg.stages), self.cfg.widths[0])

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

    # --- prepared static levels ---------------------------------------------------------------------------
    def prepared(self, level: int | Level | None = None) -> StaticNet:
        """The cached static module of a level (built on first use; thread-safe)."""
        lv = self.resolve(level)
        net = self._prepared.get(lv)
        if net is None:
            with self._lock:
                net = self._prepared.get(lv)
                if net is None:
                    net = self.export(lv)
                    self._prepared[lv] = net
                    keep = set(self.levels)
                    while len(self._prepared) > len(keep) + 16:  # bound off-ladder entries (LRU)
                        for k in self._prepared:
                            if k not in keep:
                                del self._prepared[k]
                                break
        return net

    def prepare(self) -> ElasticNet:
        """Build the static module of every ladder level now (instead of on first use)."""
        for i in range(len(self.levels)):
            self.prepared(i)
        return self

    def invalidate(self) -> None:
        with self._lock:
            self._prepared.clear()

    def train(self, mode: bool = True) -> ElasticNet:
        if mode:
            self.invalidate()
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        self.invalidate()
        return super().load_state_dict(*args, **kwargs)

    def _apply(self, fn, recurse: bool = True):
        """``.to()``, ``.half()``, ``.double()``, ``.cuda()`` …: move the per-level BN statistics with the
        weights and drop prepared modules (rebuilt on the new device / dtype on next use)."""
        out = super()._apply(fn, recurse)
        self.bn_stats = {k: {n: (fn(m), fn(v)) for n, (m, v) in d.items()} for k, d in self.bn_stats.items()}
        self.invalidate()
        return out

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
        net = StaticNet(stem, self.stem_pool, stages, head).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    # --- BN calibration -------------------------------------------------------------------------------
    @torch.no_grad()
    def calibrate_bn(self, levels: Iterable[int | Level], batches: Iterable[torch.Tensor] | list) -> None:
        """Re-estimate BN statistics for each level from ``batches`` and store them in ``bn_stats``
        (:func:`~adaptive_csp.nn.calib.estimate_bn`).  Not thread-safe (offline operation)."""
        p = self.stem.conv.weight
        batches = [xb.to(p.device, p.dtype) for xb in batches]
        try:
            for level in levels:
                lv = self.resolve(level)
                self.bn_stats[lv.key] = estimate_bn(self, lambda xb, lv=lv: self._features_sliced(xb, lv), batches)
        finally:
            self.invalidate()

    # --- cost -------------------------------------------------------------------------------------------
    def macs(self, level: int | Level | None = None, input_size: tuple[int, int] | None = None) -> int:
        """Multiply-accumulates for one image, counted by ``torch.utils.flop_counter`` (FLOPs / 2)."""
        return count_macs(self.cfg, self.resolve(level), input_size, self.features_only)

    def params(self, level: int | Level | None = None) -> int:
        """Parameters the level actually uses (its exported static module's count)."""
        net = _meta_model(self.cfg, self.features_only).export(self.resolve(level))
        return sum(p.numel() for p in net.parameters())

    def install(self, level: int | Level, module: nn.Module) -> None:
        """Run ``module`` for ``level`` on the prepared path (eval mode) instead of its exported StaticNet.

        Meant for a module built from that level's export, e.g. its int8 conversion
        (:func:`adaptive_csp.quant.install_int8`; prepacked int8 weights cannot be sliced, so one module per
        level).  Cleared by :meth:`invalidate` — training, ``load_state_dict``, a new ladder — because it is
        stale once the float weights change.
        """
        lv = self.resolve(level)
        if self.features_only and not hasattr(module, "forward_features"):
            raise ValueError("a features_only model needs a module with forward_features()")
        with self._lock:
            self._prepared[lv] = module
