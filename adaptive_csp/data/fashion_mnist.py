"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (gzip IDX files), with checks.

Nothing is downloaded: a missing package raises :class:`DatasetNotFound` saying how to install it.
Splits: ``train`` (first 55 000 of the official training set after a fixed shuffle), ``val`` (the other
5 000, for model selection, BN calibration and ladder profiling) and ``test`` (the official 10 000,
only for reported numbers).  A ≤1000-image test sample ships inside the package (``sample``).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CLASS_NAMES", "LICENSE", "DEFAULT_DIR", "DatasetNotFound", "Split", "read_idx", "load_split",
           "load_sample", "augment", "MEAN", "STD", "as_imageset"]

DEFAULT_DIR = Path(os.environ.get("ADAPTIVE_CSP_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
LICENSE = "Fashion-MNIST, Copyright (c) 2017 Zalando SE, MIT License (https://github.com/zalandoresearch/fashion-mnist)"
# Mean / std of the 60k training images in [0, 1] (computed once from the files, see tests).
MEAN, STD = 0.2860, 0.3530
VAL_SIZE = 5000
_SPLIT_SEED = 20170825
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "assets" / "fashion_mnist_sample.npz"


class DatasetNotFound(FileNotFoundError):
    pass


def read_idx(path: Path, expect_magic: int, expect_count: int | None = None,
             expect_shape: tuple[int, ...] = ()) -> np.ndarray:
    """Read a (gzip) IDX file, checking its magic number, item count and item shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read IDX file ({e})") from e
    if len(data) < 8:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic != expect_magic:
        raise ValueError(f"{path}: bad magic number {magic} (expected {expect_magic})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if expect_count is not None and dims[0] != expect_count:
        raise ValueError(f"{path}: {dims[0]} items, expected {expect_count}")
    if dims[1:] != expect_shape:
        raise ValueError(f"{path}: item shape {dims[1:]}, expected {expect_shape}")
    n = int(np.prod(dims))
    if len(data) - header != n:
        raise ValueError(f"{path}: {len(data) - header} data bytes, expected {n} (truncated or corrupt)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8, N×1×28×28
    labels: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return len(self.labels)

    def normalized(self, idx: slice | torch.Tensor = slice(None)) -> torch.Tensor:
        return (self.images[idx].float() / 255.0 - MEAN) / STD


def _raw(which: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    img_name, lbl_name, count = _FILES[which]
    ip, lp = root / img_name, root / lbl_name
    if not ip.exists() or not lp.exists():
        raise DatasetNotFound(
            f"Fashion-MNIST not found under {root} (missing {ip.name if not ip.exists() else lp.name}). "
            "Install it with: sudo apt-get install -y dataset-fashion-mnist "
            "(or set ADAPTIVE_CSP_FASHION_MNIST to a folder holding the four gzip IDX files)"
        )
    images = read_idx(ip, 2051, count, (28, 28))
    labels = read_idx(lp, 2049, count)
    if labels.max() > 9:
        raise ValueError(f"{lp}: label {labels.max()} out of range 0..9")
    return images, labels


def load_split(name: str, root: str | Path | None = None) -> Split:
    """``train`` / ``val`` / ``test`` / ``train_full`` as uint8 tensors."""
    root = Path(root) if root is not None else DEFAULT_DIR
    if name == "test":
        x, y = _raw("test", root)
    elif name in ("train", "val", "train_full"):
        x, y = _raw("train", root)
        if name != "train_full":
            perm = np.random.default_rng(_SPLIT_SEED).permutation(len(y))
            idx = perm[:VAL_SIZE] if name == "val" else perm[VAL_SIZE:]
            x, y = x[idx], y[idx]
    else:
        raise ValueError(f"unknown split {name!r} (train, val, test, train_full)")
    return Split(torch.from_numpy(np.array(x, copy=True)).unsqueeze(1), torch.from_numpy(y.astype(np.int64)))


def as_imageset(split: Split):
    """The split as a generic :class:`~adaptive_csp.data.images.ImageSet` (class names, normalisation,
    licence) — what training and profiling read."""
    from adaptive_csp.data.images import ImageSet

    return ImageSet(split.images, split.labels, CLASS_NAMES, (MEAN,), (STD,),
                    {"name": "Fashion-MNIST", "source": "Debian package dataset-fashion-mnist", "license": LICENSE,
                     "note": "light object on a dark background, as in Fashion-MNIST"})


def load_sample() -> Split:
    """The ≤1000 test images shipped inside the package (works without the Debian package)."""
    with np.load(SAMPLE_PATH, allow_pickle=False) as z:
        return Split(torch.from_numpy(z["images"]).unsqueeze(1), torch.from_numpy(z["labels"].astype(np.int64)))


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 2, flip: bool = True) -> torch.Tensor:
    """Batch augmentation for 28×28 garments: random shift (pad + crop) and horizontal flip."""
    b, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (oy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w))[:, None, None, :]
    bi = torch.arange(b)[:, None, None, None]
    ci = torch.arange(c)[None, :, None, None]
    out = xp[bi, ci, rows, cols]
    if flip:
        m = torch.rand(b, generator=gen) < 0.5
        out[m] = out[m].flip(-1)
    return out
