"""Structured pruning that really shrinks tensors, and OFA-style channel sorting.

``torch.nn.utils.prune`` only multiplies weights by a mask: the convolutions keep their shapes and cost
exactly as much.  Here channels are ranked by importance and **removed**: the pruned network is a
:class:`~adaptive_csp.models.net.StaticNet` with smaller ``nn.Conv2d`` / ``nn.Linear`` tensors (fewer
parameters, fewer MACs), exportable like any level (TorchScript, ONNX).

Importance (as OFA's ``re_organize_middle_weights``): the L1 norm of the weights that *read* a channel,
i.e. of the consumer layers' input-channel slices, summed over consumers.  Kept channels are also
*reordered* most-important first, so first-k slicing of the result keeps the most important ones.

Channel groups of a :class:`StaticNet` (each kept or removed as a whole, so shapes stay consistent):

* **block inner** — a Darknet block's 1×1 output = its 3×3 input (``mid`` channels).
* **block stream** — the channels the residual blocks of a stage add into: every block's 1×1 input and
  3×3 output, plus their producer and the consumer after the blocks.  CSP: the first ``d`` expanded
  channels (producer: the expand 1×1, consumer: the transition 1×1, so ``d`` shrinks).  Plain: the
  stage width (producer: the strided 3×3, consumer: the next stage's strided 3×3 or the head).
* **CSP bypass** — expanded channels ``d..E`` (expand 1×1 output, transition 1×1 input).

Grouped convolutions are never cut across (their channels are left alone), and neither are the stem, a
CSP stage's transition output, nor projection shortcuts.  The pruned net's function changes, so
fine-tune it briefly (:func:`finetune`, distilling from the unpruned net).

:func:`sort_channels` is the other OFA operation: reorder (not remove) every elastic block's middle
channels by importance so that narrower widths keep the most important ones.  It preserves the
full-width function exactly; it changes what narrower slices compute, so use it *before* training the
narrow widths (and it drops per-level BN statistics, which no longer match).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

__all__ = ["prune_static", "sort_channels", "finetune", "count_params", "PruneReport"]


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --- tensor surgery ------------------------------------------------------------------------------------
def _conv(m: nn.Module) -> nn.Conv2d | None:
    """The Conv2d of a folded ``Sequential(conv, act)`` (None for Identity / other modules)."""
    if isinstance(m, nn.Sequential) and len(m) and isinstance(m[0], nn.Conv2d):
        return m[0]
    return None


def _dense(conv: nn.Conv2d | None) -> bool:
    return conv is not None and conv.groups == 1


def _slice_out(conv: nn.Conv2d, idx: torch.Tensor) -> nn.Conv2d:
    new = nn.Conv2d(conv.in_channels, len(idx), conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight[idx])
        if conv.bias is not None:
            new.bias.copy_(conv.bias[idx])
    return new


def _slice_in(conv: nn.Conv2d, idx: torch.Tensor) -> nn.Conv2d:
    new = nn.Conv2d(len(idx), conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, 1, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight[:, idx])
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _set_out(seq: nn.Sequential, idx: torch.Tensor) -> None:
    seq[0] = _slice_out(seq[0], idx)


def _set_in(seq: nn.Sequential, idx: torch.Tensor) -> None:
    seq[0] = _slice_in(seq[0], idx)


def _in_l1(conv: nn.Conv2d) -> torch.Tensor:
    """L1 of the weights reading each input channel (dense conv)."""
    return conv.weight.detach().abs().sum(dim=(0, 2, 3))


def _keep_count(n: int, ratio: float, multiple: int) -> int:
    k = n * (1.0 - ratio)
    if multiple > 1 and n >= multiple:
        k = max(multiple, int(round(k / multiple)) * multiple)
    return max(1, min(n, int(round(k))))


def _top(importance: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` most important channels, most important first."""
    return torch.argsort(importance, descending=True, stable=True)[:k]


class PruneReport(dict):
    """Per group: (name, channels before, channels kept); ``params_before`` / ``params_after``."""


