"""AdaptiveRunner: the drop-in wrapper for a camera loop.

>>> runner = AdaptiveRunner(pretrained(), policy="battery")      # doctest: +SKIP
>>> pred = runner.infer(frame)          # a BGR frame from cv2, any size   # doctest: +SKIP

A detector (``model.meta["task"] == "detect"``) gives :class:`~adaptive_csp.runtime.results.Detections`
instead of a Prediction: boxes in the frame's own pixel coordinates, scores, labels and class names, with
the level, latency and reason.

The runner wires the stages a frame travels through, one module each, and holds nothing else:

1. sources (:mod:`.sources`, :mod:`.stream`): where frames come from;
2. preprocess (:mod:`.preprocess`): the model input, with each frame's geometry when the head needs it;
3. decide (:mod:`.decide`): the level, from the policy, the sensor poller's cached snapshot and content
   demand, under the runner's lock;
4. engine (:mod:`adaptive_csp.engines`: torch, ONNX Runtime, CUDA graphs): that level runs *outside* the lock;
5. head (:mod:`.heads`): ``ClassifyHead`` (softmax, top-1) or ``DetectHead`` (thresholds, NMS, boxes
   into the frame), one interface;
6. results (:mod:`.results`): ``Prediction`` / ``Detections``, with the call's stage stamps (``speed``);
7. telemetry (:mod:`.telemetry`): one record per call, under the lock.

``infer`` is the same path for both tasks.  On ONNX Runtime a numpy uint8 frame takes the frame path:
resize only (:meth:`Preprocessor.small`), then the level's frame graph does the arithmetic (and a
classifier's softmax; :meth:`~adaptive_csp.engines.ort_engine.OrtEngine.frame_fns`); float and tensor
frames, lists, and runners with content demand take the float path (content demand reads the normalised
input).  The measured latency reaches the policy through ``RuntimeStats.latencies_ms`` at its next decision.

What the runner does to what you pass it (nothing silent):

* the model is never moved, cast, put in eval mode or trained: engines read it.  The torch engine runs
  each level's prepared module (``model.prepared(i)``, built from the weights on their device and dtype;
  ``prepare=True`` builds them all up front, filling the model's prepared cache — the only change);
  the ONNX Runtime and CUDA engines build their own copies.  After changing the weights, call
  ``runner.engine.refresh()``.  A plain (non-elastic) module runs as given: call ``.eval()`` yourself.
* colour order: numpy frames are read in ``color`` order (default ``"bgr"``, as OpenCV gives them);
  torch tensors in ``tensor_color`` order (default ``"rgb"``, torchvision's convention).

The ladder the policy sees: ``runner.view`` is the engine's ladder as it runs on this engine at batch 1
(a camera frame), ``self.ladder.view(engine, 1)`` (:meth:`adaptive_csp.levels.LevelLadder.view`).  The
policy decides in view indices; ``Prediction.level``, ``runner.level``, ``runner.policy_level`` and
telemetry report *engine ladder* indices (``model.levels``, what ran); ``runner.view_level`` is the
policy's choice in view indices.  ``runner.calibrate()`` measures this device's latencies on the runner's
engine (cached per device) and swaps in the view built from them.  A detector naming its boxes with
its file's namer starts from the view plus that namer's time per rung as profiled
(``meta["namer"]["latency_ms"]``); ``calibrate()`` measures it here instead.

Faults: a bad frame raises ValueError naming the problem and changes nothing; a policy that raises or
returns a bad level, or a sensor object that raises, never escapes ``infer``: the call runs at the
policy's safe level (or the clamped level) with reason ``fault:...``, logged once per kind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptive_csp.control.presets import DEFAULT_POLICY, create_policy
from adaptive_csp.engines.base import Engine
from adaptive_csp.engines.select import create_engine
from adaptive_csp.levels import LevelLadder
from adaptive_csp.runtime.bundle import Bundle, is_bundle, load_bundle
from adaptive_csp.runtime.decide import DecideOptions, Decider
from adaptive_csp.runtime.heads import DetectOptions, Head, make_head
from adaptive_csp.runtime.preprocess import PreprocessOptions, Preprocessor
from adaptive_csp.runtime.results import Detections, Prediction
from adaptive_csp.runtime.telemetry import Telemetry, TelemetryOptions
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.util.log import OnceLogger
from adaptive_csp.util.tensors import is_module, loaded_torch

if TYPE_CHECKING:  # a bundle runs without torch: this module never imports it (adaptive_csp.util.tensors)
    import numpy as np
    import torch

__all__ = ["AdaptiveRunner", "Prediction", "Detections", "runner_options"]

log = logging.getLogger("adaptive_csp.runtime")
_now = time.perf_counter

#: the flat constructor keywords, each an options object's field: (``AdaptiveRunner`` keyword, field)
FLAT_KEYWORDS: dict[str, tuple[str, str]] = {
    **{k: ("preprocess", k) for k in ("color", "tensor_color", "backend", "resize", "pad", "roi")},
    **{k: ("decide", k) for k in ("content", "policy_tick_ms", "latency_window", "sensor_rate_hz", "clock",
                                  "dvfs")},
    **{k: ("detect", k) for k in ("score_thresh", "iou_thresh", "max_det", "multi_label", "namer")},
    "telemetry_size": ("telemetry", "size"),
}


def runner_options(preprocess: Any = None, decide: DecideOptions | None = None, detect: DetectOptions | None = None,
                   telemetry: Any = None, deadline_ms: float | None = None, **flat: Any
                   ) -> tuple[PreprocessOptions, DecideOptions, DetectOptions, TelemetryOptions]:
    """The options objects of an ``AdaptiveRunner(...)`` call: each given object (or the defaults; a dict as
    ``preprocess`` is the spec keys, a path or TelemetryFile as ``telemetry`` the file) with the flat keywords
    (:data:`FLAT_KEYWORDS`) and a positional ``deadline_ms`` over it; validated.  TypeError for an unknown
    keyword, as Python gives for a signature."""
    for k in flat:
        if k not in FLAT_KEYWORDS:
            raise TypeError(f"AdaptiveRunner.__init__() got an unexpected keyword argument {k!r}")
    over: dict[str, dict[str, Any]] = {"preprocess": {}, "decide": {}, "detect": {}, "telemetry": {}}
    for k, v in flat.items():
        group, field = FLAT_KEYWORDS[k]
        over[group][field] = v
    if deadline_ms is not None:
        over["decide"]["deadline_ms"] = deadline_ms
    pre = preprocess if isinstance(preprocess, PreprocessOptions) else PreprocessOptions(spec=preprocess)
    tel = telemetry if isinstance(telemetry, TelemetryOptions) else TelemetryOptions(file=telemetry)
    return (replace(pre, **over["preprocess"]), replace(decide or DecideOptions(), **over["decide"]),
            replace(detect or DetectOptions(), **over["detect"]), replace(tel, **over["telemetry"]))


def _device(model: Any, device: Any) -> Any:
    """Where the engine runs: ``device`` (a torch.device when torch is loaded), else where a torch model's
    weights are, else ``"cpu"`` (a bundle)."""
    t = loaded_torch()
    if device is not None:
        return t.device(device) if t is not None else str(device)
    if is_module(model):
        from adaptive_csp.models.static import model_device_dtype

        return model_device_dtype(model)[0]
    return t.device("cpu") if t is not None else "cpu"


def _load(model: Any, spec: dict | None, engine: Any, device: Any, engine_options: dict | None) -> Any:
    """What runs for ``model``: the shipped model for None / "default", a bundle (no torch) for a bundle
    folder, else a module or a measured ladder of models (:mod:`adaptive_csp.runtime.model_source`)."""
    if model is None or (isinstance(model, str) and model == "default"):
        from adaptive_csp.models.pretrained import pretrained
        model = pretrained()
    if is_bundle(model):  # a folder written by export_bundle: onnxruntime and numpy only, never torch
        model = load_bundle(model)
    if not isinstance(model, Bundle):
        from adaptive_csp.runtime.model_source import resolve_model
        model = resolve_model(model, preprocess=spec, engine=engine, device=device, engine_options=engine_options)
    return model


def _decider_attr(name: str, doc: str, settable: bool = False) -> property:
    """A runner attribute that is the decide stage's (``runner.decider.<name>``)."""
    def get(self: AdaptiveRunner) -> Any:
        return getattr(self.decider, name)

    def put(self: AdaptiveRunner, value: Any) -> None:
        setattr(self.decider, name, value)

    return property(get, put if settable else None, doc=doc)


