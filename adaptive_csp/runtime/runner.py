"""AdaptiveRunner: the drop-in wrapper for a camera loop.

>>> runner = AdaptiveRunner(pretrained(), policy="battery")      # doctest: +SKIP
>>> pred = runner.infer(frame)          # a BGR frame from cv2, any size   # doctest: +SKIP

A detector (``model.meta["task"] == "detect"``) gives :class:`~adaptive_csp.runtime.detections.Detections`
instead of a Prediction: boxes in the frame's own pixel coordinates, scores, labels and class names, with
the level, latency and reason (the same path; see "Detectors" below).

One ``infer`` call: preprocess (:mod:`.preprocess`) → read the sensor poller's cached snapshot (never a
sensor) → the policy's level, decided at most once per policy tick (``policy_tick_ms``, and at once when
a new sensor snapshot arrives) under the runner's lock → optional content-aware demand (:mod:`.content`)
→ the engine runs that level *outside* the lock (:mod:`adaptive_csp.engines`: torch, ONNX Runtime, CUDA
graphs) → softmax → record latency and telemetry under the lock.  On ONNX Runtime a numpy uint8 frame
takes the frame path: resize only (:meth:`Preprocessor.small`), then the level's frame graph does the
arithmetic and the softmax (:meth:`~adaptive_csp.engines.ort_engine.OrtEngine.frame_fns`); float and tensor
frames, lists, and runners with content demand take the float path (it reads the normalised input).  The measured latency reaches the
policy through ``RuntimeStats.latencies_ms`` at its next decision.

What the runner does to what you pass it (nothing silent):

* the model is never moved, cast, put in eval mode or trained: engines read it.  The torch engine runs
  each level's prepared module (``model.prepared(i)``, built from the weights on their device and dtype;
  ``prepare=True`` builds them all up front, filling the model's prepared cache — the only change);
  the ONNX Runtime and CUDA engines build their own copies.  After changing the weights, call
  ``runner.engine.refresh()``.  A plain (non-elastic) module runs as given: call ``.eval()`` yourself.
* colour order: numpy frames are read in ``color`` order (default ``"bgr"``, as OpenCV gives them);
  torch tensors in ``tensor_color`` order (default ``"rgb"``, torchvision's convention).

Detectors: each level outputs ``N×A×(4+K)`` (boxes xyxy in input pixels, K class scores in [0, 1]);
the runner applies the score threshold, class-aware NMS and ``max_det`` (constructor keywords
``score_thresh``, ``iou_thresh``, ``max_det``) and maps boxes into each frame with the preprocessor's
geometry (each frame of a batch by its own size).  The confidence passed to policies
(``RuntimeStats.confidence``) is the mean score of a frame's detections, 1.0 for a frame with none (the
lowest frame's for a batch); content demand gets it with the number of detections
(:meth:`ContentDemand.result_detections`).

The ladder the policy sees: ``runner.view`` is the engine's ladder as it runs on this engine at batch 1
(a camera frame), ``self.ladder.view(engine, 1)`` (:meth:`adaptive_csp.levels.LevelLadder.view`): only
the rungs on that key's Pareto front, their ``latency_ms`` and ``costs`` this engine's at batch 1 (the
ladder itself when the model's JSON has no such measurement).  The policy decides in view indices; the
runner maps its choice to the engine's ladder (``view.parent_index``).  ``Prediction.level``,
``runner.level``, ``runner.policy_level`` and telemetry report *engine ladder* indices (``model.levels``,
what ran); ``runner.view_level`` is the policy's choice in view indices.  ``runner.calibrate()`` measures
this device's latencies on the runner's engine (seconds; cached per device) and swaps in the view built
from them.

Faults: a bad frame raises ValueError naming the problem and changes nothing; a policy that raises or
returns a bad level, or a sensor object that raises, never escapes ``infer``: the call runs at the
policy's safe level (or the clamped level) with reason ``fault:...``, logged once per kind.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptive_csp.control.policy import Policy, RuntimeStats
from adaptive_csp.control.presets import DEFAULT_POLICY, get_policy
from adaptive_csp.data.preprocess_spec import merge_spec
from adaptive_csp.engines.base import Engine
from adaptive_csp.engines.select import make_engine
from adaptive_csp.levels import LevelLadder
from adaptive_csp.runtime.bundle import Bundle, is_bundle, load_bundle
from adaptive_csp.runtime.content import ContentDemand
from adaptive_csp.runtime.detections import (
    POSTPROCESS_DEFAULTS,
    DetectionDecoder,
    Detections,
    detection_confidence,
)
from adaptive_csp.runtime.preprocess import Preprocessor
from adaptive_csp.runtime.telemetry import Telemetry
from adaptive_csp.sensors.poller import SensorPoller
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.util.log import OnceLogger
from adaptive_csp.util.tensors import is_module, loaded_torch

if TYPE_CHECKING:  # a bundle runs without torch: this module never imports it (adaptive_csp.util.tensors)
    import torch

__all__ = ["AdaptiveRunner", "Prediction", "Detections"]

log = logging.getLogger("adaptive_csp.runtime")


@dataclass(frozen=True, slots=True)
class Prediction:
    label: int
    class_name: str
    score: float  # top-1 probability
    probs: np.ndarray  # class probabilities (float32, read-only view)
    level: int  # ladder index that ran
    latency_ms: float  # this infer call: preprocess + decide + forward + softmax (the whole batch)
    reason: str  # why this level (the binding constraint, or a fault)
    frame_index: int | None = None  # set by stream()


def _softmax(logits: np.ndarray) -> tuple[list[np.ndarray], list[int], list[float]]:
    """Read-only float32 probability rows, top-1 labels and scores of N×K logits: the one softmax for every
    engine.  Batch 1 stays in plain Python floats until one array is made: in a camera loop the code runs
    with caches cold from the forward pass, where every numpy call costs several µs."""
    if logits.shape[0] == 1:
        row = logits[0].tolist()
        mx = max(row)
        e = [_exp(v - mx) for v in row]
        tot = sum(e)
        p = [v / tot for v in e]
        j = p.index(max(p))
        pa = np.array(p, dtype=np.float32)
        pa.flags.writeable = False
        return [pa], [j], [float(pa[j])]
    lg = logits.astype(np.float64)
    e = np.exp(lg - lg.max(1, keepdims=True))
    e /= e.sum(1, keepdims=True)
    j = e.argmax(1)
    pa = e.astype(np.float32)
    pa.flags.writeable = False
    return list(pa), j.tolist(), pa[np.arange(len(j)), j].tolist()


def _top1(probs: np.ndarray) -> tuple[list[np.ndarray], list[int], list[float]]:
    """Like :func:`_softmax` for probabilities already computed (a frame graph's ``probs``, a fresh array)."""
    probs.flags.writeable = False
    if probs.shape[0] == 1:
        row = probs[0].tolist()
        s = max(row)
        return [probs[0]], [row.index(s)], [s]
    j = probs.argmax(1)
    return list(probs), j.tolist(), probs[np.arange(len(j)), j].tolist()


_exp = math.exp


def _device(model: Any, device: Any) -> Any:
    """Where the engine runs: ``device`` (a torch.device when torch is loaded), else where a torch model's
    weights are, else ``"cpu"`` (a bundle)."""
    t = loaded_torch()
    if device is not None:
        return t.device(device) if t is not None else str(device)
    if is_module(model):
        from adaptive_csp.engines.base import model_device_dtype

        return model_device_dtype(model)[0]
    return t.device("cpu") if t is not None else "cpu"


class _NoSensors:
    """``sensors=None``: an empty snapshot (policies see every signal as absent), renewed every 0.25 s
    so it is never stale — and, like a poller's, the same object between renewals (cheap telemetry)."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self._r = Readings(timestamp=clock(), source="none")

    def latest(self) -> Readings:
        now = self.clock()
        if not 0.0 <= now - self._r.timestamp < 0.25:
            self._r = Readings(timestamp=now, source="none")
        return self._r


class AdaptiveRunner:
    """Wrap an elastic model for a camera loop (see the module docstring).

    model: an ElasticNet, a module with ``levels`` (a LevelLadder), ``meta`` and ``prepared(i)`` or
        ``forward(x, level)``, or a plain module (one level); a ladder of separate models — a
        :class:`~adaptive_csp.models.ladder.ModelLadder`, a list of torch modules / ONNX files (cheapest →
        full) or a folder with ``ladder.json`` — measured on the engine first when it has no latency there
        (:mod:`adaptive_csp.runtime.model_source`); None or "default" loads the shipped model; a bundle
        folder (or :class:`~adaptive_csp.runtime.bundle.Bundle`) runs on onnxruntime without torch.
    policy: anything ``get_policy`` takes (None: a bundle's ``policy.toml``, else ``DEFAULT_POLICY``, the
        ``balanced`` preset); a Policy object is used as is, state included.
    sensors: "auto" / "psutil" / ... or a source (``read()``): polled on a thread the runner owns;
        an object with ``latest()`` (a SensorPoller you started, a simulator): used as is, never closed;
        None / "none": no sensors.
    deadline_ms: the per-frame deadline given to the policy (latency governor) and to ``stream(skip=True)``.
    content: True or a :class:`ContentDemand` turns on content-aware demand.
    dvfs: an :class:`adaptive_csp.power.DVFSActuator` that applies the policy's frequency requests
        (``Decision.frequency``); its failures are faults like a sensor's, never exceptions.
    engine: "auto" (default: ONNX Runtime on a CPU when installed, CUDA graphs on a GPU — see
        :func:`adaptive_csp.engines.choose_engine`), "torch", "onnxruntime", "cuda", or an
        :class:`adaptive_csp.engines.Engine`; ``engine_options`` go to it (``threads``, ``cache``,
        ``calib``, ``dtype``, ``graphs``, ...).
    score_thresh / iou_thresh / max_det: a detector's post-processing (score threshold in [0, 1],
        class-aware NMS overlap in (0, 1], at most ``max_det`` detections per frame; None: the model's
        ``meta["postprocess"]`` — a bundle's — else 0.25, 0.6 and 100); ``multi_label``: a box
        may be reported once per class above the threshold (COCO evaluation), not only for its best class;
        validated always, used only when ``model.meta["task"] == "detect"``.
    device: where the engine runs (None: where the model is).  The model is never moved: the torch
        engine refuses another device; the cuda engine copies each level onto it.
    color / tensor_color: channel order of numpy frames (default "bgr") and of torch tensors (default
        "rgb").  backend: the preprocessing (resize) backend, "auto" / "cv2" / "torch" — not the engine.
    resize: how a frame of another size or shape becomes the model's input: "stretch" (the whole frame,
        distorted to the input's aspect), "letterbox" (the whole frame, one scale, padded with ``pad``, a
        0..255 pixel value, default 0) or "center_crop" (only the aspect excess dropped); None: the model's
        ``meta["preprocess"]["resize"]``, else "stretch".  See :mod:`adaptive_csp.runtime.resize`.
    roi: ``(x, y, w, h)`` in frame pixels: only that region is looked at (boxes still come back in frame
        pixels).  preprocess: keys merged over the model's ``meta["preprocess"]`` and validated (an unknown
        key or a bad value raises, naming it), e.g. ``{"resize": "letterbox"}``.
    telemetry: a path (or a :class:`~adaptive_csp.runtime.telemetry_file.TelemetryFile` for ``max_bytes``,
        ``backups``, ``flush_s``): every record is also appended there as JSONL from a background thread,
        rotated by size, so a crash loses at most the last ``flush_s``; None: in memory only.
    policy_tick_ms: the policy decides at most once per tick (default 10 ms: every frame of a camera up
        to 100 fps), and at once when a new sensor snapshot arrives; 0 decides on every call.  Content
        demand, when on, still looks at every frame.
    """

    def __init__(self, model: Any = None, policy: Any = None, sensors: Any = "auto",
                 deadline_ms: float | None = None, device: str | torch.device | None = None, *,
                 engine: str | Engine = "auto", engine_options: dict | None = None,
                 color: str = "bgr", tensor_color: str = "rgb", content: bool | ContentDemand = False,
                 preprocess: dict | None = None, backend: str = "auto", prepare: bool = True,
                 policy_tick_ms: float = 10.0, latency_window: int = 120, telemetry_size: int = 4096,
                 sensor_rate_hz: float = 2.0, clock: Callable[[], float] = time.monotonic, dvfs: Any = None,
                 score_thresh: float | None = None, iou_thresh: float | None = None, max_det: int | None = None,
                 multi_label: bool = False,
                 resize: str | None = None, pad: float | None = None, roi: Any = None, telemetry: Any = None):
        if model is None or (isinstance(model, str) and model == "default"):
            from adaptive_csp.models.pretrained import pretrained
            model = pretrained()
        if is_bundle(model):  # a folder written by export_bundle: onnxruntime and numpy only, never torch
            model = load_bundle(model)
        if not isinstance(model, Bundle):
            from adaptive_csp.runtime.model_source import resolve_model
            model = resolve_model(model, preprocess=preprocess, engine=engine, device=device,
                                  engine_options=engine_options)  # a module; a ladder of models measured
        if deadline_ms is not None and not deadline_ms > 0:
            raise ValueError(f"deadline_ms must be > 0, got {deadline_ms!r}")
        if not policy_tick_ms >= 0:
            raise ValueError(f"policy_tick_ms must be >= 0, got {policy_tick_ms!r}")
        self.model = model
        self.meta: dict = dict(getattr(model, "meta", None) or {})
        spec = merge_spec(self.meta.get("preprocess"), preprocess)  # validated: unknown keys are errors
        if "input_size" not in spec:
            raise ValueError("the model has no meta['preprocess']; pass preprocess={'input_size': [H, W], "
                             "'in_chans': C, 'color': 'grey'|'rgb'|'bgr', 'mean': [...], 'std': [...]}")
        self.pre = Preprocessor(spec, color=color, backend=backend, tensor_color=tensor_color, resize=resize,
                                pad=pad, roi=roi)
        self.engine: Engine = make_engine(model, engine, device, **(engine_options or {}))
        self.elastic = self.engine.elastic
        self.ladder: LevelLadder = self.engine.ladder
        self._set_view(self.ladder.view(self.engine.name, 1))  # what the policy sees (module docstring)
        self._run = self.engine.run
        # the frame path: a numpy uint8 frame goes resize -> one graph that does the arithmetic (.frame_graph)
        self._frames = callable(getattr(self.engine, "frame_fns", None))
        self._color = color
        self._frame_fns: tuple[Any, list] = (None, [])  # ((kind, engine generation), every level's frame fn)
        self._owns_engine = not isinstance(engine, Engine)
        self.device = _device(model, device)
        if prepare and self.elastic:
            self.engine.prepare()  # before any thread starts: a failing export leaves nothing running
        names = self.meta.get("class_names")
        self.class_names: list[str] | None = [str(n) for n in names] if names else None
        self.task = str(self.meta.get("task", "classify"))
        # the model's own post-processing (per rung when it has a per_level table), else the defaults; validates
        post = {**POSTPROCESS_DEFAULTS, **(self.meta.get("postprocess") or {})}
        decoder = DetectionDecoder.from_meta(post, self.class_names, self.ladder, score_thresh, iou_thresh, max_det,
                                             multi_label)
        self._decoder: DetectionDecoder | None = decoder if self.task == "detect" else None
        if policy is None:  # a bundle's own default policy, else the package's
            policy = getattr(model, "policy_file", None) or DEFAULT_POLICY
        self.policy: Policy = get_policy(policy)
        self.deadline_ms = float(deadline_ms) if deadline_ms is not None else None
        self.clock = clock
        self.content: ContentDemand | None = None
        if content:
            self.content = content if isinstance(content, ContentDemand) else ContentDemand()
            self.content.bind(self.ladder.full, [float(s) for s in self.pre.std])
        if self._frames and (self.content is not None or not self.engine.frames_supported()):
            self._frames = False  # content demand reads the normalised input; no onnx package to wrap with
        self.telemetry = Telemetry(telemetry_size, self.class_names)
        if telemetry is not None:  # every record also appended to disk (survives a crash)
            from adaptive_csp.runtime.telemetry_file import TelemetryFile

            tf = telemetry if isinstance(telemetry, TelemetryFile) else TelemetryFile(telemetry)
            self.telemetry.sink = tf.start(self.telemetry.row)
        self._lock = threading.Lock()
        self._once = OnceLogger(log)
        self._lat: deque[float] = deque(maxlen=int(latency_window))
        self._policy_level = self.ladder.full  # what the policy chose last (its own state)
        self._policy_reason = ""
        self._tick = float(policy_tick_ms) / 1000.0
        self._decided_at = -math.inf  # clock time of the last policy decision
        self._decided_on: Any = None  # the readings snapshot it was based on
        self._level = self.ladder.full  # what ran last
        self._conf: float | None = None
        self.dvfs = dvfs
        self.frequency: float | None = None  # the frequency in force (applied by ``dvfs``) or last requested
        self._closed = False
        self._poller: Any = None
        self._owns_poller = False
        if sensors is None or (isinstance(sensors, str) and sensors == "none"):
            self._sensors: Any = _NoSensors(clock)
        elif callable(getattr(sensors, "latest", None)):
            self._sensors = sensors
        else:
            self._poller = SensorPoller(sensors, rate_hz=sensor_rate_hz, clock=clock)
            self._owns_poller = True
            self._sensors = self._poller.start(wait=1.0)

    # the hot path -------------------------------------------------------------------------------------------
    def infer(self, frame: Any) -> Prediction | list[Prediction] | Detections | list[Detections]:
        """One frame → a Prediction (a detector: Detections); a batch (list, N×… array or tensor) → a list."""
        if self._closed:
            raise RuntimeError("this AdaptiveRunner is closed")
        t0 = time.perf_counter()
        try:
            small = self.pre.small(frame) if self._frames else None
            x, batched = self.pre.array(frame) if small is None else small
        except ValueError as e:
            with self._lock:
                self.telemetry.bad_frames += 1
            self._once(f"bad_frame:{str(e)[:40]}", "bad frame rejected: %s", e, level=logging.INFO)
            raise
        with self._lock:
            level, reason, readings = self._decide(x)
        y = self._run(x, level) if small is None else self._frame_fn(x)[level](x)
        if self._decoder is not None:
            return self._detect(frame, y, batched, level, reason, readings, t0)
        pa, labels, scores = _softmax(y) if small is None else _top1(y)
        lat = (time.perf_counter() - t0) * 1000.0
        with self._lock:
            self._lat.append(lat)
            self._conf = conf = scores[0] if len(scores) == 1 else min(scores)
            if self.content is not None:
                self.content.result(conf, level)
            self.telemetry.record(self.clock(), level, lat, reason, readings, len(labels), ("cls", labels, scores))
        names = self.class_names
        if not batched:  # the camera loop: one frame, no lists on the way out
            lb = labels[0]
            return Prediction(lb, names[lb] if names and lb < len(names) else str(lb), scores[0], pa[0], level, lat,
                              reason)
        return [Prediction(lb, names[lb] if names and lb < len(names) else str(lb), sc, pr, level, lat, reason)
                for pr, lb, sc in zip(pa, labels, scores, strict=True)]

    __call__ = infer

    def _frame_fn(self, x: np.ndarray) -> list:
        """Every level's frame-graph function for frames of ``x``'s kind (channels, dtype): the engine builds
        them on the first such frame; the list is kept until the kind or the engine (``refresh``) changes."""
        kind, fns = self._frame_fns
        now = (x.shape[-1], x.dtype.char, self.engine.generation)
        if kind != now:
            fns = self.engine.frame_fns(x, self._color)
            self._frame_fns = (now, fns)
        return fns

    def note_latency(self, ms: float) -> None:
        """Replace the newest latency in the window the policy reads with ``ms``: a caller that plays the
        runner on a simulated device (the demo's story) reports what that device's frame took, so the
        governors judge the simulated world, not this machine.  Telemetry keeps the measured latency."""
        ms = float(ms)
        if not ms >= 0.0:
            raise ValueError(f"latency must be a number >= 0 ms, got {ms!r}")
        with self._lock:
            if self._lat:
                self._lat[-1] = ms

    def _detect(self, frame: Any, y: np.ndarray, batched: bool, level: int, reason: str, readings: Any,
                t0: float) -> Detections | list[Detections]:
        """The detector's half of ``infer``: decode the level's output ``y`` into frame coordinates, record."""
        per = self._decoder(y, self.pre.sizes(frame), self.pre.geometry, level)  # the rung's own thresholds
        lat = (time.perf_counter() - t0) * 1000.0
        confs = [detection_confidence(d[1]) for d in per]
        with self._lock:
            self._lat.append(lat)
            self._conf = conf = min(confs)
            if self.content is not None:
                self.content.result_detections(max(len(d[1]) for d in per), conf, level)
            n = sum(len(d[1]) for d in per)
            mean = float(sum(float(d[1].sum()) for d in per) / n) if n else None
            self.telemetry.record(self.clock(), level, lat, reason, readings, len(per), ("det", n, mean))
        out = [Detections(b, s, lb, names, level, lat, reason) for b, s, lb, names in per]
        return out if batched else out[0]

    def _fault(self, kind: str, msg: str, *args: Any) -> None:
        self.telemetry.fault(kind)
        self._once(kind, msg, *args)

    def _apply_dvfs(self, frequency: float | None, now: float) -> float | None:
        try:
            return self.dvfs.apply(frequency, now)
        except Exception as e:  # noqa: BLE001 - an actuator must never take the loop down
            self._fault(f"dvfs:{type(e).__name__}", "DVFS actuator failed (%s: %s); frequency unchanged",
                        type(e).__name__, e)
            return self.frequency

    def _safe_view(self) -> int:
        try:
            return self.view.clamp(self.policy.safe_index(self.view))
        except Exception:  # noqa: BLE001 - even safe_index may be broken
            return 0

    def _safe(self) -> int:
        return self.view.parent_index(self._safe_view())

    def _decide(self, x: np.ndarray) -> tuple[int, str, Any]:
        """Under the lock: the level to run, its reason and the readings it was based on.  The policy's
        decision is reused within a policy tick while the sensor snapshot is the same object."""
        now = self.clock()
        try:
            readings = self._sensors.latest()
        except Exception as e:  # noqa: BLE001 - a sensor must never take the loop down
            self._fault(f"sensor:{type(e).__name__}", "sensors failed (%s: %s); policy %s falls back to its "
                        "safe level", type(e).__name__, e, self.policy.name)
            readings = None
        if readings is None:
            level, reason = self._safe(), "fault:sensor"
        elif readings is self._decided_on and now - self._decided_at < self._tick:
            level, reason = self._policy_level, self._policy_reason
        else:
            level, reason = self._ask_policy(readings, now)
            self._decided_on, self._decided_at = readings, now
        self._policy_level, self._policy_reason = level, reason
        if self.content is not None:
            demand = self.content.observe(x)
            if demand < level:
                reason = f"{self.content.why} (policy cap {level}: {reason})"
                level = demand
        self._level = level
        return level, reason, readings

    def _ask_policy(self, readings: Any, now: float) -> tuple[int, str]:
        view = self.view  # the policy decides in view indices; mapped to the engine's ladder below
        c, k = self.content, getattr(self, "frame_interval", 1)  # frame interval: set here, honoured by stream()
        stats = RuntimeStats(now, self._to_view[self._policy_level], tuple(self._lat), self._conf,
                             self.deadline_ms, self.frequency, getattr(self, "source_fps", None),
                             None if c is None else bool(c.empty or c.demand <= c.min_level), k)
        self.frame_interval = 1
        try:
            d = self.policy.decide(readings, stats, view)
            level, reason = d.level, d.reason
            self.frame_interval = max(1, int(getattr(d, "frame_interval", 1)))
            self.frequency = d.frequency if self.dvfs is None else self._apply_dvfs(d.frequency, now)
        except Exception as e:  # noqa: BLE001 - a policy must never take the loop down
            self._fault(f"policy:{type(e).__name__}", "policy %s raised %s: %s -> safe level",
                        self.policy.name, type(e).__name__, e)
            level, reason = self._safe_view(), f"fault:policy:{type(e).__name__}"
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
            self._fault("policy:level-type", "policy %s returned level %r (not an int) -> safe level",
                        self.policy.name, level)
            level, reason = self._safe_view(), "fault:policy:level"
        elif not 0 <= level < len(view):
            self._fault("policy:level-range", "policy %s returned level %d outside 0..%d -> clamped",
                        self.policy.name, level, len(view) - 1)
            level, reason = view.clamp(level), f"fault:policy:level {reason}"
        return view.parent_index(int(level)), reason

    # the ladder the policy sees ------------------------------------------------------------------------------
    def _set_view(self, view: LevelLadder) -> None:
        """Make ``view`` (a view of ``self.ladder``) what the policy sees; ``_to_view[p]`` is the view index
        of engine level ``p`` (:meth:`LevelLadder.view_index`)."""
        self._to_view = tuple(view.view_index(p) for p in range(len(self.ladder)))
        self.view = view

    @property
    def view_level(self) -> int:
        """The policy's last choice as an index of :attr:`view` (``policy_level`` is the same rung in
        :attr:`ladder` indices)."""
        return self._to_view[self._policy_level]

    def calibrate(self, *, force: bool = False, batches: tuple[int, ...] = (1,), cache: Any = None,
                  rounds: int | None = None) -> LevelLadder:
        """Measure this device's latency of every level on this runner's engine (seconds), cache it per
        device, and hand the policy the view built from it; returns that view.

        ``batches``: batch sizes measured (1 is always included: the view is batch 1).  The cache
        (:class:`adaptive_csp.runtime.calibrate.LatencyCache`, under ``cache`` or the engines' cache root)
        answers instead of measuring when it has every level and ``force`` is False; a corrupt cache file
        is rebuilt.  The model and ``self.ladder`` are left alone; only :attr:`view` changes."""
        from adaptive_csp.runtime.calibrate import calibrate_ladder

        measured = calibrate_ladder(self.engine, (1, *batches), force=force, cache=cache, rounds=rounds)
        view = measured.view(self.engine.name, 1)
        with self._lock:
            self._set_view(view)
        return view

    # video -------------------------------------------------------------------------------------------------
    def stream(self, source: Any, **kw: Any) -> Iterator[Prediction | Detections]:
        """Predictions (a detector: Detections) for every frame of ``source`` (see :func:`adaptive_csp.runtime.stream.stream`)."""
        from adaptive_csp.runtime.stream import stream

        return stream(self, source, **kw)

    # state and telemetry -------------------------------------------------------------------------------------
    @property
    def level(self) -> int:
        return self._level

    @property
    def policy_level(self) -> int:
        """The policy's last choice (the resource cap; ``level`` is lower when content demand lowered it)."""
        return self._policy_level

    @property
    def sensors(self) -> Any:
        return self._sensors

    def readings(self) -> Readings | None:
        try:
            return self._sensors.latest()
        except Exception:  # noqa: BLE001
            return None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            s = self.telemetry.stats()
        s["policy"] = self.policy.name
        s["levels"] = len(self.ladder)
        s["view"] = self.view.view_key
        s["view_levels"] = list(self.view.parent_indices)
        s["engine"] = self.engine.name
        if self.content is not None:
            s["content_demand"] = self.content.demand
        if self._poller is not None:
            s["sensors"] = self._poller.status()
        if self.telemetry.sink is not None:
            s["telemetry_file"] = self.telemetry.sink.status()
        return s

    def add_skipped(self, n: int) -> None:
        with self._lock:
            self.telemetry.skipped += int(n)

    def export_jsonl(self, path: str | Path) -> Path:
        with self._lock:
            return self.telemetry.export_jsonl(path)

    def export_csv(self, path: str | Path) -> Path:
        with self._lock:
            return self.telemetry.export_csv(path)

    # lifecycle -----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop and join the sensor poller the runner started and close the engine it made (an Engine you
        passed stays open); later ``infer`` calls raise RuntimeError."""
        self._closed = True
        if self.telemetry.sink is not None:
            self.telemetry.sink.close()
        if self._owns_engine:
            self.engine.close()
        if self._owns_poller and self._poller is not None:
            self._poller.close()
        if self.dvfs is not None:
            try:
                self.dvfs.close()
            except Exception as e:  # noqa: BLE001
                self._once("dvfs:close", "DVFS actuator close failed: %s", e)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> AdaptiveRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"AdaptiveRunner(policy={self.policy.name!r}, engine={self.engine.name!r}, "
                f"levels={len(self.ladder)}, level={self._level}, "
                f"deadline_ms={self.deadline_ms}, closed={self._closed})")
