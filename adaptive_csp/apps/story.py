"""The demo's simulated stretch of a camera's day: one set of frames, two arms, one simulated clock.

A scenario (default ``conveyor``, see ``adaptive_csp/scenarios/conveyor.toml``) is played in ``frames``
steps of ``dt = duration / frames`` simulated seconds.  Each step takes one frame from the
:class:`~adaptive_csp.apps.conveyor.Conveyor` (the belt runs or stands as the scenario's ``belt`` trace
says) and gives that same frame to two arms:

- **adaptive**: an :class:`~adaptive_csp.AdaptiveRunner` with the chosen policy and content-aware demand;
- **static-max**: a runner with the ``static-max`` baseline (the full level, always).

Inference is real (the model on this CPU).  Each arm's battery, temperature and power come from its own
:class:`~adaptive_csp.sim.World` (the simulator's device, battery and RC thermal models): the level the
runner chose runs for the step at the scenario's frame rate, under its background load and ambient
temperature, and the runner's policy reads the world's sensors on the next step.  Deadline misses are
the world's: frames dropped because the level's service time did not keep up, plus frames served later
than the deadline.  The latency the policy reads for a frame is the simulated device's service time of
that step (``runner.note_latency``), not this machine's, so a governor judges the world it is scored in
and the run does not depend on how busy this machine is.  An arm whose battery empties stops: it
classifies nothing more.

What a user gets (:mod:`adaptive_csp.apps.score`) is counted on the frames where an item rests under the
camera (``Frame.scored``).  Each step's real frame stands for the step's ``fps·dt`` camera frames; its
``on_time`` is the share of them the arm answered within the deadline (``(processed − late + skipped) /
arrived`` from the world; a frame skipped by the policy's frame interval is answered by the last result,
on time when the step's service meets the deadline; 0 once the battery is empty).  "Right and on time"
counts a late or dropped frame as wrong; "right when answered" leaves it out.

The belt (:func:`demo_belt`) moves one item per few steps: at the default ``DEFAULT_FRAMES`` steps the
scored frames show over 200 of the shipped sample's 1 000 items, each on 1-3 frames, so an accuracy is
measured on items, not on a score of repeated frames.
"""

from __future__ import annotations

import math
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from adaptive_csp.apps.conveyor import Conveyor, Frame
from adaptive_csp.sensors.scripted import ManualClock
from adaptive_csp.sim.scenario import Scenario, load_scenario
from adaptive_csp.sim.world import ScenarioTraces, World, device_for

__all__ = ["Arm", "StoryRun", "run_story", "CapWatch", "Change", "cause_of", "policy_reason", "demo_belt",
           "belt_busy", "BELT", "DEFAULT_FRAMES"]

DEFAULT_FRAMES = 1200  # steps of the default story: 6 s of the conveyor's 2 h each
BELT = {"move_frames": 2, "dwell": (1, 3), "gap": (0, 1)}  # per item: ~1 frame in, 1-3 at rest, 1 out


def demo_belt(seed: int = 0) -> Conveyor:
    """The demo's belt: the shipped Fashion-MNIST sample in a seeded order, a new item every ~4.5 steps."""
    from adaptive_csp.data.fashion_mnist import load_sample

    sample = load_sample()
    return Conveyor(sample.images.numpy(), sample.labels.numpy(), seed=seed, **BELT)


def belt_busy(scn: Scenario, t: np.ndarray) -> list[bool]:
    """Per step: whether the belt carries items (the scenario's ``belt`` trace; always, without one)."""
    if scn.belt is None:
        return [True] * len(t)
    return (scn.belt.sample(t, np.random.default_rng(scn.seed), scn.duration_s) >= 0.5).tolist()

_CONTENT = re.compile(r"^content: .*\(policy cap \d+: (.*)\)$")
_HELD = ("recovering; ", "cooldown; ")


def policy_reason(reason: str) -> str:
    """The policy's own reason inside a runner reason (content demand wraps it: ``content: … (policy cap N: R)``)."""
    m = _CONTENT.match(reason)
    return m.group(1) if m else reason


def cause_of(reason: str) -> str:
    """The constraint a reason names: ``battery``, ``thermal``, ``contention``, ``latency``, ``content``,
    ``fault``, ``unconstrained`` … (the word before the first colon, after any hold prefix)."""
    for p in _HELD:
        while reason.startswith(p):
            reason = reason[len(p):]
    head, colon, _ = reason.partition(":")
    return head.strip() if colon else (reason.strip() or "unknown")


@dataclass
class Change:
    """A change of the policy's level cap."""

    t: float
    old: int
    new: int
    reason: str  # the policy's reason after the change
    cause: str  # down: the constraint that binds; up: the one that eased (behind the last move down)


