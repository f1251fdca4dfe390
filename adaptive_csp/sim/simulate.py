"""The simulation loop: one policy object, one scenario, a simulated clock.

How the loop behaves (the same way :class:`~adaptive_csp.AdaptiveRunner` does on a device)
-------------------------------------------------------------------------------------------
* Time advances in **decision ticks** of ``scenario.decision_interval_s`` (0.5 s by default).  At the
  start of each tick the simulated sensor values (temperature, battery, plug state, power, CPU
  utilisation) are written into a sensor source at the simulated time, the runtime's policy object is
  asked once for a :class:`Decision` (``RuntimeStats.now`` is the simulated clock; ``latencies_ms`` is the
  rolling window of the last 120 frame latencies, oldest first, as the runner passes it), and the level /
  frequency hold for the tick.  Nothing sleeps and no wall clock is read inside the loop.
  The runner asks its policy on every frame, but its sensor snapshot only changes at the poller's rate
  (2 Hz by default): deciding once per 0.5 s tick is the same decision stream at sensor resolution,
  without ~30 policy calls per second of simulated time.  Set ``decision_interval_s = 1/fps`` in a
  scenario for per-frame decisions (slower to simulate).  An out-of-range level is clamped and a policy
  exception falls back to the safe level, as in the runner.
* Frames arrive at the scenario's rate (uniformly spaced or Poisson).  The runner processes the newest
  frame when free: when one inference takes longer than the frame interval, excess frames are **dropped**
  (and counted as deadline misses).  Each processed frame's latency is the tick's service time
  (level, DVFS frequency, thermal throttling, background load) times a mean-one log-normal jitter.
* Physics per tick lives in :class:`~adaptive_csp.sim.world.World` (device, battery, RC thermal node,
  background load), which the demo drives too.  The loop itself reads as its steps:
  :meth:`ScenarioTraces.sample` → per tick ``World.sense`` → ``_Controller.decide`` → ``World.advance``
  → ``_Log.add`` → ``_score`` (p95 with the package's one nearest-rank percentile,
  :mod:`adaptive_csp.util.stats`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_csp.control.policy import Decision, Policy, RuntimeStats
from adaptive_csp.control.presets import DEFAULT_POLICY, create_policy
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.sim.device import DeviceClass, DeviceModel
from adaptive_csp.sim.scenario import Scenario, load_scenario
from adaptive_csp.sim.world import ScenarioTraces, SensorFeed, Tick, World, device_for
from adaptive_csp.util.stats import grouped_percentile, percentile

__all__ = ["simulate", "SimResult", "resolve_ladder", "SensorFeed"]

LATENCY_WINDOW = 120  # latencies handed to the policy: a rolling window, oldest first (the runner's default)


# --------------------------------------------------------------------------------------------------------
# ladder resolution (policies: adaptive_csp.control.create_policy, the one lookup)
# --------------------------------------------------------------------------------------------------------
def resolve_ladder(ladder: LevelLadder | str | Path | None) -> LevelLadder:
    """A ladder object, a LevelLadder JSON path, or None for the shipped model's measured ladder as a camera
    frame runs it: its ONNX Runtime batch-1 view (``ladder.view("ort", 1)``), the view ``AdaptiveRunner``
    hands its policy on a CPU, so policies are simulated on the costs that run."""
    if isinstance(ladder, LevelLadder):
        return ladder
    if ladder is not None:
        p = Path(ladder)
        if not p.exists():
            raise ValueError(f"ladder file {str(p)!r} does not exist")
        return LevelLadder.from_json(p.read_text())
    try:
        from adaptive_csp.models.pretrained import shipped_ladder
    except ImportError as e:
        raise RuntimeError(
            "no ladder given and the shipped model's ladder is not available "
            f"({e}); pass ladder=LevelLadder / --ladder path.json (LevelLadder.to_json format)"
        ) from None
    return shipped_ladder().view("ort", 1)


# --------------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------------
@dataclass
class SimResult:
    policy: str
    scenario: str
    device: str
    seed: int
    duration_s: float  # scenario length
    simulated_s: float  # how long the device ran (shorter when the battery emptied)
    battery_life_s: float | None  # when it emptied, or projected from the drain rate (see ..._projected)
    battery_life_projected: bool
    final_soc: float | None
    time_above_tcrit_s: float
    t_crit_c: float
    max_temperature_c: float
    p95_latency_ms: float
    deadline_ms: float
    deadline_miss_pct: float
    windows_ok_pct: float  # 1-s windows whose p95 (drops = ∞) is within the deadline
    mean_accuracy: float | None
    level_switches: int
    frequency_switches: int  # requested by the policy (throttling caps are not counted)
    energy_j: float
    frames_arrived: int
    frames_processed: int
    frames_dropped: int
    mean_level: float
    policy_errors: int
    assumptions: str
    frames_skipped: int = 0  # skipped under a frame interval, answered by the last result
    deadline_misses: int = 0  # late or dropped frames (skipped frames are answered, not missed)
    on_time_accuracy: float | None = None  # "right and on time": expected right answers on time / arrived
    trace: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    level_table: list[dict] = field(default_factory=list, repr=False)

    SUMMARY_FIELDS = (
        "policy", "scenario", "device", "seed", "duration_s", "simulated_s", "battery_life_s",
        "battery_life_projected", "final_soc", "time_above_tcrit_s", "t_crit_c", "max_temperature_c",
        "p95_latency_ms", "deadline_ms", "deadline_miss_pct", "windows_ok_pct", "mean_accuracy",
        "level_switches", "frequency_switches", "energy_j", "frames_arrived", "frames_processed",
        "frames_dropped", "mean_level", "policy_errors", "frames_skipped", "deadline_misses", "on_time_accuracy",
    )  # fmt: skip

    @property
    def energy_wh(self) -> float:
        return self.energy_j / 3600.0

    def summary(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.SUMMARY_FIELDS}

    def format(self) -> str:
        """Human-readable summary."""

        def hms(s: float | None) -> str:
            if s is None:
                return "n/a (mains powered)"
            h, rem = divmod(int(round(s)), 3600)
            return f"{h}h{rem // 60:02d}m{rem % 60:02d}s"

        life = hms(self.battery_life_s)
        if self.battery_life_s is not None and self.battery_life_projected:
            life += " (projected from the drain rate; the battery did not empty)"
        acc = (
            "n/a (ladder has no accuracies)"
            if self.mean_accuracy is None
            else f"{100 * self.mean_accuracy:.2f} %"
        )
        lines = [
            f"policy {self.policy} | scenario {self.scenario} | device {self.device} | seed {self.seed}",
            f"  simulated          {hms(self.simulated_s)} of {hms(self.duration_s)}",
            f"  battery lifetime   {life}",
            f"  time above T_crit  {self.time_above_tcrit_s:.1f} s (T_crit {self.t_crit_c:.0f} °C, "
            f"max {self.max_temperature_c:.1f} °C)",
            f"  p95 latency        {self.p95_latency_ms:.1f} ms vs deadline {self.deadline_ms:.0f} ms; "
            f"1-s windows within deadline {self.windows_ok_pct:.2f} %",
            f"  deadline misses    {self.deadline_miss_pct:.2f} % ({self.frames_dropped} of "
            f"{self.frames_arrived} frames dropped)",
            f"  mean accuracy      {acc}"
            + ("" if self.on_time_accuracy is None else f"; right and on time {100 * self.on_time_accuracy:.2f} %")
            + (f"; {self.frames_skipped} frames skipped (answered by the last result)" if self.frames_skipped else ""),
            f"  level switches     {self.level_switches} (mean level {self.mean_level:.2f}); "
            f"frequency switches {self.frequency_switches}",
            f"  energy             {self.energy_j:.0f} J ({self.energy_wh:.2f} Wh)",
            f"  assumptions        {self.assumptions}",
        ]
        if self.policy_errors:
            lines.append(f"  policy errors      {self.policy_errors} (fell back to the safe level)")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------------------
def simulate(
    policy: Any = DEFAULT_POLICY,
    scenario: Any = "factory",
    *,
    ladder: LevelLadder | str | Path | None = None,
    device: str | DeviceClass | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool | Callable[[int, int], None] = False,
    record: bool = True,
    duration_s: float | None = None,
) -> SimResult:
    """Run ``policy`` (anything :func:`~adaptive_csp.control.create_policy` takes) through ``scenario``.

    ``scenario``: a shipped name, a TOML path, a dict or a :class:`Scenario`.  ``seed`` overrides the
    scenario's seed (traces, bursts, arrivals, jitter all derive from it).  ``overrides`` go to the policy
    factory when the policy is given by name.  ``duration_s`` shortens/lengthens the scenario.
    A Policy instance is ``reset()`` first, so identical seeds give identical results.
    """
    scn = load_scenario(scenario)
    if duration_s is not None:
        scn = scn.with_(duration_s=float(duration_s))
    lad = resolve_ladder(ladder)
    pol = create_policy(policy, **(overrides or {}))
    pol.reset()
    try:
        dev = device_for(scn, lad, device)
    except ValueError as e:
        if ladder is None:
            raise ValueError(f"the shipped model's ladder cannot drive the simulator: {e}") from None
        raise
    seed = scn.seed if seed is None else int(seed)
    return _run(pol, scn, lad, dev, seed, progress, record)


class _Controller:
    """The policy side of the loop: asks the policy as the runner does and keeps its latency window.

    An out-of-range level is clamped and a policy exception falls back to the safe level, as in the
    runner; the first decision sets the starting level (not a switch).
    """

    def __init__(self, pol: Policy, lad: LevelLadder, dev: DeviceModel, deadline_ms: float, jitter: np.ndarray):
        self.pol, self.lad, self.dev, self.deadline_ms = pol, lad, dev, deadline_ms
        self.level, self.f_req, self.interval = lad.full, 1.0, 1
        self.safe = pol.safe_index(lad)
        self.switches = self.fswitches = self.errors = 0
        self.window: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.recent: tuple[float, ...] = ()
        self._jit = jitter.tolist()
        self._j = 0  # next jitter index (processed frames)

    def decide(self, k: int, t: float, readings: Readings, fps: float | None = None) -> tuple[int, float]:
        stats = RuntimeStats(now=t, level=self.level, latencies_ms=self.recent, deadline_ms=self.deadline_ms,
                             frequency=self.f_req, fps=fps, frame_interval=self.interval)
        f_old = self.f_req
        try:
            dec: Decision = self.pol.decide(readings, stats, self.lad)
            new = dec.level
            if isinstance(new, bool) or not isinstance(new, (int, np.integer)):
                raise TypeError(f"level {new!r} is not an int")
            new = self.lad.clamp(new)  # the runner clamps an out-of-range level
            every = getattr(dec, "frame_interval", 1)
            if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
                raise ValueError(f"frame_interval {every!r} is not an int >= 1")
            if dec.frequency is not None:
                self.f_req = self.dev.snap_frequency(dec.frequency)
            self.interval = int(every)
        except Exception:  # noqa: BLE001 - the runner falls back to the safe level, so does the sim
            self.errors += 1
            new, self.interval = self.safe, 1
        if k:  # the first decision sets the starting level and frequency; it is not a switch
            self.switches += new != self.level
            self.fswitches += self.f_req != f_old
        self.level = new
        return new, self.f_req

    def observe(self, tick: Tick) -> None:
        """Add the tick's processed frames (service time × jitter) to the latency window."""
        n = tick.processed
        if not n:
            return
        m = min(n, LATENCY_WINDOW)
        s_ms = tick.service_s * 1000.0
        j = self._j
        lat = [s_ms * x for x in self._jit[j + n - m : j + n]]
        if tick.switch_extra and m == n:  # the first frame after a switch took longer
            lat[0] *= 1.0 + tick.switch_extra
        self.window.extend(lat)
        self.recent = tuple(self.window)
        self._j = j + n


