"""Anchor-free detection head, FCOS style (Tian et al., 2019), decoupled as in YOLOX.

Why FCOS: its label assignment is a fixed geometric rule (a point inside the object's centre region, on
the pyramid level whose size range fits) — no anchors to tune for our item sizes and none of YOLOX's
SimOTA cost matrices per image, which would dominate a 2-core CPU's training step; and its outputs are
per-location convolutions whose decoding (distances → boxes, ``sqrt(cls · centerness)``) is a few
element-wise ops that export to ONNX with the rest of the level.  CenterNet would need a stride-4
heat map on one level and throws the PAN's pyramid away.

Per pyramid level (its own weights and BN statistics, as YOLOX): a 3×3 ConvBN for classification and
one for regression (width-elastic), then 1×1 predictions of K class logits, 4 distances (left, top,
right, bottom, in units of the level's stride, ``softplus``-positive) and a centerness logit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from adaptive_csp.nn.elastic import ConvBN, fold, scale_width

__all__ = ["FCOSHead", "StaticHead", "PRIOR"]

PRIOR = 0.01  # initial foreground probability of the class logits (focal-loss init, RetinaNet)


class _Pred(nn.Module):
    """A 1×1 prediction conv whose input width is elastic (first-k input channels)."""

    def __init__(self, cin: int, cout: int, bias: float = 0.0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        nn.init.normal_(self.conv.weight, std=0.01)
        nn.init.constant_(self.conv.bias, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        w = self.conv.weight
        return F.conv2d(x, w if c == w.shape[1] else w[:, :c], self.conv.bias)

    def export(self, cin: int) -> nn.Conv2d:
        w = self.conv.weight
        out = nn.Conv2d(cin, w.shape[0], 1, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            out.weight.copy_(w[:, :cin])
            out.bias.copy_(self.conv.bias)
        return out


class _LevelHead(nn.Module):
    def __init__(self, cin: int, chs: int, num_classes: int, act: str):
        super().__init__()
        self.chs = chs
        self.cls_conv = ConvBN(cin, chs, 3, act=act)
        self.reg_conv = ConvBN(cin, chs, 3, act=act)
        self.cls = _Pred(chs, num_classes, -math.log((1 - PRIOR) / PRIOR))
        self.box = _Pred(chs, 4, math.log(math.e ** 2.0 - 1))  # softplus(bias) = 2 strides
        self.ctr = _Pred(chs, 1)

    def forward(self, x: torch.Tensor, width: float) -> torch.Tensor:
        h = scale_width(self.chs, width)
        c, r = self.cls_conv(x, h), self.reg_conv(x, h)
        return torch.cat([self.box(r), self.ctr(r), self.cls(c)], 1)


class FCOSHead(nn.Module):
    """Raw outputs per level: ``N×(4+1+K)×H×W`` — distance logits, centerness logit, class logits."""

    def __init__(self, cin: int, chs: int, num_classes: int, levels: int, act: str):
        super().__init__()
        self.num_classes = num_classes
        self.heads = nn.ModuleList(_LevelHead(cin, chs, num_classes, act) for _ in range(levels))

    def forward(self, feats: list[torch.Tensor], width: float) -> list[torch.Tensor]:
        return [h(f, width) for h, f in zip(self.heads, feats)]

    def export(self, cin: int, width: float, stats) -> StaticHead:
        parts = []
        for h in self.heads:
            n = scale_width(h.chs, width)
            parts.append(nn.ModuleList([fold(h.cls_conv, cin, n, stats(h.cls_conv)),
                                        fold(h.reg_conv, cin, n, stats(h.reg_conv)),
                                        h.box.export(n), h.ctr.export(n), h.cls.export(n)]))
        return StaticHead(parts)


class StaticHead(nn.Module):
    def __init__(self, parts: list[nn.ModuleList]):
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for (cls_conv, reg_conv, box, ctr, cls), f in zip(self.parts, feats):
            c, r = cls_conv(f), reg_conv(f)
            out.append(torch.cat([box(r), ctr(r), cls(c)], 1))
        return out
