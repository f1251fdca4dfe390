"""The one elastic-model base: what a classifier and a detector share once their forward is written.

An elastic model runs any :class:`~adaptive_csp.levels.Level` of one set of weights, the level an argument
of ``forward`` and never state on the module (two threads may run two levels).  :class:`ElasticModel`
holds everything around that forward, so :class:`~adaptive_csp.models.net.ElasticNet` and
:class:`~adaptive_csp.detect.model.Detector` write it once:

* **the ladder** (``levels``): the rungs a policy chooses from; generated from the config on first use
  (:meth:`_default_ladder`), replaced by a measured one on loading; level validation and resolution;
* **the prepared cache**: each level's static module (sliced, BN folded, built by :meth:`export`) built
  once and kept, the ladder's levels always, up to :data:`OFF_LADDER` others in LRU order; a module
  put there with :meth:`install` (a torch.ao int8 conversion) runs instead of the export until the float
  weights change;
* **per-level BN statistics** (``bn_stats``), re-estimated by :meth:`calibrate_bn` (OFA / US-Nets) and
  moved with the weights by ``.to()`` / ``.half()``;
* **cost**: :meth:`macs` and :meth:`params` of a level, counted on a weightless twin on the meta device.

A subclass provides ``cfg`` (with ``depths``, ``ratios``, ``widths``, ``split_ratio`` and the input's
``in_chans`` / ``input_size``), :meth:`export`, :meth:`_default_ladder`, :meth:`_sliced` (the training
forward that BN calibration runs) and :meth:`_meta_twin`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from adaptive_csp.levels import Level, LevelLadder
from adaptive_csp.nn.calib import estimate_bn

__all__ = ["ElasticModel", "OFF_LADDER", "count_level_macs"]

#: prepared modules kept for levels that are not on the ladder (a sweep, a hand-made Level), LRU order
OFF_LADDER = 16


def count_level_macs(twin: ElasticModel, level: Level, in_chans: int, input_size: tuple[int, int]) -> int:
    """MACs of one image at ``level``: ``torch.utils.flop_counter`` (FLOPs / 2) over the export of a
    weightless ``twin`` on the meta device (shapes only: cheap enough for ladder generation)."""
    from torch.utils.flop_counter import FlopCounterMode

    h, w = input_size
    net = twin.export(level)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(torch.zeros(1, in_chans, h, w, device="meta"))
    return fc.get_total_flops() // 2


class ElasticModel(nn.Module):
    """The ladder, level resolution, prepared cache, install, BN calibration, cost and device moves of an
    elastic model (see the module docstring).  ``meta``: task, preprocessing, class names, ..."""

    cfg: Any

    def __init__(self, ladder: LevelLadder | None = None, meta: dict | None = None):
        super().__init__()
        self.bn_stats: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
        self._ladder = ladder  # None: generated on first use (counting MACs costs a meta-device pass)
        self._prepared: OrderedDict[Level, nn.Module] = OrderedDict()
        self._installed: set[Level] = set()  # levels whose prepared module came from install(), not export()
        self._lock = threading.Lock()
        self.meta: dict = dict(meta or {})

    # --- what a subclass writes ------------------------------------------------------------------------------
    def export(self, level: int | Level | None = None) -> nn.Module:
        """A plain static module holding only ``level``'s sliced, BN-folded weights (eval semantics)."""
        raise NotImplementedError

    def _default_ladder(self) -> LevelLadder:
        """The ladder when nothing was measured: candidate levels ordered by MACs."""
        raise NotImplementedError

    def _sliced(self, x: torch.Tensor, level: Level) -> Any:
        """The training-mode forward of ``level`` by slicing (what BN re-estimation runs)."""
        raise NotImplementedError

    def _meta_twin(self) -> ElasticModel:
        """A weightless model of the same config on the meta device (counting MACs and parameters)."""
        raise NotImplementedError

    def _check_install(self, module: nn.Module) -> None:
        """Raise ValueError when ``module`` cannot stand in for a level's export."""

    # --- levels ------------------------------------------------------------------------------------------------
    @property
    def levels(self) -> LevelLadder:
        if self._ladder is None:
            self._ladder = self._default_ladder()
        return self._ladder

    @levels.setter
    def levels(self, ladder: LevelLadder) -> None:
        for lv in ladder:
            self.validate(lv)
        self._ladder = ladder
        self.invalidate()

    def validate(self, level: Level) -> Level:
        """``level`` checked against this architecture (ratios, depths, widths); ValueError names the fault."""
        depths = self.cfg.depths
        return level.validate([self.cfg.ratios] * len(depths), depths, self.cfg.widths)

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
        """Every block on at the split ratio the model was built with, full width."""
        return Level([(self.cfg.split_ratio, d) for d in self.cfg.depths])

    def cheapest_level(self) -> Level:
        """Every stage's blocks off at the narrowest width: the least compute the architecture allows."""
        return Level([(self.cfg.split_ratio, 0)] * len(self.cfg.depths), self.cfg.widths[0])

    # --- prepared static levels --------------------------------------------------------------------------------
    def prepared(self, level: int | Level | None = None) -> nn.Module:
        """The cached static module of a level (built on first use; thread-safe)."""
        lv = self.resolve(level)
        net = self._prepared.get(lv)
        if net is None:
            with self._lock:
                net = self._prepared.get(lv)
                if net is None:
                    net = self._prepared[lv] = self.export(lv)
                    self._evict()
        return net

    def _evict(self) -> None:
        """Under the lock: drop the oldest off-ladder modules beyond :data:`OFF_LADDER`."""
        keep = set(self.levels)
        extra = [k for k in self._prepared if k not in keep and k not in self._installed]
        for k in extra[: max(0, len(extra) - OFF_LADDER)]:
            del self._prepared[k]

    def prepare(self) -> ElasticModel:
        """Build the static module of every ladder level now (instead of on first use)."""
        for i in range(len(self.levels)):
            self.prepared(i)
        return self

    def install(self, level: int | Level, module: nn.Module) -> None:
        """Run ``module`` for ``level`` on the prepared path (eval mode) instead of its export.

        Meant for a module built from that level's export, e.g. its int8 conversion
        (:func:`adaptive_csp.quant.install_int8`; prepacked int8 weights cannot be sliced, so one module per
        level).  Cleared by :meth:`invalidate` (training, ``load_state_dict``, a new ladder), because it is
        stale once the float weights change."""
        lv = self.resolve(level)
        self._check_install(module)
        with self._lock:
            self._prepared[lv] = module
            self._installed.add(lv)

    def installed(self) -> dict[Level, nn.Module]:
        """The modules :meth:`install` put in place of exports, by level (reading builds nothing)."""
        with self._lock:
            return {lv: self._prepared[lv] for lv in self._installed if lv in self._prepared}

    @staticmethod
    def _frozen(net: nn.Module) -> nn.Module:
        """An export as the prepared path runs it: eval mode, no gradients."""
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    def invalidate(self) -> None:
        """Drop every prepared and installed module (rebuilt from the weights on next use)."""
        with self._lock:
            self._prepared.clear()
            self._installed.clear()

    def train(self, mode: bool = True) -> ElasticModel:
        if mode:
            self.invalidate()
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        self.invalidate()
        return super().load_state_dict(*args, **kwargs)

    def _apply(self, fn: Callable, recurse: bool = True):
        """``.to()``, ``.half()``, ``.double()``, ``.cuda()`` …: move the per-level BN statistics with the
        weights and drop prepared modules (rebuilt on the new device / dtype on next use)."""
        out = super()._apply(fn, recurse)
        self.bn_stats = {k: {n: (fn(m), fn(v)) for n, (m, v) in d.items()} for k, d in self.bn_stats.items()}
        self.invalidate()
        return out

    # --- BN calibration ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def calibrate_bn(self, levels: Iterable[int | Level], batches: Iterable[torch.Tensor] | list) -> None:
        """Re-estimate BN statistics for each level from ``batches`` and store them in ``bn_stats``
        (:func:`~adaptive_csp.nn.calib.estimate_bn`).  Not thread-safe (offline operation)."""
        p = next(self.parameters())
        batches = [xb.to(p.device, p.dtype) for xb in batches]
        try:
            for level in levels:
                lv = self.resolve(level)
                self.bn_stats[lv.key] = estimate_bn(self, lambda xb, lv=lv: self._sliced(xb, lv), batches)
        finally:
            self.invalidate()

    # --- cost -------------------------------------------------------------------------------------------------
    def macs(self, level: int | Level | None = None, input_size: tuple[int, int] | None = None) -> int:
        """Multiply-accumulates for one image at ``level`` (``torch.utils.flop_counter``, FLOPs / 2)."""
        return count_level_macs(self._meta_twin(), self.resolve(level), self._in_chans(),
                                tuple(input_size or self.cfg.input_size))

    def params(self, level: int | Level | None = None) -> int:
        """Parameters the level actually uses (its exported static module's count)."""
        return sum(p.numel() for p in self._meta_twin().export(self.resolve(level)).parameters())

    def _in_chans(self) -> int:
        return int(self.cfg.in_chans)