class CapWatch:
    """Turns the policy's cap, frame by frame, into :class:`Change` records with their causes."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self._cap: int | None = None
        self._bound = "unknown"  # the constraint behind the last move down

    def note(self, t: float, cap: int, reason: str) -> Change | None:
        """Record the cap in force at ``t`` with the runner's reason; return the change, if it changed."""
        reason = policy_reason(reason)
        old, self._cap = self._cap, cap
        if old is None or cap == old:
            return None
        if cap < old:
            self._bound = cause_of(reason)
        self.changes.append(Change(t, old, cap, reason, self._bound))
        return self.changes[-1]


@dataclass
class Arm:
    """One runner and its simulated world, with a per-frame record of what happened."""

    name: str
    runner: Any
    world: World
    rec: dict[str, list] = field(default_factory=dict)
    watch: CapWatch = field(default_factory=CapWatch)

    KEYS = ("level", "cap", "reason", "pred", "correct", "on_time", "power_w", "ran_s", "battery_pct",
            "temperature_c", "cpu_percent", "arrived", "processed", "skipped", "late", "service_ms", "frequency",
            "interval", "digest")

    def __post_init__(self) -> None:
        self.rec = {k: [] for k in self.KEYS}
        self.right_on_time = 0.0
        self.scored = 0

    @property
    def dead(self) -> bool:
        return self.world.died_at is not None

    def step(self, k: int, t: float, fr: Frame, tr: ScenarioTraces, deadline_ms: float) -> None:
        """Sense, infer on ``fr`` (unless the battery is empty), then run the world for the step."""
        w, r = self.world, self.runner
        w.sense(k, t)
        tick, arrived, skipped, late, on_time = None, int(tr.arrivals[k]), 0, 0, 0.0
        freq, every = math.nan, 0
        if self.dead:
            level, cap, reason, label, ok = -1, -1, "battery empty", -1, False
        else:
            r.source_fps = float(tr.fps[k])  # the camera's rate: this frame stands for the step's fps·dt frames
            p = r.infer(fr.image)
            level, cap, reason = p.level, r.policy_level, p.reason
            label, ok = self.judge(fr, p)
            self.watch.note(t, cap, reason)
            freq = w.dev.snap_frequency(r.frequency) if r.frequency is not None else 1.0
            every = max(1, int(getattr(r, "frame_interval", 1) or 1))  # the policy's frame interval
            tick = w.advance(t, level, freq, arrived, float(tr.load[k]), float(tr.ambient_c[k]), tr.dt,
                             interval=every)
            skipped = tick.skipped
            r.note_latency(1000.0 * tick.service_s)  # the policy judges the simulated device's latency
            in_time = tick.service_s * 1000.0 <= deadline_ms
            switch_late = tick.switch_extra and tick.service_s * (1.0 + tick.switch_extra) * 1000.0 > deadline_ms
            late = tick.processed if not in_time else int(bool(switch_late and tick.processed))
            on_time = (tick.processed - late + (skipped if in_time else 0)) / arrived if arrived else 1.0
        ok = bool(fr.scored and ok)
        if fr.scored:
            self.scored += 1
            self.right_on_time += ok * on_time
        vals = (level, cap, reason, label, ok, on_time, tick.power_w if tick else 0.0, tick.ran_s if tick else 0.0,
                w.battery.percent if w.battery is not None else math.nan, w.thermal.temperature_c, w.last_util,
                arrived, tick.processed if tick else 0, skipped, late, 1000.0 * tick.service_s if tick else math.nan,
                freq, every, zlib.crc32(fr.image.tobytes()))
        for key, v in zip(self.KEYS, vals, strict=True):
            self.rec[key].append(v)

    def judge(self, fr: Frame, p: Any) -> tuple[Any, bool]:
        """What the arm recorded as its prediction for frame ``fr``, and whether it was right (a classifier:
        the label; a subclass judges other outputs, e.g. a detector's boxes)."""
        return p.label, p.label == fr.label

    @property
    def changes(self) -> list[Change]:
        return self.watch.changes

    @property
    def accuracy(self) -> float | None:
        """Right and on time so far, on the scored frames (what the live view shows)."""
        return self.right_on_time / self.scored if self.scored else None

    def summary(self, simulated_s: float) -> dict[str, Any]:
        w = self.world
        life, projected = w.battery_life(simulated_s)
        arrived = sum(self.rec["arrived"])
        missed = sum(a - p - s for a, p, s in zip(self.rec["arrived"], self.rec["processed"], self.rec["skipped"],
                                                  strict=True))
        missed += sum(self.rec["late"])
        lv = [x for x in self.rec["level"] if x >= 0]
        return {
            "policy": self.runner.policy.name,
            "energy_j": w.energy_j,
            "battery_start_pct": None if w.soc0 is None else 100.0 * w.soc0,
            "battery_end_pct": None if w.battery is None else w.battery.percent,
            "battery_life_s": life,
            "battery_life_projected": projected,
            "time_above_trip_s": w.above_trip_s,
            "t_trip_c": w.dev.device.t_trip_c,
            "max_temperature_c": w.max_temperature_c,
            "deadline_miss_pct": 100.0 * missed / arrived if arrived else 0.0,
            "right_on_time": self.accuracy,
            "scored": self.scored,
            "mean_level": float(np.mean(lv)) if lv else math.nan,
            "cap_changes": len(self.changes),
            "battery_empty_at_s": w.died_at,
        }


