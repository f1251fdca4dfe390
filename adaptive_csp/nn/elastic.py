"""Elastic Conv+BN(+act): the only place that knows how a width becomes tensors.

Width is chosen per call by first-k channel slicing (OFA's ``DynamicConv2d`` / Slimmable nets): the
active output channels are ``weight[:cout]`` and the active input channels are the first ``cin`` of the
incoming tensor.  For grouped convolutions the group *width* stays fixed and the number of groups
shrinks with the channels (``groups = cin // in_per_group``), so every kept group is a whole group.

:func:`fold` returns the BN-folded ``nn.Conv2d`` (with bias) for a given width — what a prepared,
static level runs.  Nothing here stores the active width on the module: the width is an argument.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBN", "make_act", "fold", "scale_width"]


def scale_width(chs: int, width: float) -> int:
    """Active channels of a ``chs``-wide layer at network width multiplier ``width`` (first-k slicing)."""
    return chs if width == 1.0 else max(1, int(round(chs * width)))


def make_act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky":
        return nn.LeakyReLU(0.1, inplace=True)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r} (relu, leaky, none)")


def _act(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "relu":
        return F.relu(x)
    if name == "leaky":
        return F.leaky_relu(x, 0.1)
    return x


def sync_batch_norm(y: torch.Tensor, bn: nn.BatchNorm2d, cout: int, momentum: float) -> torch.Tensor:
    """Training-mode batch norm of ``y`` (N×C×H×W, the first ``cout`` channels of ``bn``) with the statistics
    of the global batch of a data-parallel run: the per-channel sum and count, then the sum of squared
    deviations from the global mean, all-reduced over the process group (differentiable, so each rank's
    gradient includes the other ranks' statistics); the running statistics updated with the unbiased
    global variance as ``F.batch_norm`` does in one process."""
    from torch.distributed.nn.functional import all_reduce

    n = torch.full((1,), float(y.shape[0] * y.shape[2] * y.shape[3]), dtype=y.dtype, device=y.device)
    first = all_reduce(torch.cat([y.sum((0, 2, 3)), n]))  # two passes, as F.batch_norm: the mean, then
    total = first[-1]  # the squared deviations from it (E[y²] - mean² loses float32 digits)
    mean = first[:cout] / total
    var = all_reduce(((y - mean[None, :, None, None]) ** 2).sum((0, 2, 3))) / total
    with torch.no_grad():
        unbiased = var * (total / (total - 1.0).clamp_min(1.0))
        bn.running_mean[:cout].mul_(1.0 - momentum).add_(mean, alpha=momentum)
        bn.running_var[:cout].mul_(1.0 - momentum).add_(unbiased, alpha=momentum)
    scale = torch.rsqrt(var + bn.eps) * bn.weight[:cout]
    return (y - mean[None, :, None, None]) * scale[None, :, None, None] + bn.bias[:cout][None, :, None, None]


class ConvBN(nn.Module):
    """``act(BN(conv(x)))`` whose output width ``cout`` is chosen per call (default: full)."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: str = "relu"):
        super().__init__()
        if cin % groups or cout % groups:
            raise ValueError(f"channels {cin}->{cout} not divisible by groups={groups}")
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act
        self.in_per_group = cin // groups
        self.out_per_group = cout // groups
        self.sync = False  # training across processes: batch statistics of the global batch (sync_batch_norm)

    @property
    def cin(self) -> int:
        return self.conv.in_channels

    @property
    def cout(self) -> int:
        return self.conv.out_channels

    def active_groups(self, cin: int) -> int:
        if self.conv.groups == 1:
            return 1
        if cin % self.in_per_group:
            raise ValueError(f"grouped conv ({self.in_per_group} channels a group) cannot run on {cin} input "
                             "channels: choose widths that keep whole groups")
        return cin // self.in_per_group

    def out_width(self, cin: int) -> int:
        """Output width that keeps this conv's in/out proportion at input width ``cin``."""
        if self.conv.groups == 1:
            return cin * self.cout // self.cin
        return self.active_groups(cin) * self.out_per_group

    def forward(self, x: torch.Tensor, cout: int | None = None) -> torch.Tensor:
        cin = x.shape[1]
        cout = self.cout if cout is None else cout
        g = self.active_groups(cin)
        w = self.conv.weight
        if cout != self.cout or cin != self.cin:
            w = w[:cout, : cin // g]
        y = F.conv2d(x, w, None, self.conv.stride, self.conv.padding, 1, g)
        bn = self.bn
        if bn.training:
            bn.num_batches_tracked.add_(1)
            m = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        else:
            m = 0.0
        if self.sync and bn.training and torch.distributed.is_available() and torch.distributed.is_initialized():
            return _act(sync_batch_norm(y, bn, cout, m), self.act)
        y = F.batch_norm(
            y,
            bn.running_mean[:cout],
            bn.running_var[:cout],
            bn.weight[:cout],
            bn.bias[:cout],
            bn.training,
            m,
            bn.eps,
        )
        return _act(y, self.act)


def fold(
    op: ConvBN,
    cin: int,
    cout: int,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> nn.Module:
    """A static ``nn.Sequential(Conv2d(bias=True), act)`` equal to ``op`` at this width in eval mode.

    ``stats`` overrides the BN running (mean, var) with a level's calibrated statistics.
    """
    g = op.active_groups(cin)
    with torch.no_grad():
        w = op.conv.weight[:cout, : cin // g]
        mean, var = (op.bn.running_mean[:cout], op.bn.running_var[:cout]) if stats is None else stats
        scale = op.bn.weight[:cout] / torch.sqrt(var[:cout] + op.bn.eps)
        conv = nn.Conv2d(cin, cout, op.conv.kernel_size, op.conv.stride, op.conv.padding, groups=g, bias=True,
                         device=w.device, dtype=w.dtype)
        conv.weight.copy_(w * scale.view(-1, 1, 1, 1))
        conv.bias.copy_(op.bn.bias[:cout] - mean[:cout] * scale)
    return nn.Sequential(conv, make_act(op.act))
