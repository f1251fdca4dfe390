"""Labelled images held in memory as one uint8 tensor: what training, profiling and evaluation read.

:class:`ImageSet` is the common form of every data source — Fashion-MNIST, an image folder
(:mod:`adaptive_csp.data.folder`) or any map-style torch ``Dataset`` of ``(image tensor, label)``
(:func:`from_dataset`).  It carries what a trained model must know to read frames later: class names,
input size, channels and the normalisation (per-channel mean / std of the training images).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["ImageSet", "from_dataset", "channel_stats", "holdout"]


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # uint8, N×C×H×W
    labels: torch.Tensor  # int64, N
    class_names: tuple[str, ...]
    mean: tuple[float, ...] = ()  # per channel, images scaled to [0, 1]; () = computed on demand
    std: tuple[float, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)  # name, source, licence of the data

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"ImageSet images must be uint8 N×C×H×W, got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")
        if len(self.class_names) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {list(self.class_names)}")
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.class_names)):
            raise ValueError(f"labels must be in 0..{len(self.class_names) - 1}")
        if not self.mean or not self.std:
            m, s = channel_stats(self.images)
            object.__setattr__(self, "mean", m)
            object.__setattr__(self, "std", s)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_chans(self) -> int:
        return int(self.images.shape[1])

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def take(self, idx: slice | torch.Tensor | Sequence[int]) -> ImageSet:
        idx = torch.as_tensor(idx) if not isinstance(idx, slice) else idx
        return ImageSet(self.images[idx], self.labels[idx], self.class_names, self.mean, self.std, self.info)

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (any device / dtype) → the model's input."""
        m = torch.tensor(self.mean, dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
        s = torch.tensor(self.std, dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
        return (x01 - m) / s

    def normalized(self, idx: slice | torch.Tensor = slice(None)) -> torch.Tensor:
        return self.normalize(self.images[idx].float() / 255.0)

    def preprocess_meta(self) -> dict[str, Any]:
        """The model metadata's ``preprocess`` entry (read by ``AdaptiveRunner``'s preprocessing)."""
        return {"input_size": list(self.input_size), "in_chans": self.in_chans,
                "color": "grey" if self.in_chans == 1 else "rgb", "mean": list(self.mean),
                "std": list(self.std), "scale": 1 / 255,
                "resize": "stretch"}  # how the images were fitted to input_size (folder.py, from_dataset)


def channel_stats(images: torch.Tensor, limit: int = 20000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean / std of uint8 images scaled to [0, 1] (first ``limit`` images)."""
    x = images[:limit].float() / 255.0
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def _to_uint8(img: Any, where: str, size: tuple[int, int] | None) -> torch.Tensor:
    t = torch.as_tensor(img)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"{where}: an image must be C×H×W or H×W, got shape {tuple(t.shape)}")
    if t.dtype != torch.uint8:
        t = t.float()
        if not torch.isfinite(t).all():
            raise ValueError(f"{where}: image has NaN or Inf values")
        if float(t.min()) < 0 or float(t.max()) > 1:
            raise ValueError(f"{where}: float images must be in [0, 1]")
        t = (t * 255 + 0.5).to(torch.uint8)
    if size is not None and tuple(t.shape[1:]) != tuple(size):
        t = F.interpolate(t[None].float(), size=size, mode="area")[0].round().clamp(0, 255).to(torch.uint8)
    return t


def from_dataset(ds: Any, class_names: Sequence[str] | None = None, input_size: tuple[int, int] | None = None,
                 info: dict[str, Any] | None = None) -> ImageSet:
    """Read a map-style Dataset of ``(image, label)`` into memory (images: uint8 or float in [0, 1],
    C×H×W or H×W; all resized to ``input_size`` or the first image's size).  Class names come from
    ``class_names``, else the dataset's ``classes`` attribute, else ``"0" … "K-1"``."""
    if isinstance(ds, ImageSet):
        return ds
    n = len(ds)
    if n == 0:
        raise ValueError("the dataset is empty")
    imgs, labels = [], []
    for i in range(n):
        item = ds[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(f"dataset item {i} must be (image, label), got {type(item).__name__}")
        img = _to_uint8(item[0], f"dataset item {i}", input_size)
        if input_size is None:
            input_size = tuple(img.shape[1:])
        if imgs and img.shape[0] != imgs[0].shape[0]:
            raise ValueError(f"dataset item {i} has {img.shape[0]} channels, item 0 has {imgs[0].shape[0]}")
        imgs.append(img)
        labels.append(int(item[1]))
    names = class_names or getattr(ds, "classes", None) or [str(k) for k in range(max(labels) + 1)]
    return ImageSet(torch.stack(imgs), torch.tensor(labels, dtype=torch.int64), tuple(str(c) for c in names),
                    info=dict(info or {}))


def holdout(data: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """(validation, training): a seeded random ``fraction`` of ``data`` held out (the same every time)."""
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    nv = max(1, int(round(len(data) * fraction)))
    if nv >= len(data):
        raise ValueError(f"{len(data)} images are too few to hold out a validation split")
    return data.take(perm[:nv]), data.take(perm[nv:])
