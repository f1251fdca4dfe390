"""Synthetic detection scenes: Fashion-MNIST garments lying on a conveyor belt or a cluttered table.

Each scene is a ``size × size`` RGB frame holding ``min_items … max_items`` garments at random scales,
colours and positions.  Items may overlap partly (pairwise IoU ≤ ``max_iou``, and no box covered by
another beyond ``max_cover``) but never hide one another.  A garment is pasted with its intensity as
alpha (its exactly-black surround is transparent; alpha ≤ :data:`ALPHA_CUT` is not drawn at all), so
its box — the tight box of the drawn pixels — is exactly what is visible.  The camera photometrics of
:func:`adaptive_csp.data.camera.camera_augment` (black level, gain, tint, blur, noise, JPEG) come last;
geometry and erasing are off so the boxes stay true.

Scene ``i`` of seed ``s`` is drawn from its own generators (numpy and torch) seeded with ``s·1_000_003 + i``: the same
``(seed, i)`` gives the same pixels and boxes however many scenes were made before, in any order.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adaptive_csp.data.camera import CameraAug, camera_augment
from adaptive_csp.data.detset import DetSet

__all__ = ["SceneCfg", "SceneDataset", "make_scenes", "fashion_mnist_scenes", "BACKGROUNDS", "scene_seed"]

BACKGROUNDS = ("belt", "clutter", "black")
ALPHA_FULL = 0.25  # item intensity (fraction of 255) at and above which a garment is opaque
ALPHA_CUT = 0.1  # alpha at or below which nothing is drawn (outside the item's box)
_SEED_STRIDE = 1_000_003


def _scene_camera() -> CameraAug:
    return CameraAug(shift=0.0, scale=(1.0, 1.0), flip=False, p_erase=0.0)


class SceneCfg(BaseModel):
    """How a scene looks.  ``camera=None`` turns the photometrics off; ``"black"`` is a plain black
    background (for tests and figures)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    size: int = Field(96, ge=32, le=1024)  # frame side, px
    min_items: int = Field(1, ge=0)
    max_items: int = Field(4, ge=1, le=32)
    item_scale: tuple[float, float] = (0.8, 1.7)  # item side = scale · item image side (28 px)
    max_iou: float = Field(0.25, ge=0, le=1)  # between any two item boxes
    max_cover: float = Field(0.5, ge=0, le=1)  # fraction of a box another box may cover
    backgrounds: dict[str, float] = Field(default_factory=lambda: {"belt": 0.5, "clutter": 0.5})
    grey_items: float = Field(0.25, ge=0, le=1)  # chance an item is grey rather than coloured
    colour: tuple[float, float] = (0.4, 1.0)  # per-channel colour multiplier of an item
    camera: CameraAug | None = Field(default_factory=_scene_camera)

    @field_validator("backgrounds")
    @classmethod
    def _bg(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - set(BACKGROUNDS)
        if unknown:
            raise ValueError(f"unknown backgrounds {sorted(unknown)}; known: {', '.join(BACKGROUNDS)}")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError(f"background weights must be ≥ 0 with a positive sum, got {v}")
        return v

    @field_validator("camera")
    @classmethod
    def _cam(cls, v: CameraAug | None) -> CameraAug | None:
        if v is not None and (v.shift != 0 or tuple(v.scale) != (1.0, 1.0) or v.flip or v.p_erase != 0):
            raise ValueError("scene camera must not move or erase pixels (shift=0, scale=(1, 1), flip=False, "
                             "p_erase=0), or the boxes would no longer match the items")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> SceneCfg:
        if self.min_items > self.max_items:
            raise ValueError(f"min_items {self.min_items} > max_items {self.max_items}")
        lo, hi = self.item_scale
        if not 0 < lo <= hi:
            raise ValueError(f"item_scale must be 0 < lo ≤ hi, got {self.item_scale}")
        if not 0 <= self.colour[0] <= self.colour[1] <= 1:
            raise ValueError(f"colour must be 0 ≤ lo ≤ hi ≤ 1, got {self.colour}")
        return self


def scene_seed(seed: int, i: int) -> int:
    """The generator seed of scene ``i`` of ``seed``."""
    return (int(seed) * _SEED_STRIDE + int(i)) % (2**63 - 1)


def _tint(rng: np.random.Generator, spread: float) -> np.ndarray:
    return rng.uniform(1 - spread, 1 + spread, (3, 1, 1)).astype(np.float32)


def _belt(size: int, rng: np.random.Generator) -> np.ndarray:
    """Dark grey rubber belt: faint horizontal stripes and grain, a slight gradient, a tint."""
    base = rng.uniform(0.08, 0.22)
    y = np.arange(size, dtype=np.float32)[:, None]
    x = np.arange(size, dtype=np.float32)[None, :]
    period, phase = rng.uniform(3.0, 9.0), rng.uniform(0.0, 2 * np.pi)
    stripes = rng.uniform(0.008, 0.03) * np.sin(2 * np.pi * y / period + phase)
    grain = 0.012 * rng.standard_normal((size, 1), np.float32) \
        + 0.006 * rng.standard_normal((size, size), np.float32)
    gx, gy = rng.uniform(-0.05, 0.05, 2)
    ramp = (gx * (x - size / 2) + gy * (y - size / 2)) / size
    grey = (base + stripes + grain + ramp).astype(np.float32)
    return np.clip(grey[None] * _tint(rng, 0.08), 0.02, 1)


def _clutter(size: int, rng: np.random.Generator) -> np.ndarray:
    """A table with low-contrast distractors: rectangles, ellipses and lines that are not garments."""
    base = rng.uniform(0.05, 0.3)
    img = np.broadcast_to(base * _tint(rng, 0.1), (3, size, size)).copy()
    y = np.arange(size, dtype=np.float32)[:, None]
    x = np.arange(size, dtype=np.float32)[None, :]
    for _ in range(int(rng.integers(3, 9))):
        kind = int(rng.integers(0, 3))
        cx, cy = rng.uniform(0, size, 2)
        rx, ry = rng.uniform(0.04 * size, 0.3 * size, 2)
        if kind == 0:
            mask = (np.abs(x - cx) <= rx) & (np.abs(y - cy) <= ry)
        elif kind == 1:
            mask = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
        else:
            ang = rng.uniform(0, np.pi)
            along = (x - cx) * np.cos(ang) + (y - cy) * np.sin(ang)
            across = -(x - cx) * np.sin(ang) + (y - cy) * np.cos(ang)
            mask = (np.abs(along) <= rx) & (np.abs(across) <= rng.uniform(0.5, 2.0))
        level = (base + rng.uniform(-0.12, 0.12)) * _tint(rng, 0.15)
        img = np.where(mask[None], level, img)
    return np.clip(img, 0.02, 1).astype(np.float32)  # dark, never exactly black


def _background(kind: str, size: int, rng: np.random.Generator) -> torch.Tensor:
    if kind == "belt":
        return torch.from_numpy(_belt(size, rng))
    if kind == "clutter":
        return torch.from_numpy(_clutter(size, rng))
    return torch.zeros(3, size, size)


def _iou_cover(a: list[float], b: list[float]) -> tuple[float, float]:
    """IoU of boxes a and b (xyxy), and the larger fraction of either box the other covers."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter), inter / min(area_a, area_b)


def _item_alpha(img: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor, list[float]] | None:
    """Resize one grey uint8 item (1×h×w) to ``side``; returns (intensity, alpha, tight box in item px)."""
    pix = F.interpolate(img[None].float() / 255.0, size=(side, side), mode="bilinear", align_corners=False,
                        antialias=True)[0, 0].clamp(0, 1)
    pix = pix / pix.max().clamp_min(1e-6)  # dim garments as bright as the rest: the colour sets the shade
    alpha = (pix / ALPHA_FULL).clamp(0, 1)
    alpha = torch.where(alpha > ALPHA_CUT, alpha, torch.zeros(()))
    rows, cols = torch.nonzero(alpha.any(1)).flatten(), torch.nonzero(alpha.any(0)).flatten()
    if len(rows) == 0:
        return None
    return pix, alpha, [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def _place(box: list[float], side: int, placed: list[list[float]], cfg: SceneCfg,
           rng: np.random.Generator, tries: int = 30) -> tuple[int, int] | None:
    """A top-left corner for an item whose tight box (item px) keeps the overlap limits, or None."""
    for _ in range(tries):
        x0, y0 = (int(v) for v in rng.integers(0, cfg.size - side + 1, 2))
        cand = [box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0]
        if all(iou <= cfg.max_iou and cover <= cfg.max_cover
               for iou, cover in (_iou_cover(cand, p) for p in placed)):
            return x0, y0
    return None


def _items(images: torch.Tensor, rng: np.random.Generator, cfg: SceneCfg, frame: torch.Tensor,
           k: int) -> tuple[list[list[float]], list[int]]:
    """Paste up to ``k`` random items onto ``frame`` (3×S×S float, in place); returns boxes and item indices."""
    placed: list[list[float]] = []
    chosen: list[int] = []
    attempts = 0
    while len(placed) < k and attempts < 4 * k + 8:
        attempts += 1
        idx = int(rng.integers(0, images.shape[0]))
        side = int(round(rng.uniform(*cfg.item_scale) * images.shape[-1]))
        drawn = _item_alpha(images[idx], max(4, min(side, cfg.size)))
        if drawn is None:
            continue
        pix, alpha, box = drawn
        side = pix.shape[-1]
        at = _place(box, side, placed, cfg, rng)
        if at is None:
            continue
        x0, y0 = at
        grey = rng.random() < cfg.grey_items
        colour = np.full(3, rng.uniform(*cfg.colour)) if grey else rng.uniform(*cfg.colour, 3)
        region = frame[:, y0:y0 + side, x0:x0 + side]
        region.mul_(1 - alpha).add_(alpha * pix * torch.from_numpy(colour.astype(np.float32)).view(3, 1, 1))
        placed.append([box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0])
        chosen.append(idx)
    return placed, chosen


def _check_items(items: Any) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    images, labels = getattr(items, "images", None), getattr(items, "labels", None)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4 \
            or images.shape[1] != 1:
        raise ValueError("scene items must have .images as a uint8 N×1×H×W tensor (grey, bright item on black)")
    if not isinstance(labels, torch.Tensor) or labels.shape != (images.shape[0],) or images.shape[0] == 0:
        raise ValueError(f"scene items need .labels of shape ({images.shape[0]},) and at least one item")
    names = getattr(items, "class_names", None)
    if names is None:
        from adaptive_csp.data.fashion_mnist import CLASS_NAMES

        names = CLASS_NAMES
    return images, labels.to(torch.int64), [str(c) for c in names]


class SceneDataset(torch.utils.data.Dataset):
    """Map-style dataset of ``n`` scenes made on the fly: ``ds[i] = (image uint8 3×S×S, boxes, labels)``,
    identical to scene ``i`` of :func:`make_scenes` with the same items, seed and cfg."""

    def __init__(self, items: Any, n: int, seed: int, cfg: SceneCfg | None = None):
        if n < 0:
            raise ValueError(f"the number of scenes must be ≥ 0, got {n}")
        self.images, self.item_labels, self.class_names = _check_items(items)
        self.n, self.seed, self.cfg = int(n), int(seed), cfg or SceneCfg()
        if self.images.shape[-1] * self.cfg.item_scale[0] > self.cfg.size:
            raise ValueError(f"items of side {self.images.shape[-1]} px at scale {self.cfg.item_scale[0]} "
                             f"do not fit a {self.cfg.size} px frame")
        names = [n for n, w in self.cfg.backgrounds.items() if w > 0]
        self._bg_names = names
        w = np.array([self.cfg.backgrounds[n] for n in names], dtype=np.float64)
        self._bg_p = w / w.sum()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not -self.n <= i < self.n:
            raise IndexError(f"scene {i} out of range for {self.n} scenes")
        i = i % self.n if self.n else i
        cfg = self.cfg
        seed = scene_seed(self.seed, i)
        # separate streams: the item layout does not change with the background or the camera settings
        layout, back = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        gen = torch.Generator().manual_seed(seed)  # the camera photometrics
        kind = self._bg_names[int(back.choice(len(self._bg_names), p=self._bg_p))]
        frame = _background(kind, cfg.size, back)
        k = int(layout.integers(cfg.min_items, cfg.max_items + 1))
        boxes, idx = _items(self.images, layout, cfg, frame, k)
        if len(boxes) < cfg.min_items:
            raise ValueError(f"scene {i}: could place only {len(boxes)} of {cfg.min_items} items in a "
                             f"{cfg.size} px frame; lower item_scale or min_items, or raise max_iou")
        if cfg.camera is not None:
            frame = camera_augment(frame[None], gen, cfg.camera)[0]
        image = (frame * 255 + 0.5).clamp(0, 255).to(torch.uint8)
        b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        return image, b, self.item_labels[idx] if idx else torch.zeros(0, dtype=torch.int64)


def make_scenes(items: Any, n: int, seed: int, cfg: SceneCfg | None = None) -> DetSet:
    """``n`` scenes of ``items`` (anything with ``.images`` uint8 N×1×H×W, ``.labels`` and optionally
    ``.class_names``, e.g. an ImageSet or a Fashion-MNIST Split) as a :class:`DetSet`."""
    ds = SceneDataset(items, n, seed, cfg)
    s = ds.cfg.size
    images = torch.empty(n, 3, s, s, dtype=torch.uint8)
    boxes, labels = [], []
    for i in range(n):
        images[i], b, lab = ds[i]
        boxes.append(b)
        labels.append(lab)
    return DetSet(images, boxes, labels, ds.class_names,
                  {"name": "Fashion-MNIST scenes", "seed": int(seed), "cfg": ds.cfg.model_dump(mode="json")})


def fashion_mnist_scenes(split: Literal["train", "val", "test"], n: int, seed: int,
                         cfg: SceneCfg | None = None) -> DetSet:
    """Scenes whose items come from one Fashion-MNIST split: ``train`` (55 000 items), ``val`` (the 5 000
    held-out training items, for model and ladder selection) or ``test`` (t10k, reported numbers only)."""
    from adaptive_csp.data.fashion_mnist import LICENSE, as_imageset, load_split

    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r} (train, val, test)")
    ds = make_scenes(as_imageset(load_split(split)), n, seed, cfg)
    ds.info.update({"split": split, "license": LICENSE})
    return ds
