"""Transfer learning, the training side: what happens between loading the source model and fine-tuning.

``train(..., init=...)`` (:mod:`adaptive_csp.train.sandwich`) builds the adapted network
(:func:`adaptive_csp.models.transfer.adapt_model`: stem fitted to the channels, fresh head), keeps the
source's input normalisation (replicated per channel) so the first forward sees what the source saw, and
then, once, before the first step:

1. :func:`reestimate_bn` — BN statistics re-estimated on the new data: the shared running statistics from
   the full level's forward over the calibration images, and the per-level statistics of the levels the
   trainer validates (the source's per-level statistics were for other data and are dropped);
2. :func:`probe_head` (``init_head="probe"``) — the new head fitted as a linear probe (L2-regularised
   softmax regression, full-batch L-BFGS) on the pooled features of the un-augmented calibration images
   at the full level (taken from step 1's pass) and at the cheapest level (one more pass at its cost).
   Every width reads the first columns of the one head, so the probe minimises the mean loss of both: a
   head fitted to the full level alone left the cheapest level's loss at 1.68 against 0.33.  Starting a
   fine-tune from a probed head instead of a random one keeps the early, large gradients of a random head
   from distorting the pretrained features (LP-FT, Kumar et al., ICLR 2022).

The sandwich fine-tune then trains every level as training from scratch does.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from adaptive_csp.data.images import ImageSet
from adaptive_csp.models.net import ElasticNet
from adaptive_csp.nn.calib import estimate_bn
from adaptive_csp.nn.elastic import ConvBN

__all__ = ["reestimate_bn", "probe_head", "prepare_finetune"]


@torch.no_grad()
def reestimate_bn(model: ElasticNet, batches: list[torch.Tensor], levels: list | None = None,
                  pooled: list | None = None) -> int:
    """Replace the shared BN running statistics by the full level's on ``batches`` and the per-level ones
    by fresh estimates for ``levels`` (default: full and cheapest).  Returns the images used.  ``pooled``:
    a list that receives the full level's globally pooled features of each batch (the same pass)."""
    if not batches:
        raise ValueError("BN re-estimation needs at least one batch of images")
    p = model.stem.conv.weight
    batches = [b.to(p.device, p.dtype) for b in batches]
    full = model.full_level()

    def run(xb: torch.Tensor) -> None:
        last = model._features_sliced(xb, full)[-1]
        if pooled is not None:
            pooled.append(F.adaptive_avg_pool2d(last, 1).flatten(1))
    stats = estimate_bn(model, run, batches)
    for name, m in model.named_modules():
        if isinstance(m, ConvBN) and name in stats:
            mean, var = stats[name]
            m.bn.running_mean.copy_(mean)
            m.bn.running_var.copy_(var)
    model.bn_stats = {full.key: stats}  # the full level's estimate is the one just made
    rest = [lv for lv in (levels if levels is not None else [full, model.cheapest_level()])
            if model.resolve(lv) != full]
    if rest:
        model.calibrate_bn(rest, batches)
    model.invalidate()
    return sum(int(b.shape[0]) for b in batches)


@torch.no_grad()
def _pooled(model: ElasticNet, data: ImageSet, batch: int = 250, level=None) -> torch.Tensor:
    """Globally pooled last-stage features of ``data`` at ``level`` (default: full; eval mode, its BN)."""
    was = model.training
    model.eval()
    p = model.stem.conv.weight
    net = model.prepared(model.full_level() if level is None else level)
    out = []
    for i in range(0, len(data), batch):
        x = data.normalized(slice(i, i + batch)).to(p.device, p.dtype)
        out.append(F.adaptive_avg_pool2d(net.forward_features(x)[-1], 1).flatten(1))
    model.train(was)
    return torch.cat(out)


def probe_head(model: ElasticNet, data: ImageSet, weight_decay: float = 1e-3, max_iter: int = 100,
               feats: torch.Tensor | list[torch.Tensor] | None = None) -> float:
    """Fit ``model.head`` as a linear probe on pooled features of ``data``; returns the probe's accuracy on
    ``data`` at the widest features given (a training-set figure, not a validation one).

    ``feats``: one N×C tensor (the full level's features, one row per image of ``data`` in order; default:
    computed) or a list of them from levels of different widths.  A narrower level reads the first C
    columns of the head's weight (one head for every width), so with a list the probe minimises the mean
    cross-entropy over the levels: the head starts right for the narrow levels too, and their distillation
    gradients do not begin by pulling the shared channels toward a random head's outputs."""
    if feats is None:
        feats = _pooled(model, data)
    groups = [f.float() for f in (feats if isinstance(feats, (list, tuple)) else [feats])]
    widest = max(groups, key=lambda f: f.shape[1])
    y = data.labels[:widest.shape[0]].to(widest.device)
    k, c = model.head.out_features, widest.shape[1]
    w = torch.zeros(k, c, device=widest.device, requires_grad=True)
    b = torch.zeros(k, device=widest.device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = sum(F.cross_entropy(f @ w[:, :f.shape[1]].T + b, y) for f in groups) / len(groups)
        loss = loss + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        model.head.weight[:, :c].copy_(w.to(model.head.weight.dtype))
        model.head.bias.copy_(b.to(model.head.bias.dtype))
        model.invalidate()  # prepared levels hold a copy of the old head
        return float(((widest @ w.T + b).argmax(1) == y).float().mean())


def prepare_finetune(model: ElasticNet, train_set: ImageSet, calib: list[torch.Tensor], head: str) -> dict:
    """Steps 1–2 of the module docstring; returns what they did (for the model's ``train.init`` record)."""
    t0 = time.perf_counter()
    pooled: list[torch.Tensor] = []
    n = reestimate_bn(model, calib, pooled=pooled)  # the probe's features come from the same pass
    rec: dict = {"bn": "re-estimated on the training images (shared and per-level statistics)", "bn_images": n}
    if head == "probe":
        seen = train_set.take(slice(0, n))
        feats = [torch.cat(pooled)]
        cheap = model.cheapest_level()
        if model.resolve(cheap) != model.full_level():  # its per-level BN was just re-estimated
            feats.append(_pooled(model, seen, level=cheap))
        rec["head"] = ("linear probe on the full level's features" if len(feats) == 1 else
                       "linear probe on the full and the cheapest level's features (one head, mean loss)")
        rec["probe_train_accuracy"] = probe_head(model, seen, feats=feats)
    else:
        rec["head"] = "random (PyTorch default initialisation)"
    rec["seconds"] = time.perf_counter() - t0
    return rec