class _Log:
    """Per-tick arrays of one run, cut to the ticks that ran."""

    def __init__(self, n: int):
        self.n = n
        self.level = np.zeros(n, dtype=np.int16)
        self.frequency = np.zeros(n, dtype=np.float32)
        self.temperature = np.zeros(n, dtype=np.float32)
        self.soc = np.zeros(n, dtype=np.float32)
        self.power = np.zeros(n, dtype=np.float32)
        self.service = np.zeros(n, dtype=np.float64)
        self.processed = np.zeros(n, dtype=np.int64)
        self.skipped = np.zeros(n, dtype=np.int64)
        self.stale = np.zeros(n, dtype=np.float64)
        self.extra = np.zeros(n, dtype=np.float64)
        self.interval = np.ones(n, dtype=np.int16)

    def add(self, k: int, tick: Tick, interval: int = 1) -> None:
        self.skipped[k] = tick.skipped
        self.stale[k] = tick.stale_correct
        self.extra[k] = tick.switch_extra
        self.interval[k] = interval
        self.level[k] = tick.level
        self.frequency[k] = tick.frequency
        self.temperature[k] = tick.temperature_c
        self.power[k] = tick.power_w
        self.service[k] = tick.service_s
        self.processed[k] = tick.processed
        if tick.soc is not None:
            self.soc[k] = tick.soc


