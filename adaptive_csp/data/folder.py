"""Your own images: one sub-folder per class (the ImageFolder layout), read with OpenCV.

::

    DIR/
      cat/ a.png b.jpg …
      dog/ …

Any size, grey or colour (colour is kept as RGB); every image is resized (area interpolation) to
``input_size`` (default: the first image's size, capped at 64 px on its longer side).  Errors name the
file or folder: an empty folder, a single class, an unreadable or truncated image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from adaptive_csp.data.images import ImageSet

__all__ = ["IMAGE_SUFFIXES", "load_folder", "scan_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def scan_folder(root: str | Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted sub-folder names) and (file, class index) pairs; ValueError on a bad layout."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder (expected one sub-folder of images per class)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root}: no class sub-folders (expected DIR/<class>/<image>.png …)")
    if len(classes) < 2:
        raise ValueError(f"{root}: only one class ({classes[0]!r}); a classifier needs at least 2")
    items: list[tuple[Path, int]] = []
    for k, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{root / name}: class folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        items += [(f, k) for f in files]
    return classes, items


def _read(path: Path, color: bool):
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE) if data.size else None
    if img is None:
        raise ValueError(f"{path}: unreadable or truncated image")
    if color:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def _is_colour(path: Path) -> bool:
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ValueError(f"{path}: unreadable or truncated image")
    if img.ndim == 2 or img.shape[2] == 1:
        return False
    b, g, r = img[..., 0].astype(int), img[..., 1].astype(int), img[..., 2].astype(int)
    return bool((b != g).any() or (g != r).any())


def load_folder(root: str | Path, input_size: tuple[int, int] | None = None, color: bool | None = None,
                class_names: list[str] | None = None, max_side: int = 64) -> ImageSet:
    """Read an ImageFolder-layout folder into an :class:`ImageSet` (uint8, N×C×H×W).

    ``color``: None decides from the first images (any non-grey pixel → RGB); ``class_names``: expect
    exactly these classes (a validation folder must match the training folder's).
    """
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - opencv is in the 'video' and 'dev' extras
        raise ImportError("reading image folders needs OpenCV: pip install 'adaptive-csp[video]'") from e
    root = Path(root)
    classes, items = scan_folder(root)
    if class_names is not None and list(class_names) != classes:
        raise ValueError(f"{root}: classes {classes} differ from the training classes {list(class_names)}")
    if color is None:
        color = any(_is_colour(f) for f, _ in items[:16])
    first = _read(items[0][0], color)
    if input_size is None:
        h, w = first.shape[:2]
        s = min(1.0, max_side / max(h, w))
        input_size = (max(1, round(h * s)), max(1, round(w * s)))
    imgs = np.empty((len(items), input_size[0], input_size[1], 3 if color else 1), np.uint8)
    for i, (f, _) in enumerate(items):
        img = first if i == 0 else _read(f, color)
        if img.shape[:2] != tuple(input_size):
            img = cv2.resize(img, (input_size[1], input_size[0]), interpolation=cv2.INTER_AREA)
        imgs[i] = img.reshape(imgs.shape[1:])
    labels = torch.tensor([k for _, k in items], dtype=torch.int64)
    return ImageSet(torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), labels, tuple(classes),
                    info={"name": root.name, "source": str(root.resolve())})
