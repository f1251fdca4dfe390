"""Elastic CSP-PAN neck (YOLOv4 / v5 manner): a top-down FPN path then a bottom-up PAN path, each merge
refined by a CSP stage whose blocks, split ratio and width are per-call arguments.

Inputs are the backbone's last three stage maps ``C3, C4, C5`` (strides s, 2s, 4s); outputs ``N3, N4,
N5`` with ``chs`` channels each::

    P5 = lat5(C5)
    P4 = td4(lat4(C4) + up(P5))        P3 = td3(lat3(C3) + up(P4))
    N3 = P3    N4 = bu4(P4 + down3(N3))    N5 = bu5(P5 + down4(N4))

Merges ADD the two paths where YOLOv5 concatenates them: under first-k width slicing a concatenation
would move the second input's channels to positions the next conv's weights were not trained for at
other widths, while a sum keeps channel ``j`` meaning the same at every width.  The four CSP stages
(``td4, td3, bu4, bu5``, in that order) are the neck's entries in a detector :class:`Level`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adaptive_csp.levels import StageLevel
from adaptive_csp.nn.elastic import ConvBN, fold, scale_width
from adaptive_csp.nn.stage import Stage, StaticStage

__all__ = ["CSPPAN", "StaticPAN", "NECK_STAGES"]

NECK_STAGES = ("td4", "td3", "bu4", "bu5")


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


class CSPPAN(nn.Module):
    def __init__(self, in_chs: tuple[int, int, int], chs: int, depth: int, split_ratio: float, act: str):
        super().__init__()
        self.chs = chs
        self.lat = nn.ModuleList(ConvBN(c, chs, 1, act=act) for c in in_chs)

        def stage() -> Stage:
            return Stage(chs, chs, depth, 1, cross=True, split_ratio=split_ratio, down="none", act=act)

        self.td4, self.td3, self.bu4, self.bu5 = stage(), stage(), stage(), stage()
        self.down3 = ConvBN(chs, chs, 3, 2, act=act)
        self.down4 = ConvBN(chs, chs, 3, 2, act=act)

    def forward(self, feats: list[torch.Tensor], levels: tuple[StageLevel, ...], width: float) -> list[torch.Tensor]:
        c3, c4, c5 = feats[-3:]
        n = scale_width(self.chs, width)
        td4, td3, bu4, bu5 = levels
        p5 = self.lat[2](c5, n)
        p4 = self.td4(self.lat[1](c4, n) + _up(p5, c4), td4.ratio, td4.blocks, width)
        p3 = self.td3(self.lat[0](c3, n) + _up(p4, c3), td3.ratio, td3.blocks, width)
        n4 = self.bu4(p4 + self.down3(p3, n), bu4.ratio, bu4.blocks, width)
        n5 = self.bu5(p5 + self.down4(n4, n), bu5.ratio, bu5.blocks, width)
        return [p3, n4, n5]

    def export(self, in_chs: tuple[int, int, int], levels: tuple[StageLevel, ...], width: float, stats) -> StaticPAN:
        n = scale_width(self.chs, width)
        lat = [fold(m, c, n, stats(m)) for m, c in zip(self.lat, in_chs)]
        stages = [st.export(n, s.ratio, s.blocks, stats, width)
                  for st, s in zip((self.td4, self.td3, self.bu4, self.bu5), levels)]
        return StaticPAN(lat, stages, fold(self.down3, n, n, stats(self.down3)), fold(self.down4, n, n, stats(self.down4)))


class StaticPAN(nn.Module):
    """The neck at one level: plain modules (ONNX friendly)."""

    def __init__(self, lat: list[nn.Module], stages: list[StaticStage], down3: nn.Module, down4: nn.Module):
        super().__init__()
        self.lat = nn.ModuleList(lat)
        self.td4, self.td3, self.bu4, self.bu5 = stages
        self.down3, self.down4 = down3, down4

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        c3, c4, c5 = feats[-3:]
        p5 = self.lat[2](c5)
        p4 = self.td4(self.lat[1](c4) + _up(p5, c4))
        p3 = self.td3(self.lat[0](c3) + _up(p4, c3))
        n4 = self.bu4(p4 + self.down3(p3))
        n5 = self.bu5(p5 + self.down4(n4))
        return [p3, n4, n5]
