"""Residual blocks and the elastic CSP stage, plus their static (exported) twins.

Split layout ("in place", fusion first)
---------------------------------------
A CSP stage computes ``e = exp(down(x))`` with ``E`` channels.  At split ratio ``r`` the *first*
``d = r·E`` channels go through the active blocks and the remaining ``E − d`` bypass them; the result is
written back **in place** — ``[blocks(e[:d]), e[d:]]`` — and the transition 1×1 conv reads it.  Because
every block is residual (``x + f(x)``, width preserving) and there is no separate partial transition on
the block path, transition input channel ``j`` always means "expanded channel ``j``", refined by the
blocks when ``j < d`` and passed through unrefined otherwise.  Moving the split point (or switching
blocks off) therefore never moves a channel to a position where the transition conv expects another
feature; with ``r = split_ratio`` (0.5 in the presets) and all blocks active the stage is exactly the
static CSP stage of the config.  Blocks themselves shrink by first-k slicing of their channels.

Network width ``w`` (a :class:`~adaptive_csp.levels.Level` field) slices every conv of the stage —
down-sampling, expand, blocks, transition — to its first ``round(w·C)`` channels; the split ratio then
applies within the active expanded width, so ``d = r·round(w·E)``.

Plain (non-CSP) stages are the same code with no expansion/transition and ``r = 1``.
"""

from __future__ import annotations

import torch
from torch import nn

from adaptive_csp.nn.elastic import ConvBN, _act, fold, scale_width

__all__ = ["ResBlock", "Stage", "StaticDarkBlock", "StaticBottleBlock", "StaticStage"]

class ResBlock(nn.Module):
    """Residual block of width ``chs`` (elastic: runs at the width of its input).

    ``kind="dark"``: 1×1 (chs→mid) → 3×3 (mid→chs, linear), ``x + f(x)`` (Darknet / CSPDarknet style).
    ``kind="bottle"``: 1×1 → 3×3 (grouped) → 1×1 linear, ``act(x + f(x))`` with the stage's activation
    (ResNet/ResNeXt style, as timm applies it).
    ``stride``/``cin`` ≠ chs adds a projection shortcut (ResNet's first block; not elastic).
    The last BN's γ starts at zero so a new block is the identity.
    """

    def __init__(self, chs: int, bottle_ratio: float = 1.0, groups: int = 1, act: str = "relu",
                 kind: str = "dark", cin: int | None = None, stride: int = 1):
        super().__init__()
        cin = chs if cin is None else cin
        self.chs, self.kind, self.act = chs, kind, act
        self.mid = int(round(chs * bottle_ratio))
        self.conv1 = ConvBN(cin, self.mid, 1, act=act)
        if kind == "dark":
            # linear residual branch: with ReLU after a zero-initialised BN the branch would output
            # exactly 0 with zero gradient and never start learning
            self.conv2 = ConvBN(self.mid, chs, 3, stride, groups=groups, act="none")
            self.conv3 = None
            last = self.conv2
        elif kind == "bottle":
            self.conv2 = ConvBN(self.mid, self.mid, 3, stride, groups=groups, act=act)
            self.conv3 = ConvBN(self.mid, chs, 1, act="none")
            last = self.conv3
        else:
            raise ValueError(f"unknown block kind {kind!r} (dark, bottle)")
        self.proj = ConvBN(cin, chs, 1, stride, act="none") if (cin != chs or stride != 1) else None
        nn.init.zeros_(last.bn.weight)

    def widths(self, d: int) -> tuple[int, int]:
        """(mid, mid after the grouped 3×3) for block width ``d``."""
        m = self.mid * d // self.chs
        return m, self.conv2.out_width(m) if self.conv3 is not None else d

    def forward(self, x: torch.Tensor, width: float = 1.0) -> torch.Tensor:
        d = scale_width(self.chs, width) if self.proj is not None else x.shape[1]
        m, m2 = self.widths(d)
        y = self.conv1(x, m)
        if self.conv3 is None:
            y = self.conv2(y, d)
        else:
            y = self.conv3(self.conv2(y, m2), d)
        sc = x if self.proj is None else self.proj(x, d)
        out = sc + y
        return out if self.conv3 is None else _act(out, self.act)

    def export(self, d: int, stats, cin: int | None = None) -> nn.Module:
        """Static twin at block width ``d``; ``cin``: input channels of a projection block."""
        m, m2 = self.widths(d)
        cin = d if self.proj is None else (self.proj.cin if cin is None else cin)
        proj = None if self.proj is None else fold(self.proj, cin, d, stats(self.proj))
        c1 = fold(self.conv1, cin, m, stats(self.conv1))
        if self.conv3 is None:
            return StaticDarkBlock(c1, fold(self.conv2, m, d, stats(self.conv2)), proj)
        c2 = fold(self.conv2, m, m2, stats(self.conv2))
        c3 = fold(self.conv3, m2, d, stats(self.conv3))
        return StaticBottleBlock(c1, c2, c3, proj, self.act)


class StaticDarkBlock(nn.Module):
    def __init__(self, c1: nn.Module, c2: nn.Module, proj: nn.Module | None):
        super().__init__()
        self.c1, self.c2 = c1, c2
        self.proj = proj if proj is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) + self.c2(self.c1(x))


