"""Synthetic detection scenes: Fashion-MNIST garments on a belt, a table, a gradient, a texture or a bright sheet.

Each scene is a ``size × size`` RGB model input holding ``min_items … max_items`` garments at random
scales, colours and positions.  With ``frame`` set, the scene is first drawn in a camera frame of its own
size (long side drawn from ``frame``, aspect w/h from ``aspect``; items of ``item_px`` pixels and item
aspect ``item_aspect``), lit unevenly (``lighting``), passed through the camera photometrics, and then
letterboxed into the ``size × size`` input exactly as the runner's ``resize="letterbox"`` does (one scale,
centred, the band filled with ``pad``); :meth:`SceneDataset.frame` gives the frame itself and its boxes in
frame pixels, :func:`letterbox_geometry` the mapping between the two.  Without ``frame`` the scene is
drawn directly at ``size`` (the square belt scenes).

Background families (:data:`BACKGROUNDS`): ``belt`` (dark rubber, stripes), ``clutter`` (a dark table with
low-contrast shapes), ``gradient`` (a smooth two-colour ramp), ``texture`` (band-limited noise: fabric,
wood, paper), ``bright`` (a light sheet: items darker or lighter than it), ``black`` (tests, figures).
:data:`HELD_OUT_BACKGROUND` is the family kept out of training (:func:`varied_cfg`) and reported apart.  Items may overlap partly (pairwise IoU ≤ ``max_iou``, and no box covered by
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

__all__ = ["SceneCfg", "SceneDataset", "make_scenes", "fashion_mnist_scenes", "BACKGROUNDS", "scene_seed",
           "HELD_OUT_BACKGROUND", "VARIED_BACKGROUNDS", "varied_cfg", "letterbox_geometry"]

BACKGROUNDS = ("belt", "clutter", "gradient", "texture", "bright", "black")
#: the family no training scene of :func:`varied_cfg` shows: a surface with structure at every scale, unlike
#: the dark belt / table, the smooth gradient and the plain bright sheet the detector learns on
HELD_OUT_BACKGROUND = "texture"
VARIED_BACKGROUNDS = ("belt", "clutter", "gradient", "texture", "bright")
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
    frame: tuple[int, int] | None = None  # long side of the camera frame, px (None: draw at ``size``)
    aspect: tuple[float, float] = (1.0, 1.0)  # frame width / height, drawn log-uniform
    item_px: tuple[int, int] | None = None  # item side in frame px, log-uniform (None: item_scale · 28)
    item_aspect: tuple[float, float] = (1.0, 1.0)  # item width / height stretch, log-uniform
    lighting: float = Field(0.0, ge=0, le=0.9)  # uneven light: a ramp and a spot of up to ± this gain
    pad: float = Field(0.0, ge=0, le=1)  # letterbox band fill (0..1; the runner's pad / 255)

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
        for name in ("aspect", "item_aspect"):
            a, b = getattr(self, name)
            if not 0 < a <= b:
                raise ValueError(f"{name} must be 0 < lo ≤ hi, got {(a, b)}")
        for name in ("frame", "item_px"):
            v = getattr(self, name)
            if v is not None and not 4 <= v[0] <= v[1]:
                raise ValueError(f"{name} must be 4 ≤ lo ≤ hi px, got {v}")
        if self.item_px is not None and self.frame is None:
            raise ValueError("item_px needs frame (item sizes are in camera-frame pixels)")
        return self


def varied_cfg(size: int = 128, held_out: bool = False, frame: tuple[int, int] = (64, 320),
               item_px: tuple[int, int] = (16, 112), **over: Any) -> SceneCfg:
    """Scenes of every kind: frames of 64–320 px long side and aspect 9:16 … 16:9, items of
    16–112 px with aspect 0.7–1.4, every background family but :data:`HELD_OUT_BACKGROUND` (``held_out``:
    that family only), uneven light, stronger blur and noise than the belt scenes; letterboxed to ``size``."""
    bgs = ({HELD_OUT_BACKGROUND: 1.0} if held_out
           else {b: 1.0 for b in VARIED_BACKGROUNDS if b != HELD_OUT_BACKGROUND})
    cam = CameraAug(shift=0.0, scale=(1.0, 1.0), flip=False, p_erase=0.0, p_blur=0.35, blur_sigma=1.5,
                    p_noise=0.6, noise_sigma=0.08)
    kw: dict[str, Any] = {"size": size, "frame": frame, "aspect": (9 / 16, 16 / 9), "item_px": item_px,
                          "item_aspect": (0.7, 1.4), "lighting": 0.45, "backgrounds": bgs, "camera": cam,
                          "max_items": 5}
    return SceneCfg(**{**kw, **over})


def letterbox_geometry(fh: int, fw: int, size: int) -> tuple[int, int, int, int]:
    """``(top, left, nh, nw)``: where an ``fh × fw`` frame lands in a ``size × size`` letterboxed input —
    the rule of :func:`adaptive_csp.runtime.resize.fit` (one scale ``min(size/fh, size/fw)``, rounded,
    centred), so that ``Preprocessor(resize="letterbox").geometry(fh, fw)`` maps these boxes back exactly."""
    r = min(size / fh, size / fw)
    nh, nw = min(size, max(1, round(fh * r))), min(size, max(1, round(fw * r)))
    return (size - nh) // 2, (size - nw) // 2, nh, nw


def scene_seed(seed: int, i: int) -> int:
    """The generator seed of scene ``i`` of ``seed``."""
    return (int(seed) * _SEED_STRIDE + int(i)) % (2**63 - 1)


def _tint(rng: np.random.Generator, spread: float) -> np.ndarray:
    return rng.uniform(1 - spread, 1 + spread, (3, 1, 1)).astype(np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def _belt(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Dark grey rubber belt: faint horizontal stripes and grain, a slight gradient, a tint."""
    base = rng.uniform(0.08, 0.22)
    y, x = _grid(h, w)
    period, phase = rng.uniform(3.0, 9.0), rng.uniform(0.0, 2 * np.pi)
    stripes = rng.uniform(0.008, 0.03) * np.sin(2 * np.pi * y / period + phase)
    grain = 0.012 * rng.standard_normal((h, 1), np.float32) + 0.006 * rng.standard_normal((h, w), np.float32)
    gx, gy = rng.uniform(-0.05, 0.05, 2)
    ramp = gx * (x - w / 2) / w + gy * (y - h / 2) / h
    grey = (base + stripes + grain + ramp).astype(np.float32)
    return np.clip(grey[None] * _tint(rng, 0.08), 0.02, 1)