@dataclass
class StoryRun:
    scenario: Scenario
    dt: float
    t: np.ndarray
    traces: ScenarioTraces
    belt_busy: list[bool]
    labels: list[int | None]
    scored: list[bool]
    arms: dict[str, Arm]
    wall_s: float
    model_name: str
    full_level: int
    items: list[int] = field(default_factory=list)  # the item each frame shows (Frame.item)
    ladder: Any = None  # the ladder the simulated device was built from
    device: Any = None  # that DeviceModel

    @property
    def adaptive(self) -> Arm:
        return self.arms["adaptive"]

    @property
    def static(self) -> Arm:
        return self.arms["static-max"]

    def summaries(self) -> dict[str, dict[str, Any]]:
        sim_s = len(self.t) * self.dt
        return {k: a.summary(sim_s) for k, a in self.arms.items()}

    def scores(self, *, seed: int = 0) -> dict[str, Any]:
        """Per arm an :class:`~adaptive_csp.apps.score.ArmScore` (both figures with item-bootstrap intervals),
        ``"difference"``: adaptive minus static-max, paired by item, in both figures, and ``"both_answered"``:
        both arms on the frames both answered in time."""
        from adaptive_csp.apps.score import score_arm, score_both_answered, score_difference

        out: dict[str, Any] = {k: score_arm(a.rec["correct"], a.rec["on_time"], self.scored, self.items, seed=seed)
                               for k, a in self.arms.items()}
        if any(self.scored):
            a, s = self.adaptive.rec, self.static.rec
            out["difference"] = score_difference((a["correct"], a["on_time"]), (s["correct"], s["on_time"]),
                                                 self.scored, self.items, seed=seed)
            out["both_answered"] = score_both_answered((a["correct"], a["on_time"]), (s["correct"], s["on_time"]),
                                                       self.scored, self.items, seed=seed)
        return out

    def gains(self) -> dict[str, float | None]:
        """What adaptation bought against static-max: energy saved (%), battery life gained (%), and the
        difference in "right and on time" and in "right when answered" (points)."""
        s = self.summaries()
        a, b = s["adaptive"], s["static-max"]
        energy = 100.0 * (1.0 - a["energy_j"] / b["energy_j"]) if b["energy_j"] > 0 else None
        life = (100.0 * (a["battery_life_s"] / b["battery_life_s"] - 1.0)
                if a["battery_life_s"] and b["battery_life_s"] else None)
        d = self.scores().get("difference")
        pts = {k: (None if d is None or math.isnan(d[k].estimate) else 100.0 * d[k].estimate)
               for k in ("on_time", "answered")}
        return {"energy_pct": energy, "battery_life_pct": life, "on_time_points": pts["on_time"],
                "answered_points": pts["answered"]}


def _model_name(model: Any) -> str:
    meta = getattr(model, "meta", None) or {}
    cfg = (meta.get("train") or {}).get("cfg") or {}
    return str(meta.get("name") or cfg.get("model") or type(model).__name__)


def _with_latencies(eng: Any, model: Any) -> Any:
    """The engine's ladder, with batch-1 latencies measured here for rungs that have none (the simulated
    device scales them; a profiled model ships them)."""
    from dataclasses import replace

    from adaptive_csp.levels import LevelLadder
    from adaptive_csp.util.timing import interleaved_medians

    ladder = eng.ladder
    if all(r.latency_ms for r in ladder.rungs):
        return ladder
    pre = model.meta["preprocess"]
    x = np.zeros((1, pre.get("in_chans", 1), *pre["input_size"]), np.float32)
    ms = interleaved_medians([lambda i=i: eng.run(x, i) for i in range(len(ladder))], rounds=7, iters=5)
    return LevelLadder(replace(r, latency_ms=r.latency_ms or t) for r, t in zip(ladder.rungs, ms, strict=True))