def _progress(progress: Any, n_ticks: int) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """``(update(k), close())`` for ``progress``: True → a tqdm bar, a callable → ``progress(done, total)``."""
    every = max(1, n_ticks // 200)
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=n_ticks, unit="tick", leave=False, mininterval=0.5)
        return (lambda k: bar.update(every) if k % every == every - 1 else None), bar.close
    if callable(progress):
        return (lambda k: progress(k + 1, n_ticks) if k % every == every - 1 else None), lambda: None
    return None, lambda: None


def _run(pol: Policy, scn: Scenario, lad: LevelLadder, dev: DeviceModel, seed: int,
         progress: Any, record: bool) -> SimResult:  # fmt: skip
    """The loop: sample the traces, then per tick sense → decide → advance the world → log; then score."""
    tr = ScenarioTraces.sample(scn, seed)
    world = World(scn, dev, ambient_c=float(tr.ambient_c[0]) if len(tr) else None)
    ctl = _Controller(pol, lad, dev, scn.deadline_ms, tr.jitter)
    log = _Log(len(tr))
    update, close = _progress(progress, len(tr))
    arrivals, load, ambient, fps = tr.arrivals.tolist(), tr.load.tolist(), tr.ambient_c.tolist(), tr.fps.tolist()
    k_end = len(tr)
    for k in range(len(tr)):
        t = k * tr.dt
        level, freq = ctl.decide(k, t, world.sense(k, t), fps[k])
        tick = world.advance(t, level, freq, arrivals[k], load[k], ambient[k], interval=ctl.interval)
        ctl.observe(tick)
        log.add(k, tick, ctl.interval)
        if world.died_at is not None and scn.stop_when_empty:
            k_end = k + 1
            break
        if update is not None:
            update(k)
    close()
    return _score(pol, scn, lad, dev, seed, tr, world, ctl, log, k_end, record)


