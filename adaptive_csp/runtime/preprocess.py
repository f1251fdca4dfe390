"""Frames in, model input out: the one place that knows frame formats (the runner's preprocess stage).

Accepted frames
    numpy ``H×W`` (grey), ``H×W×1``, ``H×W×3`` (BGR as OpenCV gives it unless ``color="rgb"``),
    ``H×W×4`` (BGRA / RGBA), ``N×H×W×C`` (a batch); dtype uint8 (0..255) or float16/32/64 in [0, 1];
    any size and memory layout (views, negative strides, Fortran order).
    torch ``C×H×W`` or ``N×C×H×W`` with C in 1, 3, 4, uint8 or float in [0, 1]; channel order
    ``tensor_color`` (default RGB, torchvision's convention), independent of ``color`` (numpy frames).
    a list / tuple of such frames: one batch (each may have its own size).

Output: a float32 ``N×C×H×W`` tensor (``__call__``) or numpy array (:meth:`Preprocessor.array`, what the
runner's engines take) at the model's ``input_size``, converted to its colour mode
(``grey``: ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B, the weights of ``cv2.COLOR_BGR2GRAY``; ``rgb`` /
``bgr``: channel order; a grey frame is repeated for a colour model), then ``(x · scale − mean) / std`` with x in 0..255 (a float frame counts as 255·x).

The runner's stage: :meth:`Preprocessor.prepare` gives the engine's input and, when the head maps results
back into frames (a detector), each frame's :class:`FrameGeometry` in the same call.  On the ONNX frame path
it only resizes (:meth:`Preprocessor.small`) and the level's graph does the arithmetic.
:class:`PreprocessOptions` holds the runner's settings and builds the preprocessor from a model's metadata.

Resizing (``resize=``, or ``"resize"`` in the spec; :mod:`adaptive_csp.runtime.resize` has the details):
``stretch`` (default) maps the whole frame onto the whole input, distorting a frame of another aspect
ratio; ``letterbox`` scales the whole frame by one factor to fit and pads the rest with ``pad`` (0..255
scale, default 0: the dark background our models are trained on); ``center_crop`` drops only the
aspect-ratio excess, half on each side.  No mode drops anything else.  Shrinking is the exact area
average (``cv2.INTER_AREA``'s numbers, unrounded), growing bilinear; ``backend="torch"`` gives the same
numbers with numpy alone.  :meth:`Preprocessor.geometry` gives the mapping for a frame size, so
coordinates in the model input (a detector's boxes) map back into the frame exactly.

Cost: the frame is resized first, in its own dtype, so colour conversion, range checks and normalisation touch only
the small result.  Resizing and luma are linear, so the order does not change the result beyond rounding.

Bad frames raise :class:`ValueError` naming the problem (rank, empty, dtype, object array, channel count,
NaN/Inf, a float frame outside [0, 1]); the checks run on the small resized image, so they are cheap
(an Inf or NaN anywhere survives area averaging).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from adaptive_csp.data.preprocess_spec import PreprocessSpec, merge_spec
from adaptive_csp.runtime.resize import check_mode, fit, resize
from adaptive_csp.util.tensors import is_tensor, loaded_torch

if TYPE_CHECKING:  # torch frames are accepted when the caller has torch; this module never imports it
    import torch

try:  # optional extra `video`
    import cv2
except ImportError:  # pragma: no cover - exercised through backend="torch"
    cv2 = None

__all__ = ["Preprocessor", "PreprocessOptions", "FrameGeometry", "HAVE_CV2", "LUMA_RGB"]

HAVE_CV2 = cv2 is not None
LUMA_RGB = (0.299, 0.587, 0.114)
_FLOATS = (np.float16, np.float32, np.float64)
_TOL = 1e-3  # float frames may overshoot [0, 1] by rounding
_GEOMETRY_CACHE = 64  # frame sizes whose geometry a preprocessor keeps (a camera has one)


class FrameGeometry(NamedTuple):
    """Where the model input lies in one ``h × w`` frame: ``frame_x = ox + sx · input_x``,
    ``frame_y = oy + sy · input_y`` (:meth:`Preprocessor.geometry`)."""

    h: int
    w: int
    ox: float
    oy: float
    sx: float
    sy: float

    @property
    def mapping(self) -> tuple[float, float, float, float]:
        """``(ox, oy, sx, sy)``."""
        return self.ox, self.oy, self.sx, self.sy


@dataclass(frozen=True)
class PreprocessOptions:
    """How the runner turns frames into model input (``AdaptiveRunner(preprocess=PreprocessOptions(...))``
    or the flat keywords of the same names).

    spec: keys merged over the model's ``meta["preprocess"]`` and validated (an unknown key or a bad value
    raises, naming it), e.g. ``{"resize": "letterbox"}``.  color / tensor_color: channel order of numpy
    frames (default "bgr", as OpenCV gives them) and of torch tensors (default "rgb", torchvision's).
    backend: the resize backend, "auto" / "cv2" / "torch" — not the engine.  resize / pad / roi: see
    :class:`Preprocessor` (None: the spec's).
    """

    spec: dict[str, Any] | None = None
    color: str = "bgr"
    tensor_color: str = "rgb"
    backend: str = "auto"
    resize: str | None = None
    pad: float | None = None
    roi: Sequence[int] | None = None

    def merged_spec(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """The model's ``meta["preprocess"]`` with :attr:`spec` over it, validated; it must give an input size."""
        spec = merge_spec(meta.get("preprocess"), self.spec)  # validated: unknown keys are errors
        if "input_size" not in spec:
            raise ValueError("the model has no meta['preprocess']; pass preprocess={'input_size': [H, W], "
                             "'in_chans': C, 'color': 'grey'|'rgb'|'bgr', 'mean': [...], 'std': [...]}")
        return spec

    def build(self, meta: Mapping[str, Any], geometry: bool = False) -> Preprocessor:
        """The preprocessor for a model's ``meta``; ``geometry``: :meth:`Preprocessor.prepare` also returns
        each frame's :class:`FrameGeometry` (a head that maps results into the frame needs it)."""
        pre = Preprocessor(self.merged_spec(meta), color=self.color, backend=self.backend,
                           tensor_color=self.tensor_color, resize=self.resize, pad=self.pad, roi=self.roi)
        pre.with_geometry = bool(geometry)
        return pre


class Preprocessor:
    """``Preprocessor(meta["preprocess"], color="bgr")(frame) -> (tensor N×C×H×W, batched: bool)``.

    ``color``: channel order of numpy frames; ``tensor_color``: of torch tensors; ``backend``: how frames
    are resized (``"auto"``: cv2 when importable, ``"cv2"``, ``"torch"``: numpy, the same numbers);
    ``resize``: ``"stretch"`` / ``"letterbox"`` / ``"center_crop"`` (None: the spec's ``"resize"``, else
    stretch); ``pad``: the letterbox fill, a pixel value on the 0..255 scale (None: the spec's, else 0);
    ``roi``: ``(x, y, w, h)`` in frame pixels, cut out before resizing (None: the spec's, else the whole
    frame).  Every spec key is validated (:class:`~adaptive_csp.data.preprocess_spec.PreprocessSpec`).
    """

    def __init__(self, spec: dict[str, Any] | None = None, color: str = "bgr", backend: str = "auto",
                 tensor_color: str = "rgb", resize: str | None = None, pad: float | None = None,
                 roi: Sequence[int] | None = None):
        spec = dict(spec or {})
        for key, val in (("resize", resize), ("pad", pad), ("roi", roi)):
            if val is not None:
                spec[key] = check_mode(val) if key == "resize" else val
        checked = PreprocessSpec(**spec)  # unknown keys and bad values fail here, by name
        self.resize = checked.resize
        self.pad = float(checked.pad)
        self.roi = checked.roi
        for what, val in (("color", color), ("tensor_color", tensor_color)):
            if val not in ("bgr", "rgb"):
                raise ValueError(f"{what} must be 'bgr' or 'rgb', got {val!r}")
        self.tensor_color = tensor_color
        if backend not in ("auto", "cv2", "torch"):
            raise ValueError(f"backend must be 'auto', 'cv2' or 'torch', got {backend!r}")
        if backend == "cv2" and not HAVE_CV2:
            raise ValueError("backend='cv2' needs opencv (pip install 'adaptive-csp[video]')")
        self.use_cv2 = HAVE_CV2 and backend != "torch"
        size = spec.get("input_size", (28, 28))
        self.h, self.w = int(size[0]), int(size[1])
        mode = str(spec.get("color", "grey")).lower()
        self.mode = {"gray": "grey", "l": "grey"}.get(mode, mode)
        if self.mode not in ("grey", "rgb", "bgr"):
            raise ValueError(f"unsupported model colour mode {mode!r} (grey, rgb or bgr)")
        self.chans = int(spec.get("in_chans", 1 if self.mode == "grey" else 3))
        if (self.mode == "grey") != (self.chans == 1):
            raise ValueError(f"colour mode {self.mode!r} does not fit in_chans={self.chans}")
        self.color = color
        self.scale = float(spec.get("scale", 1.0 / 255.0))
        mean = np.asarray(spec.get("mean", [0.0] * self.chans), np.float32).reshape(-1)
        std = np.asarray(spec.get("std", [1.0] * self.chans), np.float32).reshape(-1)
        if mean.size not in (1, self.chans) or std.size not in (1, self.chans) or np.any(std <= 0):
            raise ValueError(f"bad mean/std in preprocess metadata: {mean.tolist()} / {std.tolist()}")
        self.mean = np.broadcast_to(mean, (self.chans,)).astype(np.float32)
        self.std = np.broadcast_to(std, (self.chans,)).astype(np.float32)
        # uint8 frames are scaled by `scale`; float frames (0..1) by 255·scale, so both mean the same light
        inv = (1.0 / self.std).reshape(-1, 1, 1)
        self._mul_u8 = (inv * self.scale).astype(np.float32)
        self._mul_f = (inv * self.scale * 255.0).astype(np.float32)
        self._add = (-self.mean / self.std).reshape(-1, 1, 1).astype(np.float32)
        self._grey = self.mode == "grey"
        self._fast = self._grey and self.roi is None
        self._hw = (self.h, self.w)
        self._mul_u8_s, self._mul_f_s = np.float32(self._mul_u8.flat[0]), np.float32(self._mul_f.flat[0])
        self._add_s = np.float32(self._add.flat[0])
        self.with_geometry = False  # prepare() also returns the frames' geometry (PreprocessOptions.build)
        self._geometries: dict[tuple[int, int], FrameGeometry] = {}

    # public ------------------------------------------------------------------------------------------
    def __call__(self, frame: Any) -> tuple[torch.Tensor, bool]:
        """The model input for ``frame`` and whether it was a batch (list / N-dim array or tensor)."""
        import torch

        x, batched = self.array(frame)
        return torch.from_numpy(x), batched

    def array(self, frame: Any) -> tuple[np.ndarray, bool]:
        """Like ``__call__`` but a float32 C-contiguous numpy ``N×C×H×W`` array (no torch on the way)."""
        if isinstance(frame, np.ndarray):
            if self._fast and frame.dtype == np.uint8 and frame.shape == self._hw:  # the camera-loop case
                x = np.multiply(frame, self._mul_u8_s, dtype=np.float32, order="C")
                x += self._add_s
                return x.reshape(1, 1, self.h, self.w), False
            if frame.ndim == 4:
                return self._stack([self._np(f, i) for i, f in enumerate(frame)]), True
            x = self._np(frame)[None]
            return (x if x.flags.c_contiguous else np.ascontiguousarray(x)), False
        if is_tensor(frame):
            if frame.dim() == 4:
                return self._stack([self._torch(f, i) for i, f in enumerate(frame)]), True
            x = self._torch(frame)[None]
            return (x if x.flags.c_contiguous else np.ascontiguousarray(x)), False
        if isinstance(frame, (list, tuple)):
            if not frame:
                raise ValueError("empty list of frames")
            out = []
            for i, f in enumerate(frame):
                if isinstance(f, np.ndarray):
                    out.append(self._np(f, i))
                elif is_tensor(f):
                    out.append(self._torch(f, i))
                else:
                    raise ValueError(f"frame {i}: unsupported type {type(f).__name__} in a list of frames")
            return self._stack(out), True
        raise ValueError(f"unsupported frame type {type(frame).__name__}: pass a numpy array, a torch tensor "
                         "or a list of them")

    def prepare(self, frame: Any, frame_path: bool = False) -> tuple[np.ndarray, bool, bool, Any]:
        """The preprocess stage of a runner call: ``(x, batched, on_frame_path, geometry)``.

        With ``frame_path`` a frame :meth:`small` takes comes back resized only (``on_frame_path`` True:
        the engine's frame graph does the arithmetic); anything else comes back from :meth:`array`.
        ``geometry``: each image's :class:`FrameGeometry` when :attr:`with_geometry` is set, else None."""
        small = self.small(frame) if frame_path else None
        x, batched = self.array(frame) if small is None else small
        return x, batched, small is not None, self.frame_geometry(frame) if self.with_geometry else None

    def small(self, frame: Any) -> tuple[np.ndarray, bool] | None:
        """The half of :meth:`array` before the arithmetic, for a graph that does the rest
        (:mod:`adaptive_csp.engines.frame_graph`): a numpy uint8 frame (H×W, H×W×C) or batch (N×H×W×C)
        region-cropped, fitted and resized exactly as :meth:`array` does, channel-last ``N×h×w×C`` (C 1 or
        3, the camera's order, alpha dropped), C-contiguous, uint8 — or float32 on the 0..255 scale where
        the resize averaged without rounding or a letterbox padded — and whether it was a batch.  None for
        anything else (float or tensor frames, lists, frames :meth:`array` would refuse): those take
        :meth:`array`."""
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
            return None
        if frame.ndim == 4:
            if frame.shape[3] not in (1, 3, 4):
                return None
            items = [self._small_np(f) for f in frame]
            if items[0].dtype != np.uint8 or any(i.dtype != items[0].dtype for i in items):
                items = [i.astype(np.float32) for i in items]
            return np.ascontiguousarray(np.stack(items)), True
        if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4)):
            a = self._small_np(frame)
            return (a if a.flags.c_contiguous else np.ascontiguousarray(a))[None], False
        return None

    def _small_np(self, a: np.ndarray) -> np.ndarray:
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.shape[0] != self.h or a.shape[1] != self.w or self.roi is not None:
            a = self._resize_np(a, True)
        if a.ndim == 2:
            return a[:, :, None]
        return a[:, :, :3] if a.shape[2] == 4 else a

    def geometry(self, frame_h: int, frame_w: int) -> tuple[float, float, float, float]:
        """Where the model input lies in a ``frame_h × frame_w`` frame: ``(ox, oy, sx, sy)`` with
        ``frame_x = ox + sx · input_x`` and ``frame_y = oy + sy · input_y``, in continuous pixel coordinates
        (0 is the left / top edge of the first pixel, as for boxes ``xyxy``), exact for every mode and size:
        ``stretch`` ``(0, 0, W/w, H/h)``; ``center_crop`` the window's corner and ``window / input``;
        ``letterbox`` one scale ``frame / content`` and a negative offset (the pad band maps outside)."""
        if isinstance(frame_h, bool) or isinstance(frame_w, bool) or int(frame_h) < 1 or int(frame_w) < 1:
            raise ValueError(f"frame size must be positive integers, got {frame_h!r} × {frame_w!r}")
        y0, x0, hh, ww = self._roi(int(frame_h), int(frame_w))
        ox, oy, sx, sy = fit(hh, ww, self.h, self.w, self.resize).geometry()
        return ox + x0, oy + y0, sx, sy

    def frame_geometry(self, frame: Any) -> list[FrameGeometry]:
        """Each image's :class:`FrameGeometry` (one for a single frame; call after :meth:`array` accepted it),
        kept per frame size."""
        cache = self._geometries
        out = []
        for hw in self.sizes(frame):
            g = cache.get(hw)
            if g is None:
                if len(cache) >= _GEOMETRY_CACHE:
                    cache.clear()
                g = cache[hw] = FrameGeometry(int(hw[0]), int(hw[1]), *self.geometry(*hw))
            out.append(g)
        return out

    def _roi(self, H: int, W: int) -> tuple[int, int, int, int]:
        """``(y0, x0, h, w)`` of the region of interest clipped to an ``H×W`` frame (the whole frame if none)."""
        if self.roi is None:
            return 0, 0, H, W
        x, y, w, h = self.roi
        x1, y1 = min(x + w, W), min(y + h, H)
        if x >= W or y >= H:
            raise ValueError(f"roi {list(self.roi)} (x, y, w, h) lies outside the {W}×{H} frame")
        return y, x, y1 - y, x1 - x

    def sizes(self, frame: Any) -> list[tuple[int, int]]:
        """``(H, W)`` of each image of ``frame`` (one for a single frame; call after :meth:`array` accepted
        it): what :meth:`geometry` needs to map model-input coordinates back into each frame."""
        if isinstance(frame, np.ndarray):
            return [tuple(frame.shape[1:3])] * len(frame) if frame.ndim == 4 else [tuple(frame.shape[:2])]
        if is_tensor(frame):
            return [tuple(frame.shape[2:4])] * len(frame) if frame.dim() == 4 else [tuple(frame.shape[1:3])]
        if isinstance(frame, (list, tuple)):
            return [s for f in frame for s in self.sizes(f)]
        raise ValueError(f"unsupported frame type {type(frame).__name__}")

    def normalize_uint8(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Reference path for frames already at the model's size: ``N×H×W`` or ``N×C×H×W`` uint8 → input."""
        import torch

        x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        if x.dim() == 3:
            x = x[:, None]
        x = x * self.scale
        return (x - torch.from_numpy(self.mean).view(1, -1, 1, 1)) / torch.from_numpy(self.std).view(1, -1, 1, 1)

    # numpy ---------------------------------------------------------------------------------------------
    def _np(self, a: np.ndarray, idx: int | None = None) -> np.ndarray:
        where = "" if idx is None else f"frame {idx}: "
        if a.dtype == object:
            raise ValueError(f"{where}object arrays are not frames; pass a numeric array")
        if a.ndim not in (2, 3):
            raise ValueError(f"{where}a numpy frame must be H×W or H×W×C (rank 2 or 3), got rank {a.ndim} "
                             f"shape {a.shape}")
        if a.size == 0:
            raise ValueError(f"{where}empty frame (shape {a.shape})")
        c = 1 if a.ndim == 2 else a.shape[2]
        if c not in (1, 3, 4):
            raise ValueError(f"{where}a frame needs 1, 3 or 4 channels (H×W×C), got {c} (shape {a.shape}); "
                             "numpy frames are channel-last")
        is_u8 = a.dtype == np.uint8
        if not is_u8 and a.dtype.type not in _FLOATS:
            raise ValueError(f"{where}unsupported dtype {a.dtype}: frames must be uint8 (0..255) or float "
                             "in [0, 1]")
        if a.dtype == np.float16:
            a = a.astype(np.float32)
        if a.ndim == 3 and c == 1:
            a = a[:, :, 0]
        if a.shape[0] != self.h or a.shape[1] != self.w or self.roi is not None:
            a = self._resize_np(a, is_u8)
        if a.ndim == 2 and self._grey:  # the common case: a few in-place ops on the small image
            small = a.astype(np.float32, order="C")
            if not is_u8:
                self._check_range(small, where)
            small *= self._mul_u8_s if is_u8 else self._mul_f_s
            small += self._add_s
            return small[None]
        small = a.astype(np.float32)
        if small.ndim == 2:
            small = small[None]
        else:
            small = small.transpose(2, 0, 1)
            if self.color == "bgr":
                small = small[[2, 1, 0, 3][:small.shape[0]]]  # → RGB(A)
        return self._finish(small, is_u8, where)

    def _resize_np(self, a: np.ndarray, is_u8: bool) -> np.ndarray:
        """``a`` (H×W or H×W×C) → ``h×w`` under the mode: region of interest and crop (views), resize, pad."""
        if self.roi is not None:
            y0, x0, hh, ww = self._roi(a.shape[0], a.shape[1])
            a = a[y0:y0 + hh, x0:x0 + ww]
        f = fit(a.shape[0], a.shape[1], self.h, self.w, self.resize)
        if (f.ch, f.cw) != a.shape[:2]:
            a = a[f.y0:f.y0 + f.ch, f.x0:f.x0 + f.cw]
        out = resize(a, f.nh, f.nw, self.use_cv2)
        if not f.padded and (f.nh, f.nw) == (self.h, self.w):
            return out
        canvas = np.full((self.h, self.w, *out.shape[2:]), self.pad if is_u8 else self.pad / 255.0, np.float32)
        canvas[f.top:f.top + f.nh, f.left:f.left + f.nw] = out
        return canvas

    # torch ---------------------------------------------------------------------------------------------
    def _torch(self, t: torch.Tensor, idx: int | None = None) -> np.ndarray:
        where = "" if idx is None else f"frame {idx}: "
        if t.dim() != 3:
            raise ValueError(f"{where}a tensor frame must be C×H×W or N×C×H×W, got shape {tuple(t.shape)}")
        if t.numel() == 0:
            raise ValueError(f"{where}empty frame (shape {tuple(t.shape)})")
        if t.shape[0] not in (1, 3, 4):
            raise ValueError(f"{where}a tensor frame needs 1, 3 or 4 channels (C×H×W), got {t.shape[0]} "
                             f"(shape {tuple(t.shape)}); tensors are channel-first")
        is_u8 = t.dtype == loaded_torch().uint8
        if not is_u8 and not t.is_floating_point():
            raise ValueError(f"{where}unsupported dtype {t.dtype}: frames must be uint8 or float in [0, 1]")
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        x = (t if is_u8 else t.float()).numpy()
        if x.shape[1] != self.h or x.shape[2] != self.w or self.roi is not None:  # channel-last, like numpy
            x = self._resize_np(x.transpose(1, 2, 0), is_u8).transpose(2, 0, 1)
        small = np.ascontiguousarray(x, np.float32)
        if self.tensor_color == "bgr" and small.shape[0] >= 3:
            small = small[[2, 1, 0, 3][:small.shape[0]]]  # → RGB(A)
        return self._finish(small, is_u8, where)

    # shared ----------------------------------------------------------------------------------------------
    @staticmethod
    def _check_range(small: np.ndarray, where: str) -> None:
        lo, hi = float(small.min()), float(small.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{where}frame contains NaN or Inf")
        if lo < -_TOL or hi > 1.0 + _TOL:
            raise ValueError(f"{where}float frames must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}] "
                             "(pass uint8 for 0..255 data, or divide by 255)")

    def _finish(self, small: np.ndarray, is_u8: bool, where: str) -> np.ndarray:
        """``small``: float32 C×h×w in RGB(A) order, 0..255 (uint8 source) or 0..1 → normalised C'×h×w."""
        if not is_u8:
            self._check_range(small, where)
        c = small.shape[0]
        if c == 4:
            small = small[:3]
            c = 3
        if self.mode == "grey":
            if c == 3:
                small = np.tensordot(np.asarray(LUMA_RGB, np.float32), small, axes=1)[None]
        else:
            if c == 1:
                small = np.repeat(small, 3, axis=0)
            if self.mode == "bgr":
                small = small[::-1]
        mul = self._mul_u8 if is_u8 else self._mul_f
        return (small * mul + self._add).astype(np.float32, copy=False)

    def _stack(self, items: Sequence[np.ndarray]) -> np.ndarray:
        if not len(items):
            raise ValueError("empty batch of frames")
        return np.ascontiguousarray(np.stack(items))
