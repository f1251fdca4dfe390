"""Decide: the level a runner call runs, between preprocess and the engine.

:meth:`Decider.decide` (called under the runner's lock, never touching a sensor) reads the sensor poller's
cached snapshot, asks the policy at most once per policy tick (``policy_tick_ms``, and at once when a new
snapshot arrives; within a tick the last decision is reused), lowers the policy's cap by content-aware
demand when that is on (:mod:`.content`), and hands the engine a ladder index.  :meth:`Decider.done`
feeds the call's latency and confidence back (the policy reads them through ``RuntimeStats`` at its next
decision; content demand sees the result).

The ladder the policy sees: :attr:`Decider.view` is the engine's ladder as it runs on that engine at batch
1 (:meth:`adaptive_csp.levels.LevelLadder.view`).  The policy decides in view indices; the decider maps its
choice to the engine's ladder (``view.parent_index``) and reports engine-ladder indices everywhere else.

Faults never escape: a sensor object that raises, a policy that raises or returns a bad level, and a DVFS
actuator that fails each count in telemetry, are logged once per kind, and the call runs at the policy's
safe level (or the clamped level) with reason ``fault:...``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptive_csp.control.policy import Policy, RuntimeStats
from adaptive_csp.levels import LevelLadder
from adaptive_csp.runtime.content import ContentDemand
from adaptive_csp.sensors.poller import SensorPoller
from adaptive_csp.sensors.readings import Readings

__all__ = ["DecideOptions", "Decider"]


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


@dataclass(frozen=True)
class DecideOptions:
    """How the runner decides (``AdaptiveRunner(decide=DecideOptions(...))``, or the flat keywords and the
    positional ``deadline_ms`` of the same names).

    deadline_ms: the per-frame deadline given to the policy (latency governor) and to ``stream(skip=True)``
        (None: none; else > 0).
    policy_tick_ms: the policy decides at most once per tick (default 10 ms: every frame of a camera up to
        100 fps), and at once when a new sensor snapshot arrives; 0 decides on every call.  Content demand,
        when on, still looks at every frame.
    latency_window: how many recent latencies the policy sees.
    content: True or a :class:`ContentDemand` turns on content-aware demand.
    dvfs: an :class:`adaptive_csp.power.DVFSActuator` that applies the policy's frequency requests
        (``Decision.frequency``); its failures are faults like a sensor's, never exceptions.
    sensor_rate_hz: how often a poller the runner starts reads its source.
    clock: the time the policy, the sensors and telemetry see (seconds, monotonic).
    """

    deadline_ms: float | None = None
    policy_tick_ms: float = 10.0
    latency_window: int = 120
    content: bool | ContentDemand = False
    dvfs: Any = None
    sensor_rate_hz: float = 2.0
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.deadline_ms is not None and not self.deadline_ms > 0:
            raise ValueError(f"deadline_ms must be > 0, got {self.deadline_ms!r}")
        if not self.policy_tick_ms >= 0:
            raise ValueError(f"policy_tick_ms must be >= 0, got {self.policy_tick_ms!r}")


class Decider:
    """The decide stage of one runner (module docstring).  ``fault(kind)`` counts a fault (the runner's
    telemetry); ``once`` logs once per kind.  The caller holds its lock around :meth:`decide`,
    :meth:`done` and :meth:`set_view`."""

    def __init__(self, policy: Policy, ladder: LevelLadder, view: LevelLadder, options: DecideOptions,
                 std: list[float], fault: Callable[[str], None], once: Callable[..., None]):
        self.policy = policy
        self.ladder = ladder
        self.deadline_ms = float(options.deadline_ms) if options.deadline_ms is not None else None
        self.clock = options.clock
        self.dvfs = options.dvfs
        self.content: ContentDemand | None = None
        if options.content:
            c = options.content
            self.content = (c if isinstance(c, ContentDemand) else ContentDemand()).bind(ladder.full, std)
        self._count_fault, self._once = fault, once
        self.latencies: deque[float] = deque(maxlen=int(options.latency_window))
        self.set_view(view)
        self.policy_level = ladder.full  # what the policy chose last (its own state)
        self.policy_reason = ""
        self.level = ladder.full  # what ran last
        self.confidence: float | None = None
        self._tick = float(options.policy_tick_ms) / 1000.0
        self._decided_at = -math.inf  # clock time of the last policy decision
        self._decided_on: Any = None  # the readings snapshot it was based on
        self.frequency: float | None = None  # the frequency in force (applied by ``dvfs``) or last requested
        self.frame_interval = 1  # the policy's frame interval, honoured by stream()
        self.source_fps: float | None = None  # the source's frame rate, set by stream()
        self.sensors: Any = None
        self.poller: SensorPoller | None = None

    def start_sensors(self, sensors: Any, rate_hz: float) -> None:
        """"auto" / "psutil" / ... or a source (``read()``): polled on a thread the decider owns
        (:meth:`close` stops it); an object with ``latest()``: used as is, never closed; None / "none": no
        sensors.  Last in a runner's construction: a failure before it leaves no thread running."""
        if sensors is None or (isinstance(sensors, str) and sensors == "none"):
            self.sensors = _NoSensors(self.clock)
        elif callable(getattr(sensors, "latest", None)):
            self.sensors = sensors
        else:
            self.poller = SensorPoller(sensors, rate_hz=rate_hz, clock=self.clock)
            self.sensors = self.poller.start(wait=1.0)

    # under the runner's lock ---------------------------------------------------------------------------------
    def decide(self, x: np.ndarray) -> tuple[int, str, Any]:
        """The level to run, its reason and the readings it was based on.  The policy's decision is reused
        within a policy tick while the sensor snapshot is the same object."""
        now = self.clock()
        try:
            readings = self.sensors.latest()
        except Exception as e:  # noqa: BLE001 - a sensor must never take the loop down
            self.fault(f"sensor:{type(e).__name__}", "sensors failed (%s: %s); policy %s falls back to its "
                       "safe level", type(e).__name__, e, self.policy.name)
            readings = None
        if readings is None:
            level, reason = self.safe(), "fault:sensor"
        elif readings is self._decided_on and now - self._decided_at < self._tick:
            level, reason = self.policy_level, self.policy_reason
        else:
            level, reason = self.ask_policy(readings, now)
            self._decided_on, self._decided_at = readings, now
        self.policy_level, self.policy_reason = level, reason
        if self.content is not None:
            demand = self.content.observe(x)
            if demand < level:
                reason = f"{self.content.why} (policy cap {level}: {reason})"
                level = demand
        self.level = level
        return level, reason, readings

    def done(self, latency_ms: float, confidence: float, count: int | None, level: int) -> None:
        """Feedback after a call at ``level``: its latency and confidence for the policy, and the result for
        content demand (``count``: a detector's most detections in one frame; None for a classifier)."""
        self.latencies.append(latency_ms)
        self.confidence = confidence
        if self.content is not None:
            if count is None:
                self.content.result(confidence, level)
            else:
                self.content.result_detections(count, confidence, level)

    def ask_policy(self, readings: Any, now: float) -> tuple[int, str]:
        """The policy's level (an engine-ladder index) and reason for ``readings``; faults go to the safe level."""
        view = self.view  # the policy decides in view indices; mapped to the engine's ladder below
        c = self.content
        stats = RuntimeStats(now, self._to_view[self.policy_level], tuple(self.latencies), self.confidence,
                             self.deadline_ms, self.frequency, self.source_fps,
                             None if c is None else bool(c.empty or c.demand <= c.min_level), self.frame_interval)
        self.frame_interval = 1
        try:
            d = self.policy.decide(readings, stats, view)
            level, reason = d.level, d.reason
            self.frame_interval = max(1, int(getattr(d, "frame_interval", 1)))
            self.frequency = d.frequency if self.dvfs is None else self._apply_dvfs(d.frequency, now)
        except Exception as e:  # noqa: BLE001 - a policy must never take the loop down
            self.fault(f"policy:{type(e).__name__}", "policy %s raised %s: %s -> safe level",
                       self.policy.name, type(e).__name__, e)
            level, reason = self.safe_view(), f"fault:policy:{type(e).__name__}"
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
            self.fault("policy:level-type", "policy %s returned level %r (not an int) -> safe level",
                       self.policy.name, level)
            level, reason = self.safe_view(), "fault:policy:level"
        elif not 0 <= level < len(view):
            self.fault("policy:level-range", "policy %s returned level %d outside 0..%d -> clamped",
                       self.policy.name, level, len(view) - 1)
            level, reason = view.clamp(level), f"fault:policy:level {reason}"
        return view.parent_index(int(level)), reason

    def set_view(self, view: LevelLadder) -> None:
        """Make ``view`` (a view of the engine's ladder) what the policy sees; ``_to_view[p]`` is the view
        index of engine level ``p`` (:meth:`LevelLadder.view_index`)."""
        self._to_view = tuple(view.view_index(p) for p in range(len(self.ladder)))
        self.view = view

    def note_latency(self, ms: float) -> None:
        """Replace the newest latency in the window the policy reads with ``ms``."""
        if self.latencies:
            self.latencies[-1] = ms

    @property
    def view_level(self) -> int:
        """The policy's last choice as an index of :attr:`view`."""
        return self._to_view[self.policy_level]

    # faults and fallbacks ------------------------------------------------------------------------------------
    def fault(self, kind: str, msg: str, *args: Any) -> None:
        self._count_fault(kind)
        self._once(kind, msg, *args)

    def _apply_dvfs(self, frequency: float | None, now: float) -> float | None:
        try:
            return self.dvfs.apply(frequency, now)
        except Exception as e:  # noqa: BLE001 - an actuator must never take the loop down
            self.fault(f"dvfs:{type(e).__name__}", "DVFS actuator failed (%s: %s); frequency unchanged",
                       type(e).__name__, e)
            return self.frequency

    def safe_view(self) -> int:
        """The policy's safe level as a view index (0 when even ``safe_index`` is broken)."""
        try:
            return self.view.clamp(self.policy.safe_index(self.view))
        except Exception:  # noqa: BLE001 - even safe_index may be broken
            return 0

    def safe(self) -> int:
        """The policy's safe level as an engine-ladder index."""
        return self.view.parent_index(self.safe_view())

    # outside the hot path -------------------------------------------------------------------------------------
    def readings(self) -> Readings | None:
        """The latest snapshot, None when the sensors fail."""
        try:
            return self.sensors.latest()
        except Exception:  # noqa: BLE001
            return None

    def close(self) -> None:
        """Stop the poller this decider started and close the DVFS actuator (its failure logged, not raised)."""
        if self.poller is not None:
            self.poller.close()
        if self.dvfs is not None:
            try:
                self.dvfs.close()
            except Exception as e:  # noqa: BLE001
                self._once("dvfs:close", "DVFS actuator close failed: %s", e)
