"""``engine="onnxruntime"``: each ladder level exported once to ONNX, cached on disk, one session per level.

* Export: the level's static module as float32 ONNX (:func:`adaptive_csp.engines.export.export_onnx`),
  stored under :func:`adaptive_csp.engines.cache.cache_dir` keyed by weights, BN statistics, level and
  input shape (:mod:`.cache`): a second process, or a second runner, loads the file instead of exporting.
* Sessions: one ``InferenceSession`` per level, built on first use (or by :meth:`prepare`), with
  ``threads`` intra-op threads (default: ``torch.get_num_threads()``) and sequential execution.
* Providers: TensorRT, then CUDA, then CPU — whichever this onnxruntime build offers (on a Jetson the
  TensorRT / CUDA builds); ``providers=`` overrides.  No hard dependency on any of them.
* int8 rungs: a rung with ``extra["precision"] == "int8"`` (or the levels given as ``int8=``) runs a static QDQ int8 model
  (:mod:`adaptive_csp.quant.ort_int8`) calibrated on ``calib`` (batches, or ``level -> batches``); it is
  cached too, keyed additionally by a digest of the calibration data.  Without ``calib`` the checkpoint's
  own calibration images (``model.int8_calib``, stored by ``adaptive-csp profile --int8``) are used; with
  neither, such a rung runs in float32 (logged once).
* A ladder of separate models (:class:`~adaptive_csp.models.ladder.ModelLadder`): a level that is an ONNX
  file runs that file as given (its first input and first output; no export, no cache, no int8); a torch
  level is exported and cached as above.  A file whose input does not fit the ladder's N×C×H×W, or is not
  float32, is refused naming the file; a file with a fixed batch of 1 runs a batch row by row.
* Frames: :meth:`run_frame` / :meth:`frame_fns` run each level's graph wrapped by
  :func:`adaptive_csp.engines.frame_graph.frame_model` (the resized uint8 camera frame in, probabilities
  or decoded detections out), a batch of one through pre-bound buffers (IOBinding).  The first frame of a
  kind (channels, dtype, colour) builds that kind's session for every level; int8 rungs wrap their QDQ
  file.  This is the runner's hot path; it needs the ``onnx`` package (:meth:`frames_supported`).
* The engine snapshots the weights when it is built: after training or recalibrating, call
  :meth:`refresh` (or build a new runner); ``generation`` counts the refreshes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptive_csp.engines.base import OPSET, Engine, as_numpy
from adaptive_csp.engines.cache import cache_dir, cached_file
from adaptive_csp.models.static import input_shape
from adaptive_csp.util.tensors import torch_threads

if TYPE_CHECKING:  # a ladder of ONNX files (a bundle) runs without torch: torch comes only with a torch model
    import torch

__all__ = ["OrtEngine", "have_onnxruntime", "default_providers"]

log = logging.getLogger("adaptive_csp.engines")
_PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_FRAME_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))


def have_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise ValueError("engine='onnxruntime' needs onnxruntime: pip install 'adaptive-csp[ort]'") from None
    return ort


def default_providers(directory: Path | None = None) -> list[Any]:
    """TensorRT / CUDA execution providers where this onnxruntime build has them, then the CPU."""
    avail = _ort().get_available_providers()
    out: list[Any] = []
    for p in _PREFERRED:
        if p in avail:
            if p == "TensorrtExecutionProvider" and directory is not None:
                out.append((p, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(directory / "trt")}))
            else:
                out.append(p)
    out.append("CPUExecutionProvider")
    return out


class OrtEngine(Engine):
    name = "onnxruntime"

    def __init__(self, model: Any, threads: int | None = None, cache: str | Path | None = None,
                 providers: Sequence[Any] | None = None,
                 calib: Iterable[torch.Tensor] | Callable[[Any], Iterable[torch.Tensor]] | None = None,
                 int8: Iterable[int] | None = None, opset: int = OPSET):
        ort = _ort()
        super().__init__(model)
        if not self.elastic or not (hasattr(model, "export") or callable(getattr(model, "onnx_file", None))):
            raise ValueError("engine='onnxruntime' needs an elastic model (with levels and export()) or a "
                             "ladder of ONNX files (a bundle); run a plain module with engine='torch'")
        if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        self.threads = int(threads) if threads is not None else torch_threads()
        self.dir = cache_dir(cache) / "onnx"
        self.providers = list(providers) if providers is not None else default_providers(self.dir)
        self.opset = int(opset)
        self.calib = calib
        self.int8 = frozenset(self.ladder.index(i) for i in int8) if int8 is not None else None
        self.shape = input_shape(model)
        self._opts = ort.SessionOptions()
        self._opts.intra_op_num_threads = self.threads
        self._opts.inter_op_num_threads = 1
        self._opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._opts.log_severity_level = 3
        self._lock = threading.Lock()
        self._runs: list[Callable[..., Any] | None] = [None] * len(self.ladder)
        self._sessions: list[Any] = [None] * len(self.ladder)
        self.built: list[bool] = [False] * len(self.ladder)  # True where this engine exported (no cache hit)
        self.paths: list[Path | None] = [None] * len(self.ladder)
        self._weights: str | None = None
        self._calib_digest: dict[int, str] = {}
        self._frame_runs: dict[tuple[int, str, str], list[Callable[[np.ndarray], np.ndarray]]] = {}  # per kind
        self.generation = 0  # bumped by refresh(): whoever holds frame_fns() lists rebuilds them

    # files -------------------------------------------------------------------------------------------------
    def _calib_batches(self, level: int) -> list[torch.Tensor] | None:
        import torch

        if self.calib is None:
            own = getattr(self.model, "int8_calib", None)  # the images the checkpoint's int8 rungs were chosen on
            if own is None:
                return None
            from adaptive_csp.runtime.preprocess import Preprocessor

            return [torch.from_numpy(Preprocessor(self.model.meta["preprocess"]).array(own)[0])]

        data = self.calib(self.ladder[level]) if callable(self.calib) else self.calib
        return [torch.as_tensor(b) for b in data]

    def precision(self, level: int) -> str:
        """"int8" for the levels given as ``int8=`` (default: the rungs marked int8 in the ladder)."""
        if self.int8 is not None:
            return "int8" if level in self.int8 else "fp32"
        return "int8" if self.ladder.rungs[level].extra.get("precision") == "int8" else "fp32"

    def onnx_path(self, level: int, rebuild: bool = False) -> tuple[Path, bool]:
        """The cached ONNX file of ``level`` and whether it was built now (False: found in the cache); for a
        level that is the user's own ONNX file, that file (never built)."""
        own = getattr(self.model, "onnx_file", None)
        path = own(level) if callable(own) else None
        if path is not None:
            if self.precision(level) == "int8":
                log.warning("engine onnxruntime: rung %d is your own ONNX file %s; it runs as given, not "
                            "int8-quantised", level, Path(path).name)
            return Path(path), False
        from adaptive_csp.engines.cache import level_key, tensors_digest, weights_digest
        from adaptive_csp.engines.export import export_onnx

        if self._weights is None:
            self._weights = weights_digest(self.model)
        lv = self.ladder[level]
        shape = (1, *self.shape)
        int8 = self.precision(level) == "int8"
        fp32, built = cached_file(self.dir, level_key(self._weights, self.model, lv, shape, self.opset) + ".onnx",
                                  lambda tmp: export_onnx(self.model, level, tmp, self.opset),
                                  rebuild=rebuild and not int8)
        if not int8:
            return fp32, built
        batches = self._calib_batches(level)
        if batches is None:
            log.warning("engine onnxruntime: rung %d is marked int8 but no calibration data was given "
                        "(calib=); it runs in float32", level)
            return fp32, built
        from adaptive_csp.quant.ort_int8 import SETTINGS, quantize_onnx

        digest = tensors_digest((str(i), b.float()) for i, b in enumerate(batches))[:16]
        key = level_key(self._weights, self.model, lv, shape, self.opset, f"int8:{SETTINGS}:{digest}")
        return cached_file(self.dir, key + ".onnx", lambda tmp: quantize_onnx(fp32, tmp, batches), rebuild=rebuild)

    # sessions ----------------------------------------------------------------------------------------------
    def session(self, level: int) -> Any:
        """The InferenceSession of ladder level ``level`` (built on first use; thread-safe)."""
        s = self._sessions[level]
        if s is None:
            with self._lock:
                s = self._sessions[level]
                if s is None:
                    s = self._build(level)
        return s

    def _build(self, level: int) -> Any:
        ort = _ort()
        path, self.built[level] = self.onnx_path(level)
        try:
            s = ort.InferenceSession(str(path), sess_options=self._opts, providers=self.providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
            own = getattr(self.model, "onnx_file", None)
            if (callable(own) and own(level) is not None) or self.built[level]:
                raise ValueError(f"{path}: onnxruntime cannot load it ({type(e).__name__}: {e})") from None
            path, self.built[level] = self.onnx_path(level, rebuild=True)  # a cached file gone bad: heal it
            s = ort.InferenceSession(str(path), sess_options=self._opts, providers=self.providers)
        self.paths[level] = path
        inp, out = s.get_inputs()[0].name, [o.name for o in s.get_outputs()][:1]
        run = s.run
        if self._check_input(s, path) == 1:  # a fixed batch of 1: one row at a time
            self._runs[level] = lambda x: np.concatenate([run(out, {inp: x[i:i + 1]})[0] for i in range(len(x))])
        else:
            self._runs[level] = lambda x: run(out, {inp: x})[0]
        self._sessions[level] = s
        return s

    def _check_input(self, session: Any, path: Path) -> int | None:
        """The session's fixed batch size (None: dynamic); ValueError when its input does not fit."""
        i = session.get_inputs()[0]
        dims = list(i.shape)
        if i.type != "tensor(float)":
            raise ValueError(f"{path.name}: input {i.name!r} is {i.type}; the runner feeds float32 (tensor(float))")
        want = (None, *self.shape)
        fits = len(dims) == 4 and all(not isinstance(d, int) or w is None or d == w for d, w in zip(dims, want))
        fixed = dims[0] if dims and isinstance(dims[0], int) else None
        if not fits or fixed not in (None, 1):
            raise ValueError(f"{path.name}: input {i.name!r} has shape {dims}, which does not fit the model's "
                             f"N×{self.shape[0]}×{self.shape[1]}×{self.shape[2]} (a dynamic or 1 batch axis)")
        return fixed

    def run(self, x: np.ndarray, level: int) -> np.ndarray:
        fn = self._runs[level]
        if fn is None:
            self.session(self._check_level(level))
            fn = self._runs[level]
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or not x.flags.c_contiguous:
            x = as_numpy(x)
        if x.shape[1:] != self.shape:
            raise ValueError(f"engine onnxruntime: input shape {tuple(x.shape)} does not fit the model's "
                             f"N×{self.shape[0]}×{self.shape[1]}×{self.shape[2]}")
        return fn(x)

    # frames: preprocessing and post-processing in the graph ------------------------------------------------
    def frames_supported(self) -> bool:
        """True when :meth:`run_frame` can serve: the model has ``meta["preprocess"]`` and the ``onnx``
        package is here to wrap each level's graph (:mod:`.frame_graph`)."""
        from adaptive_csp.engines.frame_graph import have_onnx

        return bool((getattr(self.model, "meta", None) or {}).get("preprocess")) and have_onnx()

    def run_frame(self, frame: np.ndarray, level: int, color: str = "bgr") -> np.ndarray:
        """Level ``level`` on resized camera frames: ``frame`` uint8 C-contiguous ``N×H×W×C`` (C 1 or 3,
        ``color`` order) at the model's input size → probabilities (a classifier) or decoded detections,
        a fresh array.  The cast, colour, scale, mean/std and layout run inside the graph; a batch of one
        runs through pre-bound input and output buffers (IOBinding)."""
        fn = self.frame_fns(frame, color)[self._check_level(level)]
        try:
            return fn(frame)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own classes for a bad feed
            raise ValueError(f"engine onnxruntime: run_frame on {frame.dtype} {tuple(frame.shape)} failed: "
                             f"{type(e).__name__}: {e}") from None

    def frame_fns(self, frame: np.ndarray, color: str = "bgr") -> list[Callable[[np.ndarray], np.ndarray]]:
        """``fns[level](frame)`` for every level, for frames of this kind (channels, dtype, ``color``): the
        first such frame builds them all, so a later level switch never pays for it (the runner's hot path
        holds the list)."""
        kind = (frame.shape[-1], frame.dtype.char, color)
        fns = self._frame_runs.get(kind)
        return fns if fns is not None else self._frame_build(frame, color)

    def _frame_build(self, frame: np.ndarray, color: str) -> list[Callable[[np.ndarray], np.ndarray]]:
        chans = frame.shape[-1] if frame.ndim == 4 else -1
        if frame.dtype not in _FRAME_DTYPES or chans not in (1, 3) or tuple(frame.shape[1:3]) != self.shape[1:]:
            raise ValueError(f"engine onnxruntime: run_frame takes uint8 (or float32 on the 0..255 scale) "
                             f"N×{self.shape[1]}×{self.shape[2]}×C (C 1 or 3), got {frame.dtype} {tuple(frame.shape)}")
        from adaptive_csp.engines.frame_graph import FRAME_INPUT, frame_model

        self.prepare()  # the float levels: exported, cached, healed, int8 where the rung says so
        task = str((getattr(self.model, "meta", None) or {}).get("task", "classify"))
        kind = (chans, frame.dtype.char, color)
        with self._lock:
            fns = self._frame_runs.get(kind)
            if fns is None:
                fns = []
                for lv in range(len(self.ladder)):
                    wrapped = frame_model(self.paths[lv], self.model.meta["preprocess"], chans, color,
                                          softmax=task != "detect", dtype=frame.dtype)
                    s = _ort().InferenceSession(wrapped.SerializeToString(), sess_options=self._opts,
                                                providers=self.providers)
                    fns.append(_bound_run(s, FRAME_INPUT, np.zeros((1, *self.shape[1:], chans), frame.dtype)))
                self._frame_runs[kind] = fns
            return fns

    def prepare(self, levels: Iterable[int] | None = None, batch_sizes: Iterable[int] = (1,)) -> OrtEngine:
        for i in range(len(self.ladder)) if levels is None else levels:
            self.session(self._check_level(i))
        return self

    def refresh(self) -> None:
        with self._lock:
            self.ladder = self.model.levels
            n = len(self.ladder)
            self._weights = None
            self._runs, self._sessions, self.paths = [None] * n, [None] * n, [None] * n
            self._frame_runs = {}
            self.generation += 1
            self.built = [False] * n

    def close(self) -> None:
        self.refresh()

    def describe(self) -> dict[str, Any]:
        provs = [p if isinstance(p, str) else p[0] for p in self.providers]
        return {"engine": self.name, "threads": self.threads, "providers": provs,
                "int8_levels": [i for i in range(len(self.ladder)) if self.precision(i) == "int8"]}


def _bound_run(session: Any, inp: str, xbuf: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> session's first output`` (a fresh array).  A batch of one is copied into ``xbuf``, a pre-bound input
    buffer and run into a pre-bound output buffer (IOBinding: no per-call allocation, no feed dict); a
    larger batch, an output without a fixed shape, or a second thread while the first holds the buffers
    runs ``session.run``."""
    out = session.get_outputs()[0]
    names, run = [out.name], session.run

    def plain(x: np.ndarray) -> np.ndarray:
        return run(names, {inp: x})[0]

    dims = [1, *out.shape[1:]]
    if not all(isinstance(d, int) for d in dims):
        return plain
    ybuf = np.zeros(dims, np.float32)
    io = session.io_binding()
    io.bind_input(inp, "cpu", 0, xbuf.dtype, xbuf.shape, xbuf.ctypes.data)
    io.bind_output(out.name, "cpu", 0, np.float32, ybuf.shape, ybuf.ctypes.data)
    busy = threading.Lock()
    go, copyto, acquire, release = session.run_with_iobinding, np.copyto, busy.acquire, busy.release

    def bound(x: np.ndarray) -> np.ndarray:
        if x.shape[0] != 1 or not acquire(False):
            return plain(x)
        try:
            copyto(xbuf, x)
            go(io)
            return ybuf.copy()
        finally:
            release()
    bound.buffers = (xbuf, ybuf)  # type: ignore[attr-defined]  # kept alive with the binding
    return bound