def _clutter(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A table with low-contrast distractors: rectangles, ellipses and lines that are not garments."""
    base = rng.uniform(0.05, 0.3)
    img = np.broadcast_to(base * _tint(rng, 0.1), (3, h, w)).copy()
    y, x = _grid(h, w)
    side = min(h, w)
    for _ in range(int(rng.integers(3, 9))):
        kind = int(rng.integers(0, 3))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.04 * side, 0.3 * side, 2)
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


def _gradient(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth ramp between two colours in a random direction (a wall, a lit floor)."""
    y, x = _grid(h, w)
    ang = rng.uniform(0, 2 * np.pi)
    t = ((x - w / 2) * np.cos(ang) + (y - h / 2) * np.sin(ang)) / max(h, w) + 0.5
    c0, c1 = rng.uniform(0.05, 0.6, (2, 3, 1, 1)).astype(np.float32)
    return np.clip(c0 + (c1 - c0) * np.clip(t, 0, 1)[None], 0.02, 1).astype(np.float32)


def _texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Band-limited noise at two scales, stretched along a random axis: fabric, wood grain, paper."""
    out = np.zeros((h, w), np.float32)
    for cells, amp in ((rng.integers(3, 8), 1.0), (rng.integers(10, 30), 0.5)):
        ch, cw = max(2, int(cells * h / max(h, w))), max(2, int(cells * w / max(h, w)))
        if rng.random() < 0.5:
            ch = max(2, ch // 3)
        else:
            cw = max(2, cw // 3)
        coarse = torch.from_numpy(rng.standard_normal((1, 1, ch, cw)).astype(np.float32))
        out += amp * F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0, 0].numpy()
    out = out / max(1e-6, float(np.abs(out).max()))
    base, amp = rng.uniform(0.1, 0.45), rng.uniform(0.04, 0.15)
    return np.clip((base + amp * out)[None] * _tint(rng, 0.25), 0.02, 1).astype(np.float32)


def _bright(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A light sheet (paper, a white belt) with faint grain."""
    base = rng.uniform(0.55, 0.9)
    grain = 0.01 * rng.standard_normal((h, w), np.float32)
    return np.clip((base + grain)[None] * _tint(rng, 0.08), 0.02, 1).astype(np.float32)


_BG_FNS = {"belt": _belt, "clutter": _clutter, "gradient": _gradient, "texture": _texture, "bright": _bright}


def _background(kind: str, h: int, w: int, rng: np.random.Generator) -> torch.Tensor:
    if kind == "black":
        return torch.zeros(3, h, w)
    return torch.from_numpy(_BG_FNS[kind](h, w, rng))


def _light(frame: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Uneven light: the frame times a ramp plus a soft spot, both within ``1 ± strength``."""
    h, w = frame.shape[-2:]
    y, x = _grid(h, w)
    gx, gy = rng.uniform(-1, 1, 2)
    ramp = gx * (x / w - 0.5) + gy * (y / h - 0.5)
    cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.2, 0.6) * max(h, w)
    spot = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)) * rng.uniform(-1, 1)
    gain = np.clip(1 + strength * (0.6 * ramp + 0.6 * spot), 1 - strength, 1 + strength).astype(np.float32)
    return (frame * torch.from_numpy(gain)[None]).clamp(0, 1)


def _iou_cover(a: list[float], b: list[float]) -> tuple[float, float]:
    """IoU of boxes a and b (xyxy), and the larger fraction of either box the other covers."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter), inter / min(area_a, area_b)


def _item_alpha(img: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, list[float]] | None:
    """Resize one grey uint8 item (1×h×w) to ``h × w``; returns (intensity, alpha, tight box in item px)."""
    pix = F.interpolate(img[None].float() / 255.0, size=(h, w), mode="bilinear", align_corners=False,
                        antialias=True)[0, 0].clamp(0, 1)
    pix = pix / pix.max().clamp_min(1e-6)  # dim garments as bright as the rest: the colour sets the shade
    alpha = (pix / ALPHA_FULL).clamp(0, 1)
    alpha = torch.where(alpha > ALPHA_CUT, alpha, torch.zeros(()))
    rows, cols = torch.nonzero(alpha.any(1)).flatten(), torch.nonzero(alpha.any(0)).flatten()
    if len(rows) == 0:
        return None
    return pix, alpha, [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def _place(box: list[float], ih: int, iw: int, placed: list[list[float]], cfg: SceneCfg, fh: int, fw: int,
           rng: np.random.Generator, tries: int = 30) -> tuple[int, int] | None:
    """A top-left corner for an item whose tight box (item px) keeps the overlap limits, or None."""
    for _ in range(tries):
        if fh == fw and ih == iw:  # the square belt scenes' draw, kept so their pixels do not change
            x0, y0 = (int(v) for v in rng.integers(0, fw - iw + 1, 2))
        else:
            x0, y0 = int(rng.integers(0, fw - iw + 1)), int(rng.integers(0, fh - ih + 1))
        cand = [box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0]
        if all(iou <= cfg.max_iou and cover <= cfg.max_cover
               for iou, cover in (_iou_cover(cand, p) for p in placed)):
            return x0, y0
    return None


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)


def _item_size(rng: np.random.Generator, cfg: SceneCfg, side_px: int, fh: int, fw: int) -> tuple[int, int]:
    """``(h, w)`` of the next item's square before trimming, in frame px."""
    if cfg.item_px is None:
        side = max(4, min(int(round(rng.uniform(*cfg.item_scale) * side_px)), fh))
        return side, side
    side = _log_uniform(rng, *cfg.item_px)
    a = np.sqrt(_log_uniform(rng, *cfg.item_aspect))
    return max(4, min(int(round(side / a)), fh)), max(4, min(int(round(side * a)), fw))


def _items(images: torch.Tensor, rng: np.random.Generator, cfg: SceneCfg, frame: torch.Tensor,
           k: int) -> tuple[list[list[float]], list[int]]:
    """Paste up to ``k`` random items onto ``frame`` (3×H×W float, in place); returns boxes and item indices."""
    placed: list[list[float]] = []
    chosen: list[int] = []
    attempts = 0
    fh, fw = frame.shape[-2:]
    while len(placed) < k and attempts < 4 * k + 8:
        attempts += 1
        idx = int(rng.integers(0, images.shape[0]))
        drawn = _item_alpha(images[idx], *_item_size(rng, cfg, images.shape[-1], fh, fw))
        if drawn is None:
            continue
        pix, alpha, box = drawn
        ih, iw = pix.shape[-2:]
        at = _place(box, ih, iw, placed, cfg, fh, fw, rng)
        if at is None:
            continue
        x0, y0 = at
        grey = rng.random() < cfg.grey_items
        colour = np.full(3, rng.uniform(*cfg.colour)) if grey else rng.uniform(*cfg.colour, 3)
        region = frame[:, y0:y0 + ih, x0:x0 + iw]
        region.mul_(1 - alpha).add_(alpha * pix * torch.from_numpy(colour.astype(np.float32)).view(3, 1, 1))
        placed.append([box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0])
        chosen.append(idx)
    return placed, chosen


def _frame_size(cfg: SceneCfg, rng: np.random.Generator) -> tuple[int, int]:
    if cfg.frame is None:
        return cfg.size, cfg.size
    long = int(round(_log_uniform(rng, *cfg.frame)))
    a = _log_uniform(rng, *cfg.aspect)
    return (long, max(4, int(round(long * a)))) if a < 1 else (max(4, int(round(long / a))), long)


def _letterbox(frame: torch.Tensor, boxes: torch.Tensor, size: int, pad: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A 3×H×W frame and its boxes → the ``size × size`` letterboxed input and the boxes in input px."""
    fh, fw = frame.shape[-2:]
    top, left, nh, nw = letterbox_geometry(fh, fw, size)
    out = torch.full((3, size, size), float(pad))
    small = F.interpolate(frame[None], size=(nh, nw), mode="bilinear", align_corners=False,
                          antialias=nh < fh or nw < fw)[0]
    out[:, top:top + nh, left:left + nw] = small.clamp(0, 1)
    sx, sy = nw / fw, nh / fh
    b = boxes.clone()
    b[:, 0::2] = (b[:, 0::2] * sx + left).clamp(left, left + nw)  # float32 rounding (155 · 160/155 is
    b[:, 1::2] = (b[:, 1::2] * sy + top).clamp(top, top + nh)  # 160.00002) must not leave the placed frame
    return out, b


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
        if self.cfg.frame is None and self.images.shape[-1] * self.cfg.item_scale[0] > self.cfg.size:
            raise ValueError(f"items of side {self.images.shape[-1]} px at scale {self.cfg.item_scale[0]} "
                             f"do not fit a {self.cfg.size} px frame")
        names = [n for n, w in self.cfg.backgrounds.items() if w > 0]
        self._bg_names = names
        w = np.array([self.cfg.backgrounds[n] for n in names], dtype=np.float64)
        self._bg_p = w / w.sum()

    def __len__(self) -> int:
        return self.n

    def background(self, i: int) -> str:
        """The background family of scene ``i`` (drawn first from its own stream, so this is cheap)."""
        _, back = (np.random.default_rng(s) for s in np.random.SeedSequence(scene_seed(self.seed, i)).spawn(2))
        return self._bg_names[int(back.choice(len(self._bg_names), p=self._bg_p))]

    def frame(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scene ``i`` as the camera saw it, before letterboxing: ``(frame uint8 3×H×W, boxes in frame
        px, labels)`` (the same as ``self[i]`` when ``cfg.frame`` is None)."""
        frame, boxes, labels = self._draw(i)
        return (frame * 255 + 0.5).clamp(0, 255).to(torch.uint8), boxes, labels

    def _draw(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not -self.n <= i < self.n:
            raise IndexError(f"scene {i} out of range for {self.n} scenes")
        i = i % self.n if self.n else i
        cfg = self.cfg
        seed = scene_seed(self.seed, i)
        # separate streams: the item layout does not change with the background or the camera settings
        layout, back = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        gen = torch.Generator().manual_seed(seed)  # the camera photometrics
        kind = self._bg_names[int(back.choice(len(self._bg_names), p=self._bg_p))]
        fh, fw = _frame_size(cfg, layout)
        frame = _background(kind, fh, fw, back)
        k = int(layout.integers(cfg.min_items, cfg.max_items + 1))
        boxes, idx = _items(self.images, layout, cfg, frame, k)
        if len(boxes) < cfg.min_items:
            raise ValueError(f"scene {i}: could place only {len(boxes)} of {cfg.min_items} items in a "
                             f"{fw}×{fh} px frame; lower item_scale or min_items, or raise max_iou")
        if cfg.lighting > 0:
            frame = _light(frame, cfg.lighting, back)
        if cfg.camera is not None:
            frame = camera_augment(frame[None], gen, cfg.camera)[0]
        b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        return frame, b, self.item_labels[idx] if idx else torch.zeros(0, dtype=torch.int64)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frame, b, labels = self._draw(i)
        if self.cfg.frame is not None:
            frame, b = _letterbox(frame, b, self.cfg.size, self.cfg.pad)
        return (frame * 255 + 0.5).clamp(0, 255).to(torch.uint8), b, labels


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
                  {"name": "Fashion-MNIST scenes", "seed": int(seed), "cfg": ds.cfg.model_dump(mode="json"),
                   "backgrounds": [ds.background(i) for i in range(n)]})


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