def world_ladder(eng: Any, model: Any, added_ms: Any = None) -> Any:
    """The ladder the simulated device is built from: the engine's levels, in the engine's order, each with
    its batch-1 latency *on this engine* as ``latency_ms`` (the ``"<engine>:b1"`` measurement the model or
    ``runner.calibrate()`` carries; else the profiled batch-1 latency; else measured here), and no other
    latency fields, so that every consumer (the device model, the oracle, a replay) reads one plain ladder
    indexed like ``Prediction.level``.  ``added_ms``: per rung, time each call spends outside the engine
    (a detector's namer, :meth:`~adaptive_csp.runtime.namer.CropNamer.latency_ms`), added to its cost."""
    from dataclasses import replace

    from adaptive_csp.levels import LevelLadder, latency_key

    key = latency_key(getattr(eng, "name", "torch"), 1)
    rungs = eng.ladder.rungs
    if all(key in r.latency for r in rungs):
        lat = [r.latency[key] for r in rungs]
    else:
        lat = [r.latency_ms for r in _with_latencies(eng, model).rungs]
    out = LevelLadder(replace(r, latency_ms=ms, latency_ms_b32=None, latency={})
                      for r, ms in zip(rungs, lat, strict=True))
    return out if added_ms is None else out.with_added_ms(added_ms)


def _engine_namer_ladder(model: Any, engine: Any) -> tuple[Any, Any, Any]:
    """The prepared engine both arms share, a detector's namer on an engine of its kind (None for a
    classifier or a detector without one) and the world ladder, whose costs include the namer's time (3
    boxes a call).  One frame at a time: one intra-op thread is fastest and does not spin against a busy CPU."""
    from adaptive_csp.engines import create_engine
    from adaptive_csp.runtime.namer import resolve_namer

    one = {"threads": 1} if engine in ("auto", "onnxruntime") else {}
    eng = create_engine(model, engine, **one)
    eng.prepare()
    namer, _ = resolve_namer("auto", dict(getattr(model, "meta", None) or {}), eng, engine_options=one)
    naming = None if namer is None else namer.latency_ms(tuple(model.meta["preprocess"]["input_size"]), boxes=3)
    return eng, namer, world_ladder(eng, model, naming)


def run_story(policy: Any = None, scenario: Any = "conveyor", frames: int = DEFAULT_FRAMES, *, model: Any = None,
              engine: Any = "auto", seed: int = 0, content: bool = True,
              on_frame: Callable[[StoryRun, int], None] | None = None, belt: Any = None,
              arm: type[Arm] = Arm) -> StoryRun:
    """Play ``scenario`` in ``frames`` steps through both arms (see the module docstring).

    ``belt``: the frame source (``frames(count, busy=...)`` yielding frames with ``image``, ``label``,
    ``scored``; default a :class:`Conveyor` of the shipped sample); ``arm``: the :class:`Arm` class that
    judges each arm's output (the detection demo passes its own)."""
    from adaptive_csp.control.presets import DEFAULT_POLICY
    from adaptive_csp.models.pretrained import pretrained
    from adaptive_csp.runtime.runner import AdaptiveRunner

    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    scn = load_scenario(scenario)
    dt = float(scn.duration_s) / frames
    scn = scn.with_(decision_interval_s=dt)
    model = pretrained() if model is None else model
    eng, namer, ladder = _engine_namer_ladder(model, engine)
    try:
        dev = device_for(scn, ladder)
    except ValueError as e:
        raise ValueError(f"the model's ladder cannot drive the simulated device: {e}") from None
    tr = ScenarioTraces.sample(scn, scn.seed)
    clock = ManualClock(0.0)
    arms: dict[str, Arm] = {}
    for name, pol, cont in (("adaptive", policy or DEFAULT_POLICY, content), ("static-max", "static-max", False)):
        world = World(scn, dev, ambient_c=float(tr.ambient_c[0]))
        runner = AdaptiveRunner(model, policy=pol, sensors=world.feed, engine=eng, content=cont, clock=clock,
                                **({"namer": namer} if namer is not None else {}))
        arms[name] = arm(name, runner, world)
    busy = belt_busy(scn, tr.t)
    belt = demo_belt(seed) if belt is None else belt
    run = StoryRun(scn, dt, tr.t, tr, busy, [], [], arms, 0.0, _model_name(model), ladder.full, ladder=ladder,
                   device=dev)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batch 1: one thread is fastest, and OpenMP threads spinning against a busy CPU
    try:  # slow every call down by far more than they gain
        for k, fr in enumerate(belt.frames(len(tr), busy=busy.__getitem__)):
            t = float(tr.t[k])
            clock.set(t)
            run.labels.append(fr.label)
            run.scored.append(fr.scored)
            run.items.append(int(fr.item))
            for arm in arms.values():
                arm.step(k, t, fr, tr, scn.deadline_ms)
            run.wall_s = time.perf_counter() - t0
            if on_frame is not None:
                on_frame(run, k)
    finally:
        torch.set_num_threads(threads)
        for part in [arm.runner for arm in arms.values()] + ([namer] if namer is not None else []):
            part.close()
    return run
