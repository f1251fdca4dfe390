"""Training data of a second-stage namer: every item of detection scenes cut out as a square crop.

The detector locates items far better than it names them (class-agnostic mAP@.5 0.95 against 0.75 with
classes, ``docs/results/detection.md``), so a classifier that sees only the item — a square crop of the
model input around its box (:func:`adaptive_csp.data.crops.item_crops`), greyed, at the classifier's own
28 × 28 — names the boxes the detector found (:class:`adaptive_csp.runtime.namer.CropNamer`).  Crops are
cut from the letterboxed model input, the pixels the namer will see at run time; ``jitter`` moves and
rescales each training box by up to that fraction of its size, as a detector's boxes are off by a little.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from adaptive_csp.data.crops import item_crops
from adaptive_csp.data.images import ImageSet

__all__ = ["scene_crops", "jitter_boxes", "CROP_SPEC"]

#: how crops are cut; stored in a namer's ``meta["namer"]`` and read back by the runtime
CROP_SPEC = {"size": 28, "supersample": 4, "margin": 1.0, "source": "input", "grey": "channel mean"}


def jitter_boxes(boxes: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Each xyxy box's centre moved by up to ``jitter`` of its width / height and its sides scaled by up
    to ``exp(±jitter)``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if jitter <= 0 or not len(b):
        return b.copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx = (b[:, 0] + b[:, 2]) / 2 + rng.uniform(-jitter, jitter, len(b)) * w
    cy = (b[:, 1] + b[:, 3]) / 2 + rng.uniform(-jitter, jitter, len(b)) * h
    w = w * np.exp(rng.uniform(-jitter, jitter, len(b)))
    h = h * np.exp(rng.uniform(-jitter, jitter, len(b)))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def scene_crops(split: Literal["train", "val", "test"], n: int, seed: int, cfg: Any = None,
                jitter: float = 0.0, spec: dict[str, Any] | None = None, progress: bool = False) -> ImageSet:
    """Every item of ``n`` Fashion-MNIST scenes of ``split`` (:func:`~adaptive_csp.detect.scenes.varied_cfg`
    by default) as a uint8 ``N×1×size×size`` :class:`ImageSet` labelled with its garment class."""
    from adaptive_csp.data.fashion_mnist import LICENSE, as_imageset, load_split
    from adaptive_csp.detect.scenes import SceneDataset, varied_cfg

    spec = {**CROP_SPEC, **(spec or {})}
    items = as_imageset(load_split(split))
    ds = SceneDataset(items, n, seed, cfg or varied_cfg())
    rng = np.random.default_rng(seed)
    crops, labels = [], []
    it: Any = range(n)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"{split} crops", unit="scene")
    for i in it:
        img, boxes, lab = ds[i]
        if not len(lab):
            continue
        grey = img.float().mean(0).numpy() / 255.0
        b = jitter_boxes(boxes.numpy(), rng, jitter)
        c = item_crops(grey, b, spec["size"], spec["supersample"], spec["margin"])
        crops.append(np.clip(c * 255.0 + 0.5, 0, 255).astype(np.uint8))
        labels.append(lab.numpy())
    x = torch.from_numpy(np.concatenate(crops))[:, None] if crops else torch.zeros(0, 1, spec["size"],
                                                                                     spec["size"], dtype=torch.uint8)
    y = torch.from_numpy(np.concatenate(labels)).long() if labels else torch.zeros(0, dtype=torch.int64)
    return ImageSet(x, y, tuple(items.class_names),
                    info={"name": "Fashion-MNIST scene crops", "split": split, "scenes": int(n), "seed": int(seed),
                          "jitter": float(jitter), "crop": spec, "license": LICENSE})
