"""Post-training BN re-estimation for elastic networks (OFA / US-Nets): one level's BN statistics.

Every :class:`~adaptive_csp.nn.elastic.ConvBN` under ``root`` gets its running statistics reset, the
level's forward pass runs on the calibration batches in training mode (cumulative average, no momentum),
and the estimates are returned by module name; the shared running statistics are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from adaptive_csp.nn.elastic import ConvBN

__all__ = ["estimate_bn"]


@torch.no_grad()
def estimate_bn(root: nn.Module, run: Callable[[torch.Tensor], Any],
                batches: Iterable[torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{conv name: (mean, var)}`` of the ConvBNs ``run`` touches on ``batches`` (not thread-safe)."""
    convs = {n: m for n, m in root.named_modules() if isinstance(m, ConvBN)}
    saved = {n: (m.bn.running_mean.clone(), m.bn.running_var.clone(), m.bn.momentum,
                 m.bn.num_batches_tracked.clone(), m.bn.training) for n, m in convs.items()}
    try:
        for m in convs.values():
            m.bn.reset_running_stats()
            m.bn.momentum = None  # cumulative average over the calibration batches
            m.bn.train(True)
        for xb in batches:
            run(xb)
        return {n: (m.bn.running_mean.clone(), m.bn.running_var.clone())
                for n, m in convs.items() if int(m.bn.num_batches_tracked) > 0}
    finally:
        for n, m in convs.items():
            mean, var, mom, nbt, tr = saved[n]
            m.bn.running_mean.copy_(mean)
            m.bn.running_var.copy_(var)
            m.bn.momentum = mom
            m.bn.num_batches_tracked.copy_(nbt)
            m.bn.train(tr)