class AdaptiveRunner:
    """Wrap an elastic model for a camera loop (see the module docstring).

    model: an ElasticNet, a module with ``levels`` (a LevelLadder), ``meta`` and ``prepared(i)`` or
        ``forward(x, level)``, or a plain module (one level); a ladder of separate models — a
        :class:`~adaptive_csp.models.ladder.ModelLadder`, a list of torch modules / ONNX files (cheapest →
        full) or a folder with ``ladder.json`` — measured on the engine first when it has no latency there
        (:mod:`adaptive_csp.runtime.model_source`); None or "default" loads the shipped model; a bundle
        folder (or :class:`~adaptive_csp.runtime.bundle.Bundle`) runs on onnxruntime without torch.
    policy: anything ``create_policy`` takes (None: a bundle's ``policy.toml``, else ``DEFAULT_POLICY``, the
        ``balanced`` preset); a Policy object is used as is, state included.
    sensors: "auto" / "psutil" / ... or a source (``read()``): polled on a thread the runner owns;
        an object with ``latest()`` (a SensorPoller you started, a simulator): used as is, never closed;
        None / "none": no sensors.
    deadline_ms: the per-frame deadline given to the policy (latency governor) and to ``stream(skip=True)``.
    device: where the engine runs (None: where the model is).  The model is never moved: the torch
        engine refuses another device; the cuda engine copies each level onto it.
    engine: "auto" (default: ONNX Runtime on a CPU when installed, CUDA graphs on a GPU — see
        :func:`adaptive_csp.engines.choose_engine`), "torch", "onnxruntime", "cuda", or an
        :class:`adaptive_csp.engines.Engine`; ``engine_options`` go to it (``threads``, ``cache``,
        ``calib``, ``dtype``, ``graphs``, ...); ``prepare``: build every level up front.

    Each stage's settings are an options object, and each of their fields is also a flat keyword of the
    same meaning (:data:`FLAT_KEYWORDS`; a flat keyword overrides the object's field):

    preprocess: a :class:`~adaptive_csp.runtime.preprocess.PreprocessOptions` or a dict of spec keys merged
        over the model's ``meta["preprocess"]`` (e.g. ``{"resize": "letterbox"}``); flat: ``color``,
        ``tensor_color``, ``backend`` (the resize backend, not the engine), ``resize`` ("stretch" /
        "letterbox" / "center_crop"; :mod:`adaptive_csp.runtime.resize`), ``pad``, ``roi`` ``(x, y, w, h)``.
    decide: a :class:`~adaptive_csp.runtime.decide.DecideOptions`; flat: ``content`` (True or a
        :class:`ContentDemand`: content-aware demand), ``policy_tick_ms``, ``latency_window``,
        ``sensor_rate_hz``, ``clock``, ``dvfs`` (an :class:`adaptive_csp.power.DVFSActuator`).
    detect: a :class:`~adaptive_csp.runtime.heads.DetectOptions`; flat: ``score_thresh``, ``iou_thresh``,
        ``max_det``, ``multi_label`` (a detector's post-processing; validated always), ``namer`` (the
        second stage naming the boxes, :mod:`adaptive_csp.runtime.namer`: "auto" — the file's; None — off).
    telemetry: a :class:`~adaptive_csp.runtime.telemetry.TelemetryOptions`, or a path / TelemetryFile
        (every record also appended there as JSONL); flat: ``telemetry_size`` (records kept in memory).
    """

    def __init__(self, model: Any = None, policy: Any = None, sensors: Any = "auto",
                 deadline_ms: float | None = None, device: str | torch.device | None = None, *,
                 engine: str | Engine = "auto", engine_options: dict | None = None, prepare: bool = True,
                 preprocess: dict | PreprocessOptions | None = None, decide: DecideOptions | None = None,
                 detect: DetectOptions | None = None, telemetry: Any = None, **options: Any):
        pre_o, dec_o, det_o, tel_o = runner_options(preprocess, decide, detect, telemetry, deadline_ms, **options)
        self.model = model = _load(model, pre_o.spec, engine, device, engine_options)
        self.meta: dict = dict(getattr(model, "meta", None) or {})
        self.pre: Preprocessor = pre_o.build(self.meta)
        self._start_engine(model, engine, device, engine_options, prepare)
        names = self.meta.get("class_names")
        self.class_names: list[str] | None = [str(n) for n in names] if names else None
        self.task = str(self.meta.get("task", "classify"))
        from adaptive_csp.runtime.namer import resolve_namer

        self.namer, self._owns_namer = resolve_namer(det_o.namer, self.meta, self.engine, device, engine_options)
        self.head: Head = make_head(self.meta, self.class_names, self.ladder, det_o, self.namer, self.pre.mean,
                                    self.pre.std)
        self.pre.with_geometry = self.head.needs_geometry
        if policy is None:  # a bundle's own default policy, else the package's
            policy = getattr(model, "policy_file", None) or DEFAULT_POLICY
        policy = create_policy(policy)
        self.clock = dec_o.clock
        self.telemetry: Telemetry = tel_o.build(self.class_names)
        self._lock = threading.Lock()
        self._once = OnceLogger(log)
        self.decider = Decider(policy, self.ladder, self._initial_view(det_o.namer), dec_o,
                               [float(s) for s in self.pre.std], self.telemetry.fault, self._once)
        if self._frames and (self.decider.content is not None or not self.engine.frames_supported()):
            self._frames = False  # content demand reads the normalised input; no onnx package to wrap with
        self._closed = False
        self._prepare, self._decide, self._run = self.pre.prepare, self.decider.decide, self.engine.run
        self._decode, self._results, self._done = self.head.decode, self.head.results, self.decider.done
        self._record = self.telemetry.record
        self.decider.start_sensors(sensors, dec_o.sensor_rate_hz)  # last: a failure above leaves no thread

    def _start_engine(self, model: Any, engine: str | Engine, device: Any, engine_options: dict | None,
                      prepare: bool) -> None:
        self.engine: Engine = create_engine(model, engine, device, **(engine_options or {}))
        self._owns_engine = not isinstance(engine, Engine)
        self.elastic = self.engine.elastic
        self.ladder: LevelLadder = self.engine.ladder
        self.device = _device(model, device)
        # the frame path: a numpy uint8 frame goes resize -> one graph that does the arithmetic (.frame_graph)
        self._frames = callable(getattr(self.engine, "frame_fns", None))
        self._frame_fns: tuple[Any, list] = (None, [])  # ((kind, engine generation), every level's frame fn)
        if prepare and self.elastic:
            self.engine.prepare()  # before any thread starts: a failing export leaves nothing running

    def _initial_view(self, namer_option: Any) -> LevelLadder:
        """The view the policy starts from: the engine's ladder at batch 1, plus, when the runner names boxes
        with the file's own namer, the time that namer took per rung where the file was profiled
        (``meta["namer"]["latency_ms"]``, written by ``profile-detector``); :meth:`calibrate` replaces
        both with this device's measurements."""
        view = self.ladder.view(self.engine.name, 1)
        spec = self.meta.get("namer")
        naming = spec.get("latency_ms") if isinstance(spec, dict) else None
        ms = naming.get("ms") if isinstance(naming, dict) else None
        if self.namer is None or namer_option != "auto" or not isinstance(ms, list):
            return view
        if len(ms) != len(self.ladder):
            self._once("namer-ms", "meta['namer']['latency_ms'] has %d rungs, the ladder %d: "
                               "the policy sees the detector's time alone until calibrate()", len(ms), len(self.ladder))
            return view
        try:
            return view.with_added_ms([float(ms[i]) for i in view.parent_indices])
        except (TypeError, ValueError) as e:
            self._once("namer-ms", "meta['namer']['latency_ms'] is unusable (%s): the policy sees the "
                               "detector's time alone until calibrate()", e)
            return view

    # the hot path -------------------------------------------------------------------------------------------
    def infer(self, frame: Any) -> Prediction | list[Prediction] | Detections | list[Detections]:
        """One frame → a Prediction (a detector: Detections); a batch (list, N×… array or tensor) → a list."""
        if self._closed:
            raise RuntimeError("this AdaptiveRunner is closed")
        t0 = _now()
        try:
            x, batched, on_frame_path, geometry = self._prepare(frame, self._frames)
        except ValueError as e:
            self._bad_frame(e)
            raise
        t1 = _now()
        with self._lock:
            level, reason, readings = self._decide(x)
        t2 = _now()
        y = self._frame_fn(x)[level](x) if on_frame_path else self._run(x, level)
        t3 = _now()
        payload, batch, conf, count, summary = self._decode(y, geometry, level, on_frame_path, x)
        t4 = _now()
        lat = (t4 - t0) * 1000.0
        times = (t0, t1, t2, t3, t4)
        with self._lock:
            self._done(lat, conf, count, level)
            self._record(self.clock(), level, lat, reason, readings, batch, summary, times)
        return self._results(payload, batched, level, lat, reason, times)

    __call__ = infer

    def _bad_frame(self, e: ValueError) -> None:
        with self._lock:
            self.telemetry.bad_frames += 1
        self._once(f"bad_frame:{str(e)[:40]}", "bad frame rejected: %s", e, level=logging.INFO)

    def _frame_fn(self, x: np.ndarray) -> list:
        """Every level's frame-graph function for frames of ``x``'s kind (channels, dtype): the engine builds
        them on the first such frame; the list is kept until the kind or the engine (``refresh``) changes."""
        kind, fns = self._frame_fns
        now = (x.shape[-1], x.dtype.char, self.engine.generation)
        if kind != now:
            fns = self.engine.frame_fns(x, self.pre.color)
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
            self.decider.note_latency(ms)

    # the ladder the policy sees ------------------------------------------------------------------------------
    view = _decider_attr("view", "The ladder the policy decides on (module docstring).")
    view_level = _decider_attr("view_level", "The policy's last choice as an index of :attr:`view` "
                               "(``policy_level`` is the same rung in :attr:`ladder` indices).")

    def calibrate(self, *, force: bool = False, batches: tuple[int, ...] = (1,), cache: Any = None,
                  rounds: int | None = None) -> LevelLadder:
        """Measure this device's latency of every level on this runner's engine (seconds), cache it per
        device, and hand the policy the view built from it; returns that view.  A detector's namer is
        measured too (:meth:`CropNamer.latency_ms`, 3 boxes, not cached) and its time added to each rung.

        ``batches``: batch sizes measured (1 is always included: the view is batch 1).  The cache
        (:class:`adaptive_csp.runtime.calibrate.LatencyCache`, under ``cache`` or the engines' cache root)
        answers instead of measuring when it has every level and ``force`` is False; a corrupt cache file
        is rebuilt.  The model and ``self.ladder`` are left alone; only :attr:`view` changes."""
        from adaptive_csp.runtime.calibrate import calibrate_ladder

        measured = calibrate_ladder(self.engine, (1, *batches), force=force, cache=cache, rounds=rounds)
        view = measured.view(self.engine.name, 1)
        if self.namer is not None:  # the second stage's time per rung, at its typical 3 boxes
            naming = self.namer.latency_ms((self.pre.h, self.pre.w), boxes=3)
            view = view.with_added_ms([naming[i] for i in view.parent_indices])
        with self._lock:
            self.decider.set_view(view)
        return view

    # video -------------------------------------------------------------------------------------------------
    def stream(self, source: Any, **kw: Any) -> Iterator[Prediction | Detections]:
        """Predictions (a detector: Detections) for every frame of ``source`` (see :func:`adaptive_csp.runtime.stream.stream`)."""
        from adaptive_csp.runtime.stream import stream

        return stream(self, source, **kw)

    # state and telemetry: the decide stage's, read through the runner ----------------------------------------
    policy = _decider_attr("policy", "The Policy object deciding.")
    content = _decider_attr("content", "The ContentDemand when content-aware demand is on, else None.")
    dvfs = _decider_attr("dvfs", "The DVFS actuator applying the policy's frequency requests, or None.")
    deadline_ms = _decider_attr("deadline_ms", "The per-frame deadline given to the policy and to stream().")
    frequency = _decider_attr("frequency", "The frequency in force (applied by ``dvfs``) or last requested.")
    frame_interval = _decider_attr("frame_interval", "The policy's frame interval (1 = every frame), honoured "
                                   "by :meth:`stream`.")
    source_fps = _decider_attr("source_fps", "The source's frame rate the policy sees (set by :meth:`stream`, "
                               "or by a caller that knows it).", settable=True)
    level = _decider_attr("level", "The engine-ladder index that ran last.")
    policy_level = _decider_attr("policy_level", "The policy's last choice (the resource cap; ``level`` is "
                                 "lower when content demand lowered it).")
    sensors = _decider_attr("sensors", "What the decisions read the sensor snapshot from (``latest()``).")

    def readings(self) -> Readings | None:
        return self.decider.readings()

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
        if self.decider.poller is not None:
            s["sensors"] = self.decider.poller.status()
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
        if self._owns_namer:
            self.namer.close()
        self.decider.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> AdaptiveRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"AdaptiveRunner(policy={self.policy.name!r}, engine={self.engine.name!r}, "
                f"levels={len(self.ladder)}, level={self.level}, "
                f"deadline_ms={self.deadline_ms}, closed={self._closed})")