# --- pruning -------------------------------------------------------------------------------------------
@torch.no_grad()
def prune_static(net: nn.Module, ratio: float = 0.5, *, inner: bool = True, stream: bool = True,
                 bypass: bool = True, multiple: int = 8) -> tuple[nn.Module, PruneReport]:
    """Remove the least important ``ratio`` of the channels in every prunable group of a StaticNet.

    Returns a new, physically smaller StaticNet (``net`` is left alone) and a report.  Kept channel counts
    are rounded to a multiple of ``multiple`` (vector-friendly widths; at least ``multiple``).
    """
    from adaptive_csp.nn.stage import StaticStage

    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    out = copy.deepcopy(net).eval()
    report = PruneReport(groups=[], params_before=count_params(net))
    stages = list(out.stages)
    for si, st in enumerate(stages):
        if not isinstance(st, StaticStage):
            raise TypeError(f"stage {si} is {type(st).__name__}, expected StaticStage")
        blocks = list(st.blocks)
        dark = _all_dark(blocks)
        if inner and dark:  # 1) block inner channels
            _prune_inner(blocks, si, ratio, multiple, report)
        if _conv(st.exp) is not None and _conv(st.trans) is not None:  # CSP stage
            _prune_csp(st, blocks, si, ratio, multiple, report, stream=stream and dark, bypass=bypass)
        elif stream and dark and blocks and _dense(_conv(st.down)):  # plain stage: the stage width
            _prune_plain(out, stages, si, ratio, multiple, report)
    for p in out.parameters():
        p.requires_grad_(False)
    report["params_after"] = count_params(out)
    return out, report


def _all_dark(blocks: list[nn.Module]) -> bool:
    """Every block a dense Darknet block without a projection (so its channels can be cut)."""
    from adaptive_csp.nn.stage import StaticDarkBlock

    return all(isinstance(b, StaticDarkBlock) and isinstance(b.proj, nn.Identity)
               and _dense(_conv(b.c1)) and _dense(_conv(b.c2)) for b in blocks)


def _prune_inner(blocks: list[nn.Module], si: int, ratio: float, multiple: int, report: PruneReport) -> None:
    """Each Darknet block's ``mid`` channels (its 1×1 output = its 3×3 input)."""
    for bi, b in enumerate(blocks):
        c2 = _conv(b.c2)
        n = c2.in_channels
        idx = _top(_in_l1(c2), _keep_count(n, ratio, multiple))
        _set_out(b.c1, idx)
        _set_in(b.c2, idx)
        report["groups"].append((f"stages.{si}.blocks.{bi}.mid", n, len(idx)))


def _prune_csp(st: nn.Module, blocks: list[nn.Module], si: int, ratio: float, multiple: int,
               report: PruneReport, *, stream: bool, bypass: bool) -> None:
    """A CSP stage's block stream (expanded channels ``:d``) and bypass (``d:``), cut at the expand 1×1's
    output and the transition 1×1's input."""
    exp, trans = _conv(st.exp), _conv(st.trans)
    e_chs, d = exp.out_channels, st.d
    keep_s = torch.arange(0)
    if d > 0 and stream and _dense(trans):
        imp = _in_l1(trans)[:d].clone()
        for b in blocks:
            imp += _in_l1(_conv(b.c1))
        keep_s = _top(imp, _keep_count(d, ratio, multiple))
        for b in blocks:
            _set_in(b.c1, keep_s)
            _set_out(b.c2, keep_s)
        report["groups"].append((f"stages.{si}.stream", d, len(keep_s)))
    elif d > 0:
        keep_s = torch.arange(d)
    keep_b = torch.arange(e_chs - d) if e_chs > d else torch.arange(0)
    if bypass and e_chs > d and _dense(trans):
        keep_b = _top(_in_l1(trans)[d:], _keep_count(e_chs - d, ratio, multiple))
        report["groups"].append((f"stages.{si}.bypass", e_chs - d, len(keep_b)))
    idx = torch.cat([keep_s, d + keep_b])
    if len(idx) != e_chs or not torch.equal(idx, torch.arange(e_chs)):
        if not _dense(exp):
            raise ValueError(f"stages.{si}: the expand conv is grouped; cannot prune its outputs")
        _set_out(st.exp, idx)
        _set_in(st.trans, idx)
    st.d = len(keep_s) if d > 0 else 0
    st.partial = st.d > 0 and st.d < len(idx)


def _prune_plain(out: nn.Module, stages: list[nn.Module], si: int, ratio: float, multiple: int,
                 report: PruneReport) -> None:
    """A plain stage's width: the strided 3×3's output, read by the blocks and by the next stage's strided
    3×3 (or the linear head after the last stage)."""
    st = stages[si]
    blocks = list(st.blocks)
    down = _conv(st.down)
    nxt = stages[si + 1] if si + 1 < len(stages) else None
    consumer = _conv(nxt.down) if nxt is not None else None
    head = out.head if nxt is None and isinstance(out.head, nn.Linear) else None
    if not ((head is not None) if nxt is None else _dense(consumer)):
        return
    n = down.out_channels
    imp = sum(_in_l1(_conv(b.c1)) for b in blocks)
    imp = imp + (_in_l1(consumer) if head is None else head.weight.detach().abs().sum(0))
    keep = _top(imp, _keep_count(n, ratio, multiple))
    _set_out(st.down, keep)
    for b in blocks:
        _set_in(b.c1, keep)
        _set_out(b.c2, keep)
    if head is not None:
        lin = nn.Linear(len(keep), head.out_features)
        lin.weight.copy_(head.weight[:, keep])
        lin.bias.copy_(head.bias)
        out.head = lin
    else:
        _set_in(nxt.down, keep)
    report["groups"].append((f"stages.{si}.stream", n, len(keep)))


