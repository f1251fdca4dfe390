"""FCOS training targets and loss (Tian et al., 2019, with centre sampling and GIoU, as in FCOS v2).

A point (cell centre) is a positive for a ground-truth box when it lies inside the box, within
``center_radius`` strides of the box centre, and the largest of its distances to the box's sides falls in
its pyramid level's range (``ranges``); of several such boxes it takes the smallest.  Loss: sigmoid focal
loss over every point and class (normalised by the positives), GIoU on the positives' decoded boxes
weighted by their centerness target, and BCE on the centerness logit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from adaptive_csp.detect.boxes import giou_loss
from adaptive_csp.detect.model import DetCfg, anchor_points, flatten_maps

__all__ = ["assign", "fcos_loss", "focal_loss", "distill_loss", "BOX_WEIGHT"]

BOX_WEIGHT = 2.0  # GIoU term weight (box quality drives mAP@[.5:.95])


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss (RetinaNet), summed."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    a_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (a_t * (1 - p_t) ** gamma * ce).sum()


def assign(points: torch.Tensor, strides: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
           boxes: torch.Tensor, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per point: the index of its ground-truth box (−1: background) and the l, t, r, b distances to it."""
    a = len(points)
    if len(boxes) == 0:
        return torch.full((a,), -1, dtype=torch.long, device=points.device), points.new_zeros(a, 4)
    px, py = points[:, 0:1], points[:, 1:2]
    ltrb = torch.stack([px - boxes[:, 0], py - boxes[:, 1], boxes[:, 2] - px, boxes[:, 3] - py], -1)  # A×k×4
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    r = radius * strides[:, None]
    near = ((px - cx).abs() < r) & ((py - cy).abs() < r)
    dmax = ltrb.max(-1).values
    ok = (ltrb.min(-1).values > 0) & near & (dmax > lo[:, None]) & (dmax <= hi[:, None])
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None].expand(a, -1)
    area = torch.where(ok, area, torch.full_like(area, float("inf")))
    best, idx = area.min(1)
    idx = torch.where(torch.isfinite(best), idx, torch.full_like(idx, -1))
    return idx, ltrb[torch.arange(a, device=points.device), idx.clamp(min=0)]


def fcos_loss(maps: list[torch.Tensor], boxes: list[torch.Tensor], labels: list[torch.Tensor],
              cfg: DetCfg, norm: Callable[[float, float], tuple[float, float]] | None = None,
              cls_ce: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of raw head maps (``Detector.raw``) against per-image boxes (xyxy px) and labels.

    The classification and centre-ness terms are normalised by the number of positive points, the box term
    by the sum of their centre-ness targets; ``norm(positives, centre-ness sum)`` replaces those two
    numbers by the ones to divide by — in a data-parallel run their mean over the ranks, as FCOS's own
    distributed training does, so that averaging the ranks' gradients gives the one-process loss.

    ``cls_ce`` > 0 adds that weight times a softmax cross-entropy over the positives' class logits (their
    box's label), normalised like the classification term: the focal loss scores each class on its own,
    this term makes the right class win over the others at the points that name an item."""
    o = flatten_maps(maps)  # N×A×(5+K)
    dev, dt = o.device, o.dtype
    pts, sts = anchor_points([tuple(m.shape[-2:]) for m in maps], cfg.strides, dev, dt)
    bounds = [0.0, *cfg.ranges, float("inf")]
    lvl = torch.cat([torch.full((m.shape[-2] * m.shape[-1],), i, device=dev) for i, m in enumerate(maps)])
    lo = torch.tensor(bounds[:-1], device=dev, dtype=dt)[lvl]
    hi = torch.tensor(bounds[1:], device=dev, dtype=dt)[lvl]
    cls_t = torch.zeros_like(o[..., 5:])
    pos_i, pos_box, pos_ltrb, pos_lb = [], [], [], []
    for i, (b, lb) in enumerate(zip(boxes, labels)):
        b = b.to(dev, dt)
        idx, ltrb = assign(pts, sts, lo, hi, b, cfg.center_radius)
        p = (idx >= 0).nonzero().squeeze(1)
        cls_t[i, p, lb.to(dev)[idx[p]]] = 1.0
        pos_i.append(torch.full_like(p, i) * o.shape[1] + p)
        pos_box.append(b[idx[p]])
        pos_ltrb.append(ltrb[p])
        pos_lb.append(lb.to(dev)[idx[p]])
    flat = o.reshape(-1, o.shape[-1])
    pi = torch.cat(pos_i)
    if len(pi):
        gt, ltrb = torch.cat(pos_box), torch.cat(pos_ltrb)
        lr, tb = ltrb[:, [0, 2]], ltrb[:, [1, 3]]
        ctr_t = torch.sqrt((lr.min(1).values / lr.max(1).values) * (tb.min(1).values / tb.max(1).values))
    n_all, ctr_all = float(len(pi)), float(ctr_t.sum()) if len(pi) else 0.0
    if norm is not None:
        n_all, ctr_all = norm(n_all, ctr_all)
    n_pos = max(1.0, n_all)
    l_cls = focal_loss(o[..., 5:], cls_t) / n_pos
    if len(pi) == 0:
        zero = o.sum() * 0.0
        return l_cls + zero, {"cls": l_cls.item(), "box": 0.0, "ctr": 0.0, "pos": 0.0}
    a = pi % o.shape[1]
    d = F.softplus(flat[pi, :4]) * sts[a, None]
    pred = torch.cat([pts[a] - d[:, :2], pts[a] + d[:, 2:]], 1)
    l_box = (giou_loss(pred, gt) * ctr_t).sum() / max(ctr_all, 1e-6)
    l_ctr = F.binary_cross_entropy_with_logits(flat[pi, 4], ctr_t, reduction="sum") / n_pos
    total = l_cls + BOX_WEIGHT * l_box + l_ctr
    parts = {"cls": l_cls.item(), "box": l_box.item(), "ctr": l_ctr.item(), "pos": len(pi) / len(boxes)}
    if cls_ce > 0:
        l_ce = F.cross_entropy(flat[pi, 5:], torch.cat(pos_lb), reduction="sum") / n_pos
        total = total + cls_ce * l_ce
        parts["ce"] = l_ce.item()
    return total, parts


def distill_loss(maps: list[torch.Tensor], teacher: list[torch.Tensor], n_pos: float,
                 gamma: float = 2.0) -> torch.Tensor:
    """In-place distillation of dense score maps: a level's centre-ness and class logits learn another
    level's (``teacher``, detached) sigmoid scores at every point, each point's BCE weighted by
    ``|σ(student) − σ(teacher)|^gamma`` (the quality focal loss of GFL, Li et al., 2020, with soft targets
    from the teacher), summed and divided by ``n_pos`` like the classification term of :func:`fcos_loss`.
    The weighting keeps the many points on which both agree (background) from swamping the few that
    carry items, as the focal loss does for the ground truth."""
    o, t = flatten_maps(maps)[..., 4:], flatten_maps(teacher)[..., 4:].detach()
    q = torch.sigmoid(t)
    bce = F.binary_cross_entropy_with_logits(o, q, reduction="none")
    return ((torch.sigmoid(o) - q).abs().pow(gamma) * bce).sum() / max(1.0, n_pos)