class StaticBottleBlock(nn.Module):
    def __init__(self, c1, c2, c3, proj, act: str):
        super().__init__()
        self.c1, self.c2, self.c3 = c1, c2, c3
        self.proj = proj if proj is not None else nn.Identity()
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _act(self.proj(x) + self.c3(self.c2(self.c1(x))), self.act)


class Stage(nn.Module):
    """One elastic stage.  ``cross=True``: CSP (down → exp → split/blocks in place → transition).

    ``cross=False``: plain (down → blocks at full width).  ``down`` is a 3×3 strided ConvBN, a
    projection ResBlock (``down="resnet"``, ResNet's first block, always active), or nothing.
    """

    def __init__(self, cin: int, out_chs: int, depth: int, stride: int, *, cross: bool,
                 exp_ratio: float = 1.0, split_ratio: float = 0.5, bottle_ratio: float = 1.0,
                 groups: int = 1, block: str = "dark", down: str = "conv", down_chs: int | None = None,
                 down_groups: int | None = None, act: str = "relu"):
        super().__init__()
        self.cross = cross
        if down == "resnet":
            self.down = ResBlock(out_chs, bottle_ratio, groups, act, block, cin=cin, stride=stride)
            prev = out_chs
        elif down == "conv" and stride != 1:
            dc = down_chs or cin
            self.down = ConvBN(cin, dc, 3, stride, groups=down_groups or groups, act=act)
            prev = dc
        elif down in ("conv", "none"):
            self.down = None
            prev = cin
        else:
            raise ValueError(f"unknown down {down!r} (conv, resnet, none)")
        if cross:
            self.exp_chs = int(round(out_chs * exp_ratio))
            self.exp = ConvBN(prev, self.exp_chs, 1, act=act)
            self.block_chs = int(round(self.exp_chs * split_ratio))
            self.trans = ConvBN(self.exp_chs, out_chs, 1, act=act)
        else:
            if prev != out_chs:
                raise ValueError(f"plain stage: down gives {prev} channels, blocks need {out_chs}")
            self.exp_chs = self.block_chs = out_chs
            self.exp = self.trans = None
        self.blocks = nn.ModuleList(
            ResBlock(self.block_chs, bottle_ratio, groups, act, block) for _ in range(depth)
        )
        self.out_chs = out_chs

    def width(self, ratio: float, width: float = 1.0) -> int:
        """Channels through the blocks at split ``ratio`` of the expanded channels active at ``width``."""
        return max(1, int(round(scale_width(self.exp_chs, width) * ratio)))

    def forward(self, x: torch.Tensor, ratio: float, nblocks: int, width: float = 1.0) -> torch.Tensor:
        if isinstance(self.down, ResBlock):
            x = self.down(x, width)
        elif self.down is not None:
            x = self.down(x, scale_width(self.down.cout, width))
        if self.exp is not None:
            x = self.exp(x, scale_width(self.exp_chs, width))
        if nblocks:
            d = self.width(ratio, width)
            xb = x[:, :d] if d < x.shape[1] else x
            for blk in self.blocks[:nblocks]:
                xb = blk(xb)
            x = torch.cat([xb, x[:, d:]], 1) if d < x.shape[1] else xb
        if self.trans is not None:
            x = self.trans(x, scale_width(self.out_chs, width))
        return x

    def export(self, cin: int, ratio: float, nblocks: int, stats, width: float = 1.0) -> StaticStage:
        """Static twin at this setting; ``cin``: active input channels."""
        if self.down is None:
            down, prev = None, cin
        elif isinstance(self.down, ResBlock):
            prev = scale_width(self.out_chs, width)
            down = self.down.export(prev, stats, cin)
        else:
            prev = scale_width(self.down.cout, width)
            down = fold(self.down, cin, prev, stats(self.down))
        exp_chs = scale_width(self.exp_chs, width)
        exp = None if self.exp is None else fold(self.exp, prev, exp_chs, stats(self.exp))
        d = self.width(ratio, width) if nblocks else 0
        blocks = [b.export(d, stats) for b in self.blocks[:nblocks]]
        trans = None
        if self.trans is not None:
            trans = fold(self.trans, exp_chs, scale_width(self.out_chs, width), stats(self.trans))
        return StaticStage(down, exp, blocks, d, exp_chs, trans)


class StaticStage(nn.Module):
    """A stage at one fixed level: plain modules only (TorchScript / ONNX friendly)."""

    def __init__(self, down, exp, blocks: list[nn.Module], d: int, exp_chs: int, trans):
        super().__init__()
        self.down = down if down is not None else nn.Identity()
        self.exp = exp if exp is not None else nn.Identity()
        self.blocks = nn.Sequential(*blocks)
        self.trans = trans if trans is not None else nn.Identity()
        self.d = d if blocks else 0
        self.partial = bool(blocks) and d < exp_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.exp(self.down(x))
        if self.d > 0:
            if self.partial:
                x = torch.cat([self.blocks(x[:, : self.d]), x[:, self.d:]], 1)
            else:
                x = self.blocks(x)
        return self.trans(x)