def _score(pol: Policy, scn: Scenario, lad: LevelLadder, dev: DeviceModel, seed: int, tr: ScenarioTraces,
           world: World, ctl: _Controller, log: _Log, ke: int, record: bool) -> SimResult:  # fmt: skip
    """Metrics of a finished run: latency percentiles, deadline misses, battery life, accuracy."""
    svc, nproc, narr, nskip = log.service[:ke], log.processed[:ke], tr.arrivals[:ke], log.skipped[:ke]
    processed, skipped = int(nproc.sum()), int(nskip.sum())
    lat_ms = _latencies_ms(svc, nproc, log.extra[:ke], tr.jitter[:processed])
    dropped_per_tick = narr - nskip - nproc
    arrived, dropped = int(narr.sum()), int(dropped_per_tick.sum())
    on_time = lat_ms <= scn.deadline_ms
    misses = int(lat_ms.size - np.count_nonzero(on_time)) + dropped
    simulated = world.died_at if world.died_at is not None else min(float(scn.duration_s), ke * tr.dt)
    life, projected = world.battery_life(simulated)
    levels = log.level[:ke].astype(np.int64)
    accs = dev.accuracy
    has_acc = all(a is not None for a in accs)
    acc_frames = np.repeat(np.asarray(accs, dtype=float)[levels], nproc) if has_acc else None
    stale = float(log.stale[:ke].sum())
    trace = _trace(tr, world, log, ke, svc, narr, nproc, nskip) if record else {}
    return SimResult(
        policy=str(getattr(pol, "name", type(pol).__name__)),
        scenario=scn.name,
        device=dev.device.name,
        seed=seed,
        duration_s=float(scn.duration_s),
        simulated_s=float(simulated),
        battery_life_s=None if life is None else float(life),
        battery_life_projected=projected,
        final_soc=None if world.battery is None else float(world.battery.soc),
        time_above_tcrit_s=float(world.above_crit_s),
        t_crit_c=float(dev.device.t_crit_c),
        max_temperature_c=float(world.max_temperature_c),
        p95_latency_ms=percentile(lat_ms, 95.0) if processed else float("inf"),
        deadline_ms=float(scn.deadline_ms),
        deadline_miss_pct=100.0 * misses / arrived if arrived else 0.0,
        windows_ok_pct=_windows_ok_pct(lat_ms, nproc, dropped_per_tick, tr.t[:ke], scn.deadline_ms),
        mean_accuracy=(float(acc_frames.sum()) + stale) / (processed + skipped)
        if (acc_frames is not None and processed + skipped) else None,
        level_switches=ctl.switches,
        frequency_switches=ctl.fswitches,
        energy_j=float(world.energy_j),
        frames_arrived=arrived,
        frames_processed=processed,
        frames_dropped=dropped,
        mean_level=float(np.dot(levels, nproc)) / processed if processed else float("nan"),
        policy_errors=ctl.errors,
        assumptions=dev.device.assumptions,
        frames_skipped=skipped,
        deadline_misses=misses,
        on_time_accuracy=(float(acc_frames[on_time].sum()) + stale) / arrived
        if (acc_frames is not None and arrived) else None,
        trace=trace,
        level_table=dev.table(),
    )


