"""``runner.stream(source)``: predictions for a video file, a camera, a cv2.VideoCapture, a folder of images
(name order, :mod:`adaptive_csp.runtime.sources`) or any iterable.

Frame skipping (``skip=True``, needs a deadline): each call's latency beyond the deadline accumulates as
debt; every whole deadline of debt drops the next frame (``grab()`` without decoding for a capture), so a
slow level does not let the loop fall further and further behind a live camera.  Skipped frames are
counted in ``runner.stats()["skipped"]``; ``frame_index`` on each Prediction keeps the source's numbering.

Frame interval (the policy's second knob, ``Decision.frame_interval``): after each inference the runner's
``frame_interval`` k (1 = every frame) holds; the next k − 1 frames are not inferred (``grab()`` without
decoding for a capture).  Each is answered by the last result (``repeat=True``, the default: the same
label and probabilities, ``latency_ms`` 0, ``reason`` saying it is a repeat, the frame's own
``frame_index``) or not yielded (``repeat=False``), and counted in ``runner.stats()["skipped"]``.  The
policy needs the source's frame rate to keep its ``min_fps``: ``fps=`` or a capture's ``CAP_PROP_FPS``;
without it the policy runs every frame.

A frame the runner rejects (ValueError) is skipped and counted as bad (``on_error="skip"``, logged once)
or re-raised (``on_error="raise"``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_csp.runtime.sources import image_folder
from adaptive_csp.util.tensors import is_tensor

__all__ = ["stream", "open_source"]

log = logging.getLogger("adaptive_csp.runtime")


def _cv2():
    try:
        import cv2
    except ImportError:
        raise ValueError("reading a video or a camera needs OpenCV: pip install 'adaptive-csp[video]'") from None
    return cv2


def open_source(source: Any) -> tuple[Any, bool, bool]:
    """``(reader, is_capture, owned)``: a capture (``read``/``grab``) or an iterator of frames."""
    if hasattr(source, "read") and hasattr(source, "grab"):
        if hasattr(source, "isOpened") and not source.isOpened():
            raise ValueError("the VideoCapture is not open")
        return source, True, False
    if isinstance(source, (str, Path)):
        p = Path(source)
        if p.is_dir():  # a folder of images, in name order
            return image_folder(p), False, False
        if not p.exists():
            raise ValueError(f"no video file or image folder {str(p)!r}")
        cap = _cv2().VideoCapture(str(p))
        if not cap.isOpened():
            raise ValueError(f"cannot open video {str(p)!r} (unsupported format or codec?)")
        return cap, True, True
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        cap = _cv2().VideoCapture(int(source))
        if not cap.isOpened():
            raise ValueError(f"cannot open camera {int(source)}")
        return cap, True, True
    if (isinstance(source, np.ndarray) or is_tensor(source)) and source.ndim < 4:
        raise ValueError("stream() takes a source of frames (a video, a camera, an iterable); "
                         "use infer() for a single frame")
    try:
        return iter(source), False, False
    except TypeError:
        raise ValueError(f"cannot stream from {type(source).__name__}: pass a cv2.VideoCapture, a video path, "
                         "a camera index or an iterable of frames") from None


def _source_fps(reader: Any, is_cap: bool, fps: float | None) -> float | None:
    if fps is not None:
        if not (isinstance(fps, (int, float)) and 0 < fps < float("inf")):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        return float(fps)
    if is_cap and hasattr(reader, "get"):
        try:
            v = float(reader.get(5))  # cv2.CAP_PROP_FPS
        except Exception:  # noqa: BLE001 - a capture without the property
            return None
        return v if 0 < v < 1000 else None
    return None


def _repeat(pred: Any, index: int, k: int) -> Any:
    """The last result answering a frame that did not run (frame interval ``k``)."""
    why = f"repeat (every {k}th frame)"
    if isinstance(pred, list):
        return [replace(p, frame_index=index, latency_ms=0.0, reason=f"{why}; {p.reason}") for p in pred]
    return replace(pred, frame_index=index, latency_ms=0.0, reason=f"{why}; {pred.reason}")


class _Source:
    """An opened source read one frame at a time: :meth:`read` decodes the next, :meth:`drop` skips one
    (``grab()`` without decoding for a capture)."""

    def __init__(self, reader: Any, is_cap: bool, owned: bool):
        self.reader, self.is_cap, self.owned = reader, is_cap, owned

    def read(self) -> tuple[bool, Any]:
        if self.is_cap:
            return self.reader.read()
        try:
            return True, next(self.reader)
        except StopIteration:
            return False, None

    def drop(self) -> bool:
        if self.is_cap:
            return bool(self.reader.grab())
        try:
            next(self.reader)
        except StopIteration:
            return False
        return True

    def close(self) -> None:
        if self.owned and self.is_cap:
            self.reader.release()


def stream(runner: Any, source: Any, *, skip: bool = False, deadline_ms: float | None = None,
           max_frames: int | None = None, on_error: str = "skip", fps: float | None = None,
           repeat: bool = True) -> Iterator[Any]:
    """Yield one Prediction per frame of ``source`` that ran, and (``repeat``) one per frame the policy's
    frame interval left out (see the module docstring).  Arguments are checked on the first ``next``."""
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    deadline = deadline_ms if deadline_ms is not None else runner.deadline_ms
    if skip and not (deadline and deadline > 0):
        raise ValueError("frame skipping needs a deadline: AdaptiveRunner(deadline_ms=...) or deadline_ms=")
    src = _Source(*open_source(source))
    runner.source_fps = _source_fps(src.reader, src.is_cap, fps)
    try:
        yield from _loop(runner, src, deadline if skip else None, max_frames, on_error == "raise", repeat)
    finally:
        src.close()


def _loop(runner: Any, src: _Source, deadline: float | None, max_frames: int | None, raise_bad: bool,
          repeat: bool) -> Iterator[Any]:
    """The frames of ``src`` through ``runner``: a frame interval's frames answered by repeats, a deadline's
    debt paid by dropped frames (``deadline`` None: no skipping)."""
    index, done, debt = 0, 0, 0.0
    while max_frames is None or done < max_frames:
        ok, frame = src.read()
        if not ok:
            break
        try:
            pred = runner.infer(frame)
        except ValueError as e:
            if raise_bad:
                raise
            log.debug("stream: frame %d rejected: %s", index, e)
            index += 1
            continue
        yield _indexed(pred, index)
        index += 1
        done += 1
        k = int(getattr(runner, "frame_interval", 1) or 1)
        for _ in range(k - 1):  # the policy's frame interval: these frames do not run
            if max_frames is not None and done >= max_frames:
                break
            if not src.drop():
                return
            runner.add_skipped(1)
            if repeat:
                yield _repeat(pred, index, k)
                done += 1
            index += 1
        if deadline is not None:
            debt, n = _drop_debt(src, debt + (pred[-1] if isinstance(pred, list) else pred).latency_ms - deadline,
                                 deadline)
            if n:
                index += n
                runner.add_skipped(n)


def _indexed(pred: Any, index: int) -> Any:
    return replace(pred, frame_index=index) if not isinstance(pred, list) else \
        [replace(p, frame_index=index) for p in pred]


def _drop_debt(src: _Source, debt: float, deadline: float) -> tuple[float, int]:
    """Drop a frame for every whole deadline of latency debt; the debt left and the frames dropped."""
    debt, n = max(0.0, debt), 0
    while debt >= deadline and src.drop():
        debt -= deadline
        n += 1
    return debt, n