# --- OFA channel sorting on the elastic net -------------------------------------------------------------
@torch.no_grad()
def sort_channels(model) -> object:
    """Reorder every elastic Darknet block's middle channels, most important first (in place).

    The full-width function is unchanged; narrower widths then keep the most important middle channels.
    Per-level BN statistics are dropped (they were estimated for the old order) and the prepared cache is
    cleared.  Returns ``model``.
    """
    from adaptive_csp.nn.stage import ResBlock

    for m in model.modules():
        if not isinstance(m, ResBlock) or m.conv3 is not None or m.conv2.conv.groups != 1 or m.proj is not None:
            continue
        perm = torch.argsort(m.conv2.conv.weight.abs().sum(dim=(0, 2, 3)), descending=True, stable=True)
        c1, c2 = m.conv1, m.conv2
        c1.conv.weight.copy_(c1.conv.weight[perm])
        for t in (c1.bn.weight, c1.bn.bias, c1.bn.running_mean, c1.bn.running_var):
            t.copy_(t[perm])
        c2.conv.weight.copy_(c2.conv.weight[:, perm])
    model.bn_stats.clear()
    model.invalidate()
    return model


# --- brief fine-tuning -----------------------------------------------------------------------------------
def finetune(net: nn.Module, data: Dataset, teacher: nn.Module | None = None, *,
             augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
             images: int = 20000, epochs: int = 1, batch_size: int = 128, lr: float = 0.002,
             weight_decay: float = 5e-5, kd_weight: float = 1.0, label_smoothing: float = 0.1, seed: int = 0,
             channels_last: bool = True, clip: float = 5.0) -> dict:
    """Fine-tune a (pruned) static net for ``epochs`` over the first ``images`` samples of ``data``.

    ``data``: any map-style dataset of ``(image, label)`` pairs, images already normalised as the net
    expects (e.g. ``TensorDataset(split.normalized(), split.labels)``).  ``augment(batch, generator)``:
    an optional batch augmentation (e.g. ``adaptive_csp.data.fashion_mnist.augment``); pruning knows no
    particular dataset.  Batches follow the net's device and dtype.

    Loss: label-smoothed cross-entropy plus ``kd_weight`` × soft cross-entropy to ``teacher``'s
    predictions (the unpruned net), SGD with Nesterov momentum, cosine learning rate, gradient-norm
    clipping.  The learning rate is low (2e-3) because a BN-folded net has no normalisation left to absorb
    large steps (1e-2 diverged on the trained CSP).  Returns a summary (steps, images, seconds, last loss);
    ``net`` is left in eval mode with frozen parameters.
    """
    n = min(images, len(data))
    if n < 1:
        raise ValueError("finetune needs a non-empty dataset")
    gen = torch.Generator().manual_seed(seed)
    random.seed(seed)
    ref = next(net.parameters())
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    for p in net.parameters():
        p.requires_grad_(True)
    net.train()
    params = list(net.parameters())
    opt = _sgd(params, lr, weight_decay)
    loader = DataLoader(Subset(data, range(n)), batch_size=batch_size, shuffle=True, generator=gen)
    steps = epochs * len(loader)
    t0, step, loss_v = time.perf_counter(), 0, float("nan")
    for _ in range(epochs):
        for x, y in loader:
            if augment is not None:
                x = augment(x, gen)
            x = x.to(ref.device, ref.dtype).contiguous(memory_format=fmt)
            y = y.to(ref.device)
            for g in opt.param_groups:
                g["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / max(1, steps)))
            loss = _kd_loss(net, teacher, x, y, kd_weight, label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            step += 1
            loss_v = float(loss.detach())
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return {"steps": step, "images": n * epochs, "seconds": time.perf_counter() - t0, "loss": loss_v}


def _sgd(params: list[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.SGD:
    """Nesterov SGD with weight decay on the weight tensors only (not on biases)."""
    decay = [p for p in params if p.ndim > 1]
    other = [p for p in params if p.ndim <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0}],
                           lr=lr, momentum=0.9, nesterov=True)


def _kd_loss(net: nn.Module, teacher: nn.Module | None, x: torch.Tensor, y: torch.Tensor, kd_weight: float,
             label_smoothing: float) -> torch.Tensor:
    """Label-smoothed cross-entropy, plus ``kd_weight`` × soft cross-entropy to the teacher's predictions."""
    logits = net(x)
    loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    if teacher is not None and kd_weight > 0:
        with torch.no_grad():
            soft = F.softmax(teacher(x), 1)
        loss = loss + kd_weight * -(soft * F.log_softmax(logits, 1)).sum(1).mean()
    return loss
