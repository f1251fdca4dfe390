"""Camera augmentation: make clean dataset images look like what a camera and a resize deliver.

Fashion-MNIST items sit on a background that is exactly 0; a camera never gives that.  A model trained
only on clean images learns "background = 0" and loses much of its accuracy once even a small black level
appears (docs/results/robustness.md).  Each image of a batch independently gets, with the probabilities in
:class:`CameraAug`:

* geometry — small shifts, scale changes and a horizontal flip (one ``affine_grid`` / ``grid_sample``);
* black level / offset and gain (``o + g·x``), and per-channel gain (colour tint; a grey model sees the
  tint as another gain after grey conversion, so grey images get one gain);
* blur (Gaussian, σ per image) — optics, motion and the runner's down-sizing;
* sensor noise (Gaussian, σ per image);
* JPEG artefacts (OpenCV encode / decode at a random quality, when OpenCV is installed);
* random erasing (a rectangle of one random grey level: occlusion, glare).

Works on float images in [0, 1], N×C×H×W, on whatever device and dtype the batch has; the generator
makes it reproducible.  In the spirit of MNIST-C / ImageNet-C, whose corruptions
:func:`corrupt` applies deterministically at a fixed severity for evaluation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CameraAug", "camera_augment", "corrupt", "CORRUPTIONS"]


class CameraAug(BaseModel):
    """Probabilities and ranges of :func:`camera_augment` (``p_*``: chance per image)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    shift: float = Field(0.1, ge=0, le=0.5)  # max shift as a fraction of the image side
    scale: tuple[float, float] = (0.85, 1.15)
    flip: bool = True
    p_photometric: float = Field(0.8, ge=0, le=1)
    black_level: float = Field(0.25, ge=0, le=1)  # offset drawn from [0, black_level]
    gain: tuple[float, float] = (0.6, 1.3)
    tint: float = Field(0.15, ge=0, le=1)  # per-channel gain spread (colour images)
    p_blur: float = Field(0.3, ge=0, le=1)
    blur_sigma: float = Field(1.2, ge=0)
    p_noise: float = Field(0.5, ge=0, le=1)
    noise_sigma: float = Field(0.06, ge=0)
    p_jpeg: float = Field(0.2, ge=0, le=1)
    jpeg_quality: tuple[int, int] = (25, 90)
    p_erase: float = Field(0.25, ge=0, le=1)


