"""Fitting a frame to a model's input: what each mode keeps, the resize itself, and the way back.

Modes (``resize=`` on :class:`~adaptive_csp.runtime.preprocess.Preprocessor` and the runner)
    ``stretch`` (default): the whole frame becomes the whole input.  Nothing is dropped; when the frame's
        aspect ratio differs from the input's, the picture is distorted (a 320×240 frame to 28×28 squeezes
        it horizontally by 4/3).
    ``letterbox``: the whole frame is scaled by one factor to fit inside the input and centred; the rest
        of the input is filled with ``pad`` (a pixel value on the 0..255 scale).  Nothing is dropped and
        nothing is distorted; the padded band carries no image.
    ``center_crop``: the largest centred window of the frame with the input's aspect ratio becomes the
        whole input.  Only the aspect-ratio excess is dropped, half on each side; a frame with the
        input's aspect ratio keeps everything.

Resampling, per axis: an axis that shrinks is **area-averaged exactly** (each input pixel is the mean of
the frame area it covers, boundary pixels weighted by the fraction inside: the numbers of
``cv2.INTER_AREA``, without its rounding to uint8); an axis that grows is interpolated bilinearly with
half-pixel centres (cv2's ``INTER_LINEAR``, torch's ``align_corners=False``).  An integer factor on both
axes uses cv2's own integer ``INTER_AREA`` (or a reshape-mean without cv2).  Any other factor samples a
summed-area table (``cv2.integral``, or two numpy cumsums) at the output pixels' edges — the integral of a
piecewise-constant image is bilinear inside each pixel, so this is exact — while the output is small
against the frame; otherwise cv2's non-integer ``INTER_AREA``, when cv2 is present, is the cheaper exact
pass (:data:`_SAT_PIXELS_PER_POINT`).  Measured on this 2-core CPU,
1 thread, 640×480×3 uint8 → 28×28: cv2 ``INTER_AREA`` on the whole frame ~1.5 ms, the table ~0.8 ms,
the old integer crop ~0.5 ms (it dropped the edges); ``benchmarks/preprocess.py`` prints the table.

Geometry: :meth:`Fit.geometry` gives ``(ox, oy, sx, sy)`` with ``frame_x = ox + sx · input_x`` and
``frame_y = oy + sy · input_y`` in continuous pixel coordinates (0 = the left / top edge of the first
pixel, as for ``xyxy`` boxes), exact for every mode and frame size.  Input points in a letterbox band map
outside the frame.

This module needs numpy only (cv2 when present); it never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:  # optional extra `video`
    import cv2
except ImportError:  # pragma: no cover - exercised through use_cv2=False
    cv2 = None

__all__ = ["MODES", "Fit", "fit", "resize", "check_mode"]

#: the summed-area table is used while its output grid has at most 1/_SAT_PIXELS_PER_POINT as many points as
#: the frame has pixels, else cv2's one-pass non-integer INTER_AREA (when cv2 is present).  Measured here, 1
#: thread, camera-like 3-channel frames, table vs cv2 (ms): 640×480 → 28: 0.81 vs 1.50, → 48: 1.18 vs 1.38,
#: → 64: 1.37 vs 1.30, → 96: 2.45 vs 1.38; 1920×1080 → 28: 4.4 vs 9.2, → 96: 6.5 vs 9.5.
_SAT_PIXELS_PER_POINT = 100

MODES = ("stretch", "letterbox", "center_crop")


def check_mode(mode: str) -> str:
    m = str(mode).lower().replace("-", "_")
    if m not in MODES:
        raise ValueError(f"resize mode must be one of {', '.join(MODES)}, got {mode!r}")
    return m


@dataclass(frozen=True)
class Fit:
    """Frame window ``[y0, y0+ch) × [x0, x0+cw)`` lands on input window ``[top, top+nh) × [left, left+nw)``."""

    y0: int
    x0: int
    ch: int
    cw: int
    top: int
    left: int
    nh: int
    nw: int

    def geometry(self) -> tuple[float, float, float, float]:
        sx, sy = self.cw / self.nw, self.ch / self.nh
        return self.x0 - self.left * sx, self.y0 - self.top * sy, sx, sy

    @property
    def padded(self) -> bool:
        return self.top > 0 or self.left > 0


def fit(H: int, W: int, h: int, w: int, mode: str = "stretch") -> Fit:
    """Where a ``H×W`` frame goes in an ``h×w`` input under ``mode`` (see the module docstring)."""
    if mode == "stretch":
        return Fit(0, 0, H, W, 0, 0, h, w)
    if mode == "letterbox":
        r = min(h / H, w / W)
        nh, nw = min(h, max(1, round(H * r))), min(w, max(1, round(W * r)))
        return Fit(0, 0, H, W, (h - nh) // 2, (w - nw) // 2, nh, nw)
    if mode == "center_crop":
        if W * h > H * w:  # wider than the input: crop the sides
            cw = min(W, max(1, round(H * w / h)))
            return Fit(0, (W - cw) // 2, H, cw, 0, 0, h, w)
        ch = min(H, max(1, round(W * h / w)))
        return Fit((H - ch) // 2, 0, ch, W, 0, 0, h, w)
    raise ValueError(f"resize mode must be one of {', '.join(MODES)}, got {mode!r}")


def resize(a: np.ndarray, oh: int, ow: int, use_cv2: bool = True) -> np.ndarray:
    """``a`` (H×W or H×W×C, uint8 or float32) → ``oh×ow`` (same rank): area on shrinking axes, bilinear on
    growing ones.  The result is float32, except where cv2 resized a uint8 frame (uint8, rounded)."""
    use_cv2 = use_cv2 and cv2 is not None
    H, W = a.shape[:2]
    if (H, W) == (oh, ow):
        return a
    mh, mw = min(H, oh), min(W, ow)
    if (mh, mw) != (H, W):
        a = _area(a, mh, mw, use_cv2)
    if (mh, mw) != (oh, ow):
        a = _bilinear(a, oh, ow, use_cv2)
    return a


def _contig(a: np.ndarray) -> np.ndarray:
    item = a.itemsize
    if a.strides[-1] != item or (a.ndim == 3 and a.strides[1] != item * a.shape[2]) or a.strides[0] < 0:
        return np.ascontiguousarray(a)  # cv2 takes row-strided views, nothing else
    return a


def _area(a: np.ndarray, oh: int, ow: int, use_cv2: bool) -> np.ndarray:
    H, W = a.shape[:2]
    if use_cv2 and (H % oh == 0 and W % ow == 0 or (oh + 1) * (ow + 1) * _SAT_PIXELS_PER_POINT > H * W):
        # integer factors (cv2's box-mean fast path), or a large output, where cv2's one pass beats the
        # table's temporaries; both are the exact area average, cv2's rounded to uint8
        out = cv2.resize(_contig(a), (ow, oh), interpolation=cv2.INTER_AREA)
        return out if out.ndim == a.ndim else out[:, :, None]
    if H % oh == 0 and W % ow == 0:  # integer factors: a box mean
        if use_cv2:
            out = cv2.resize(_contig(a), (ow, oh), interpolation=cv2.INTER_AREA)
            return out if out.ndim == a.ndim else out[:, :, None]
        kh, kw = H // oh, W // ow
        return a.reshape(oh, kh, ow, kw, *a.shape[2:]).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)
    F = _corners(_integral(a, use_cv2), np.arange(oh + 1) * (H / oh), np.arange(ow + 1) * (W / ow))
    out = F[1:, 1:] - F[:-1, 1:] - F[1:, :-1] + F[:-1, :-1]
    return (out * (oh * ow / (H * W))).astype(np.float32)


def _integral(a: np.ndarray, use_cv2: bool) -> np.ndarray:
    """Summed-area table ``(H+1)×(W+1)[×C]``: exact int32 for uint8 frames that fit, float64 otherwise."""
    H, W = a.shape[:2]
    exact_int = a.dtype == np.uint8 and 255 * H * W < 2**31
    if use_cv2 and (a.ndim == 2 or a.shape[2] <= 4):
        S = cv2.integral(_contig(a), sdepth=cv2.CV_32S if exact_int else cv2.CV_64F)
        return S if S.ndim == a.ndim else S[:, :, None]
    S = np.zeros((H + 1, W + 1, *a.shape[2:]), np.int64 if exact_int else np.float64)
    np.cumsum(np.cumsum(a, axis=0, dtype=S.dtype), axis=1, out=S[1:, 1:])
    return S


def _corners(S: np.ndarray, ey: np.ndarray, ex: np.ndarray) -> np.ndarray:
    """The image's integral at the grid ``ey × ex`` (fractional): ``S`` interpolated bilinearly, which is
    exact because the integral of a piecewise-constant image is bilinear inside each pixel (float64).
    Two things keep it cheap (measured here, 640×480×3 → 97×97 grid): whole rows are gathered first and
    the columns from those (a grid gathered straight from the big table is bound by memory latency), and
    the arithmetic runs on ``rows × (cols·channels)`` planes (broadcasting over a trailing axis of 3 made
    numpy loop 3 elements at a time: 2.6 ms instead of ~0.1)."""
    iy = np.minimum(np.floor(ey).astype(np.intp), S.shape[0] - 2)
    ix = np.minimum(np.floor(ex).astype(np.intp), S.shape[1] - 2)
    c = S.shape[2] if S.ndim == 3 else 1
    fy = (ey - iy)[:, None]
    fx = np.repeat(ex - ix, c)[None, :]
    rows0, rows1 = S[iy], S[iy + 1]  # whole rows first: streamed copies, then the columns from cache
    n = len(iy)

    def cols(rows: np.ndarray, j: np.ndarray) -> np.ndarray:
        return rows[:, j].reshape(n, -1)

    s00 = cols(rows0, ix).astype(np.float64)
    s01, s10, s11 = cols(rows0, ix + 1), cols(rows1, ix), cols(rows1, ix + 1)
    d10, d01 = s10 - s00, s01 - s00
    d11 = (s11 - s10) - s01 + s00
    out = s00 + fy * d10 + fx * d01 + (fy * fx) * d11
    return out.reshape(n, len(ix), *S.shape[2:])


def _bilinear(a: np.ndarray, oh: int, ow: int, use_cv2: bool) -> np.ndarray:
    if use_cv2:
        out = cv2.resize(_contig(a), (ow, oh), interpolation=cv2.INTER_LINEAR)
        return out if out.ndim == a.ndim else out[:, :, None]
    x = a.astype(np.float32)
    for axis, n_out in ((0, oh), (1, ow)):
        n_in = x.shape[axis]
        if n_in == n_out:
            continue
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        f = (src - i0).astype(np.float32).reshape((-1,) + (1,) * (x.ndim - 1 - axis))
        lo = np.take(x, i0, axis=axis)
        x = lo + f * (np.take(x, i1, axis=axis) - lo)
    return x
