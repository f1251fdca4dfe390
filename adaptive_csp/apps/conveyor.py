"""A simulated conveyor-belt camera: Fashion-MNIST items on a dark belt, as BGR frames.

An indexing conveyor: each item is carried into view, stops under the camera for inspection, and is
carried out; between items the camera sees bare belt.  Frames are ``scale·28`` pixels square (default
140×140) BGR uint8, with sensor noise, a faintly striped belt that moves with the items, and a mild colour
tint and brightness change per item.  Garments stay light on a dark belt, as in Fashion-MNIST, so the
model's preprocessing sees what it was trained on.

Ground truth: ``Frame.label`` is the item's class while any part of it is in view (None for bare belt);
``Frame.scored`` is True while the item rests under the camera (the frames a quality check would use).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["Conveyor", "Frame"]


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # H×W×3 uint8 BGR
    label: int | None  # class of the item in view, None for bare belt
    scored: bool  # the item rests fully under the camera
    item: int  # running item number (-1 before the first)
    phase: str  # "gap", "enter", "dwell", "exit"; "idle" while the belt stands


class Conveyor:
    def __init__(self, images: np.ndarray, labels: np.ndarray, *, scale: int = 5, seed: int = 0,
                 belt_level: float = 10.0, noise: float = 4.0, move_frames: int = 5,
                 dwell: tuple[int, int] = (10, 20), gap: tuple[int, int] = (3, 8)):
        images = np.asarray(images)
        if images.ndim == 4:
            images = images[:, 0]
        if images.ndim != 3 or images.dtype != np.uint8 or len(images) != len(labels) or not len(images):
            raise ValueError("Conveyor needs N×28×28 uint8 images and N labels")
        self.images, self.labels = images, np.asarray(labels)
        self.scale = int(scale)
        self.size = images.shape[1] * self.scale
        self.rng = np.random.default_rng(seed)
        self.belt_level, self.noise = float(belt_level), float(noise)
        self.move_frames, self.dwell, self.gap = int(move_frames), dwell, gap
        self.order = self.rng.permutation(len(images))
        self.items = 0

    def _belt(self, shift: int) -> np.ndarray:
        n = self.size
        stripes = np.float32(3.0) * (((np.arange(n) + shift) // 7) % 2).astype(np.float32)  # moves with the belt
        base = self.rng.standard_normal((n, n), dtype=np.float32) * np.float32(self.noise)
        base += np.float32(self.belt_level) + stripes[None, :]
        return np.repeat(base[:, :, None], 3, axis=2)

    def _item(self, idx: int) -> np.ndarray:
        g = self.images[idx].astype(np.float32)
        big = np.repeat(np.repeat(g, self.scale, 0), self.scale, 1)
        tint = (self.rng.uniform(0.85, 1.0, 3) * self.rng.uniform(0.92, 1.05)).astype(np.float32)
        return big[:, :, None] * tint[None, None, :]

    def _compose(self, item: np.ndarray | None, x: int, shift: int) -> np.ndarray:
        frame = self._belt(shift)
        if item is not None:
            n = self.size
            lo, hi = max(0, x), min(n, x + n)
            if lo < hi:
                frame[:, lo:hi] = np.maximum(frame[:, lo:hi], item[:, lo - x:hi - x])
        noise = self.rng.standard_normal(frame.shape, dtype=np.float32)  # per-channel sensor noise
        noise *= np.float32(self.noise / 2)
        frame += noise
        return np.clip(frame, 0, 255, out=frame).astype(np.uint8)

    def frames(self, count: int | None = None, busy: Callable[[int], bool] | None = None) -> Iterator[Frame]:
        """Yield ``count`` frames (forever for None).

        ``busy(i)`` (optional) says whether the belt carries items at frame ``i``: while it is False no new
        item enters and the camera sees bare belt (phase ``"idle"``); an item already in view finishes.
        """
        made, shift, n = 0, 0, self.size
        step = n // self.move_frames
        while True:
            while busy is not None and (count is None or made < count) and not busy(made):
                yield Frame(self._compose(None, 0, shift), None, False, self.items - 1, "idle")
                made += 1
            k = self.order[self.items % len(self.order)]
            label = int(self.labels[k])
            item = self._item(k)
            num = self.items
            self.items += 1
            plan = [("gap", None, 0)] * int(self.rng.integers(self.gap[0], self.gap[1] + 1))
            plan += [("enter", label, -n + step * (i + 1)) for i in range(self.move_frames - 1)]
            plan += [("dwell", label, int(self.rng.integers(-2, 3)))
                     for _ in range(int(self.rng.integers(self.dwell[0], self.dwell[1] + 1)))]
            plan += [("exit", label, step * (i + 1)) for i in range(self.move_frames - 1)]
            for phase, lab, x in plan:
                if count is not None and made >= count:
                    return
                moving = phase in ("enter", "exit")
                shift += step if moving else 0
                img = self._compose(item if lab is not None else None, x, shift)
                yield Frame(img, lab, phase == "dwell", num if lab is not None else num - 1, phase)
                made += 1