def _u(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _geometry(x: torch.Tensor, cfg: CameraAug, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    s = _u(n, cfg.scale[0], cfg.scale[1], gen)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n)
    tx, ty = (_u(n, -2 * cfg.shift, 2 * cfg.shift, gen) for _ in range(2))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = flip / s
    theta[:, 1, 1] = 1.0 / s
    theta[:, 0, 2], theta[:, 1, 2] = tx, ty
    theta = theta.to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur (σ ≤ 0 leaves an image unchanged)."""
    n, c, h, w = x.shape
    r = max(1, int(math.ceil(2 * float(sigma.max()))))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    sig = sigma.to(x).clamp_min(1e-3)[:, None]
    k = torch.exp(-0.5 * (t[None] / sig) ** 2)
    k = k / k.sum(1, keepdim=True)  # n × (2r+1)
    k = torch.where(sigma.to(x.device)[:, None] > 0, k, (t == 0).to(x)[None].expand_as(k))
    kc = k.repeat_interleave(c, 0)  # (n·c) × (2r+1)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), kc[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), kc[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def _jpeg(x: torch.Tensor, quality: list[int]) -> torch.Tensor:
    import cv2

    out = []
    for img, q in zip(x, quality):
        a = (img.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        if not ok:
            out.append(img)
            continue
        flag = cv2.IMREAD_GRAYSCALE if a.shape[2] == 1 else cv2.IMREAD_COLOR
        d = cv2.imdecode(buf, flag).reshape(a.shape)
        out.append(torch.from_numpy(d).permute(2, 0, 1).to(x) / 255.0)
    return torch.stack(out)


def _erase(x: torch.Tensor, mask: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    x = x.clone()
    for i in torch.nonzero(mask).flatten().tolist():
        eh = int(h * float(_u(1, 0.2, 0.5, gen)))
        ew = int(w * float(_u(1, 0.2, 0.5, gen)))
        y0 = int(torch.randint(0, h - eh + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, w - ew + 1, (1,), generator=gen))
        x[i, :, y0:y0 + eh, x0:x0 + ew] = float(torch.rand(1, generator=gen))
    return x


def camera_augment(x: torch.Tensor, gen: torch.Generator, cfg: CameraAug | None = None) -> torch.Tensor:
    """Augment a float batch in [0, 1] (N×C×H×W) as a camera would see it; returns a new batch in [0, 1]."""
    cfg = cfg or CameraAug()
    if x.ndim != 4:
        raise ValueError(f"camera_augment needs an N×C×H×W batch, got shape {tuple(x.shape)}")
    n, c = x.shape[:2]
    x = _geometry(x, cfg, gen)
    photo = (torch.rand(n, generator=gen) < cfg.p_photometric).to(x)[:, None, None, None]
    gain = _u(n, cfg.gain[0], cfg.gain[1], gen).to(x)[:, None, None, None]
    if c > 1 and cfg.tint > 0:
        gain = gain * _u(n * c, 1 - cfg.tint, 1 + cfg.tint, gen).to(x).view(n, c, 1, 1)
    offset = _u(n, 0.0, cfg.black_level, gen).to(x)[:, None, None, None]
    x = photo * (offset + gain * x) + (1 - photo) * x
    if cfg.p_blur > 0:
        sigma = _u(n, 0.3, cfg.blur_sigma, gen) * (torch.rand(n, generator=gen) < cfg.p_blur)
        if bool((sigma > 0).any()):
            x = _blur(x, sigma)
    if cfg.p_noise > 0:
        sd = _u(n, 0.0, cfg.noise_sigma, gen) * (torch.rand(n, generator=gen) < cfg.p_noise)
        x = x + sd.to(x)[:, None, None, None] * torch.randn(x.shape, generator=gen).to(x)
    x = x.clamp(0, 1)
    if cfg.p_jpeg > 0:
        sel = torch.nonzero(torch.rand(n, generator=gen) < cfg.p_jpeg).flatten()
        q = torch.randint(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, (len(sel),), generator=gen).tolist()
        if len(sel):
            try:
                x[sel] = _jpeg(x[sel], q)
            except ImportError:  # OpenCV is an extra: skip JPEG artefacts without it
                pass
    if cfg.p_erase > 0:
        x = _erase(x, torch.rand(n, generator=gen) < cfg.p_erase, gen)
    return x


# --- fixed corruptions for evaluation (benchmarks/robustness.py) -------------------------------------
CORRUPTIONS: dict[str, dict] = {
    "black level +10": {"offset": 10 / 255},
    "black level +40": {"offset": 40 / 255},
    "gain 0.6": {"gain": 0.6},
    "gain 1.4": {"gain": 1.4},
    "tint": {"tint": (1.25, 1.0, 0.75)},
    "noise sd 8": {"noise": 8 / 255},
    "blur sigma 1.5": {"blur": 1.5},
    "jpeg q20": {"jpeg": 20},
    "dark belt + noise": {"offset": 25 / 255, "gain": 0.8, "noise": 6 / 255},
    "tint + blur + jpeg": {"tint": (0.8, 1.0, 1.2), "blur": 1.0, "jpeg": 40},
}


def corrupt(frames: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """Apply corruption ``name`` (a key of :data:`CORRUPTIONS`, or ``"clean"``) to uint8 frames
    (N×H×W×3 BGR or N×H×W grey) the same way every time; returns uint8 frames of the same shape."""
    if name == "clean":
        return frames
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: clean, {', '.join(CORRUPTIONS)}")
    spec = CORRUPTIONS[name]
    rng = np.random.default_rng(seed)
    x = frames.astype(np.float32) / 255.0
    if "tint" in spec and x.ndim == 4:
        x = x * np.asarray(spec["tint"], np.float32)
    x = spec.get("offset", 0.0) + spec.get("gain", 1.0) * x
    if "blur" in spec:
        import cv2

        x = np.stack([cv2.GaussianBlur(f, (0, 0), spec["blur"]) for f in x])
    if "noise" in spec:
        x = x + rng.normal(0.0, spec["noise"], x.shape).astype(np.float32)
    out = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    if "jpeg" in spec:
        import cv2

        q = [cv2.IMWRITE_JPEG_QUALITY, int(spec["jpeg"])]
        flag = cv2.IMREAD_COLOR if out.ndim == 4 else cv2.IMREAD_GRAYSCALE
        out = np.stack([cv2.imdecode(cv2.imencode(".jpg", f, q)[1], flag) for f in out])
    return out
