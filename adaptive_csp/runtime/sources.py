"""Where frames come from, before preprocessing: a folder of images read as a stream of frames.

``image_folder(path)`` yields each image (PNG, JPEG, BMP, TIFF, WebP, PGM/PPM) in name order as the BGR
uint8 array ``cv2.imread`` gives; a file that cannot be decoded is skipped and logged once, like a bad
frame, so one broken file does not stop a loop over thousands.  ``runner.stream("folder/")`` and
``adaptive-csp demo --source folder/`` read folders through it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from adaptive_csp.util.log import OnceLogger

__all__ = ["IMAGE_SUFFIXES", "image_files", "image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
log = logging.getLogger("adaptive_csp.runtime")
_once = OnceLogger(log)


def image_files(path: str | Path) -> list[Path]:
    """The folder's image files in name order; ValueError when it has none."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{str(p)!r} is not a folder of images")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {str(p)!r}")
    return files


def image_folder(path: str | Path) -> Iterator[np.ndarray]:
    """Each readable image of the folder as a BGR uint8 frame (checked before the first frame is read)."""
    try:
        import cv2
    except ImportError:
        raise ValueError("reading images needs OpenCV: pip install 'adaptive-csp[video]'") from None
    files = image_files(path)

    def frames() -> Iterator[np.ndarray]:
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                _once(f"unreadable:{path}", "skipping images that cannot be decoded, e.g. %s", f)
                continue
            yield img

    return frames()