def _trace(tr: ScenarioTraces, world: World, log: _Log, ke: int, svc: np.ndarray, narr: np.ndarray,
           nproc: np.ndarray, nskip: np.ndarray) -> dict[str, np.ndarray]:
    """The recorded per-tick trace of the first ``ke`` ticks (``SimResult.trace``), with the service times and
    frame counts :func:`_score` already sliced."""
    trace = {
        "t": tr.t[:ke], "level": log.level[:ke], "frequency": log.frequency[:ke],
        "temperature_c": log.temperature[:ke], "power_w": log.power[:ke], "latency_ms": svc * 1000.0,
        "fps": tr.fps[:ke], "load": tr.load[:ke], "ambient_c": tr.ambient_c[:ke], "arrived": narr,
        "processed": nproc, "skipped": nskip, "frame_interval": log.interval[:ke],
    }  # fmt: skip
    if world.battery is not None:
        trace["soc"] = log.soc[:ke]
    return trace


def _latencies_ms(svc: np.ndarray, nproc: np.ndarray, extra: np.ndarray, jitter: np.ndarray) -> np.ndarray:
    """Every processed frame's latency: the tick's service time × jitter, the first after a switch longer."""
    lat = np.repeat(svc * 1000.0, nproc) * jitter
    first = np.cumsum(nproc) - nproc
    hit = (extra > 0) & (nproc > 0)
    lat[first[hit]] *= 1.0 + extra[hit]
    return lat


def _windows_ok_pct(lat_ms: np.ndarray, nproc: np.ndarray, dropped: np.ndarray, tick_t: np.ndarray,
                    deadline_ms: float, window_s: float = 1.0) -> float:  # fmt: skip
    """Share of windows (aligned to ticks) whose p95 latency, dropped frames counting as ∞, meets the deadline."""
    if lat_ms.size + int(dropped.sum()) == 0:
        return 100.0
    win_tick = np.floor(tick_t / window_s + 1e-9).astype(np.int64)
    win = np.concatenate((np.repeat(win_tick, nproc), np.repeat(win_tick, dropped)))
    lat = np.concatenate((lat_ms, np.full(int(dropped.sum()), np.inf)))
    _, p95 = grouped_percentile(lat, win, 95.0)
    return 100.0 * float((p95 <= deadline_ms).mean())
