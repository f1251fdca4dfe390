"""Boxes: IoU, the FCOS distance coding, NMS and post-processing, in plain torch.

torchvision's ``box_iou`` / ``nms`` / ``batched_nms`` cannot be used here (torchvision does not install
beside this torch), so these are their torch equivalents: same semantics, tested against a brute-force
reference.  Boxes are ``xyxy`` in pixels; a box ``[x1, y1, x2, y2]`` covers ``x1 <= x < x2``.
Everything takes device and dtype from its inputs.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["box_area", "box_iou", "giou_loss", "encode", "decode", "nms", "batched_nms", "postprocess"]


def box_area(b: torch.Tensor) -> torch.Tensor:
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU, ``len(a) × len(b)``."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / union.clamp(min=torch.finfo(inter.dtype).tiny)


def giou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Generalised IoU loss ``1 − GIoU`` of matched box pairs (``…×4`` each), per pair."""
    lt = torch.maximum(pred[..., :2], target[..., :2])
    rb = torch.minimum(pred[..., 2:], target[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = box_area(pred) + box_area(target) - inter
    iou = inter / (union + eps)
    hull = (torch.maximum(pred[..., 2:], target[..., 2:]) - torch.minimum(pred[..., :2], target[..., :2])).prod(-1)
    return 1.0 - (iou - (hull - union) / (hull + eps))


def encode(points: torch.Tensor, boxes: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """FCOS targets: distances ``(l, t, r, b)`` from each point to its box's sides, in units of the point's
    stride (``points``: A×2 xy, ``boxes``: A×4, ``strides``: A)."""
    p = points.repeat(1, 2)
    d = torch.cat([p[:, :2] - boxes[:, :2], boxes[:, 2:] - p[:, 2:]], 1)
    return d / strides[:, None]


def decode(points: torch.Tensor, dist: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode`: ``(l, t, r, b)`` in stride units (…×A×4) → boxes xyxy in pixels."""
    d = dist * strides[:, None]
    return torch.cat([points - d[..., :2], points + d[..., 2:]], -1)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_thresh: float) -> torch.Tensor:
    """Greedy NMS: indices of the kept boxes, highest score first (torchvision.ops.nms semantics: a box is
    dropped when its IoU with a kept, higher-scoring box is > ``iou_thresh``)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    n = len(order)
    suppressed = torch.zeros(n, dtype=torch.bool)
    over = (iou > iou_thresh).cpu()
    keep = []
    for i in range(n):  # n is small after the score threshold; the IoU matrix is one vectorised op
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= over[i]
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_thresh: float) -> torch.Tensor:
    """Class-aware NMS (boxes of different labels never suppress each other), torchvision's offset trick."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    offset = labels.to(boxes.dtype)[:, None] * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offset, scores, iou_thresh)


def postprocess(out: torch.Tensor | np.ndarray, score_thresh: float = 0.25, iou_thresh: float = 0.6,
                max_det: int = 100, multi_label: bool = False, with_index: bool = False) -> list[tuple[torch.Tensor, ...]]:
    """A detector's raw output ``N×A×(4+K)`` (boxes xyxy, per-class scores in [0, 1]) → per image
    ``(boxes k×4, scores k, labels k)`` after the score threshold and class-aware NMS, best first.

    ``multi_label``: every (box, class) pair above the threshold is a candidate, not only each box's best
    class — what COCO evaluation wants (a second guess at a confusable class still earns recall; as
    torchvision's RetinaNet / FCOS and YOLOv5's evaluation do); a camera loop wants one label per box.
    ``with_index``: each image's tuple also holds the kept detections' anchor indices (rows of ``out``)."""
    if not 0.0 <= score_thresh <= 1.0 or not 0.0 <= iou_thresh <= 1.0:
        raise ValueError(f"score_thresh and iou_thresh must be in [0, 1], got {score_thresh}, {iou_thresh}")
    if max_det < 1:
        raise ValueError(f"max_det must be >= 1, got {max_det}")
    t = torch.as_tensor(out)
    if t.ndim != 3 or t.shape[-1] < 5:
        raise ValueError(f"detector output must be N×A×(4+K), got shape {tuple(t.shape)}")
    res = []
    for o in t:
        boxes, cls = o[:, :4], o[:, 4:]
        if multi_label:
            i, labels = (cls > score_thresh).nonzero(as_tuple=True)
            boxes, scores = boxes[i], cls[i, labels]
        else:
            scores, labels = cls.max(1)
            m = scores > score_thresh
            i = m.nonzero(as_tuple=True)[0]
            boxes, scores, labels = boxes[m], scores[m], labels[m]
        if len(scores) > 10 * max_det:  # bound NMS's quadratic work
            top = scores.topk(10 * max_det).indices
            boxes, scores, labels, i = boxes[top], scores[top], labels[top], i[top]
        keep = batched_nms(boxes, scores, labels, iou_thresh)[:max_det]
        res.append((boxes[keep], scores[keep], labels[keep], i[keep]) if with_index
                   else (boxes[keep], scores[keep], labels[keep]))
    return res
