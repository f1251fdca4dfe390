"""Images with boxes held in memory: what detector training, evaluation and COCO export read.

:class:`DetSet` is the common form of every detection source — the synthetic Fashion-MNIST scenes
(:mod:`adaptive_csp.detect.scenes`) and COCO-format folders (:mod:`adaptive_csp.data.coco`).  Boxes are
``x1, y1, x2, y2`` in pixels with an exclusive far edge: a box covering columns 3..7 has ``x1 = 3``,
``x2 = 8`` (so ``x2 - x1`` is the width, as in COCO's ``[x, y, w, h]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["DetSet", "check_boxes"]


def check_boxes(boxes: torch.Tensor, labels: torch.Tensor, height: int, width: int, num_classes: int,
                where: str) -> None:
    """Raise ValueError (naming ``where``) unless ``boxes`` (k×4 xyxy) and ``labels`` (k) are a valid
    annotation of an image of ``height × width``."""
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not boxes.is_floating_point():
        raise ValueError(f"{where}: boxes must be a float k×4 tensor, got {boxes.dtype} {tuple(boxes.shape)}")
    if labels.dtype != torch.int64 or labels.shape != (boxes.shape[0],):
        raise ValueError(f"{where}: labels must be int64 of shape ({boxes.shape[0]},), got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    if len(boxes) == 0:
        return
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{where}: boxes contain NaN or Inf")
    x1, y1, x2, y2 = boxes.unbind(1)
    bad = (x1 < 0) | (y1 < 0) | (x2 > width) | (y2 > height)
    if bool(bad.any()):
        j = int(torch.nonzero(bad)[0])
        raise ValueError(f"{where}: box {j} {boxes[j].tolist()} lies outside the {width}×{height} image")
    bad = (x2 <= x1) | (y2 <= y1)
    if bool(bad.any()):
        j = int(torch.nonzero(bad)[0])
        raise ValueError(f"{where}: box {j} {boxes[j].tolist()} is empty (needs x2 > x1 and y2 > y1)")
    bad = (labels < 0) | (labels >= num_classes)
    if bool(bad.any()):
        j = int(torch.nonzero(bad)[0])
        raise ValueError(f"{where}: label {int(labels[j])} of box {j} is outside 0..{num_classes - 1}")


@dataclass
class DetSet:
    """N RGB images (uint8 N×3×H×W) with per-image boxes (k×4 float32 xyxy, pixels) and labels (k int64).

    ``ds[i]`` is ``(image, boxes, labels)``, so a DetSet is a map-style torch Dataset as it stands."""

    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    class_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)  # name, source, licence of the data

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"DetSet images must be uint8 N×3×H×W (RGB), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        n, _, h, w = self.images.shape
        if len(self.boxes) != n or len(self.labels) != n:
            raise ValueError(f"{n} images but {len(self.boxes)} box lists and {len(self.labels)} label lists")
        self.class_names = [str(c) for c in self.class_names]
        if not self.class_names:
            raise ValueError("a DetSet needs at least one class name")
        for i, (b, lab) in enumerate(zip(self.boxes, self.labels)):
            check_boxes(b, lab, h, w, len(self.class_names), f"image {i}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.images[i], self.boxes[i], self.labels[i]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def take(self, idx: slice | torch.Tensor | Sequence[int]) -> DetSet:
        """The images at ``idx`` (a slice, index sequence or tensor) as a new DetSet."""
        if isinstance(idx, slice):
            rows = list(range(len(self)))[idx]
        else:
            rows = torch.as_tensor(idx, dtype=torch.int64).reshape(-1).tolist()
        return DetSet(self.images[rows], [self.boxes[i] for i in rows], [self.labels[i] for i in rows],
                      list(self.class_names), dict(self.info))
