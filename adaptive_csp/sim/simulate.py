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
* Physics per tick: the board power is ``idle + busy·(P_active(f) − idle) + load·P_background``; the battery
  drains by it (or charges while plugged) and the RC thermal node is advanced exactly for the tick.  The
  energy books use the service time (jitter is zero-mean noise on the observed latencies).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_csp.control.policy import Decision, Policy, RuntimeStats
from adaptive_csp.control.presets import DEFAULT_POLICY, get_policy
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.sim.battery import Battery
from adaptive_csp.sim.device import DeviceClass, DeviceModel, get_device_class
from adaptive_csp.sim.scenario import Scenario, load_scenario
from adaptive_csp.sim.thermal import ThermalModel

__all__ = ["simulate", "SimResult", "resolve_ladder", "SensorFeed"]

LATENCY_WINDOW = 120  # latencies handed to the policy: a rolling window, oldest first (the runner's default)


# --------------------------------------------------------------------------------------------------------
# ladder resolution (policies: adaptive_csp.control.get_policy, the one lookup)
# --------------------------------------------------------------------------------------------------------
def resolve_ladder(ladder: LevelLadder | str | Path | None) -> LevelLadder:
    """A ladder object, a LevelLadder JSON path, or None for the shipped model's measured ladder."""
    if isinstance(ladder, LevelLadder):
        return ladder
    if ladder is not None:
        p = Path(ladder)
        if not p.exists():
            raise ValueError(f"ladder file {str(p)!r} does not exist")
        return LevelLadder.from_json(p.read_text())
    try:
        from adaptive_csp.models.pretrained import default_ladder
    except ImportError as e:
        raise RuntimeError(
            "no ladder given and the shipped model's ladder is not available "
            f"({e}); pass ladder=LevelLadder / --ladder path.json (LevelLadder.to_json format)"
        ) from None
    return default_ladder()


# --------------------------------------------------------------------------------------------------------
# the sensor path: simulated values → the runtime's scripted source → Readings
# --------------------------------------------------------------------------------------------------------
class SensorFeed:
    """Writes simulated values into the runtime's scripted sensor source and reads a Readings back.

    Uses ``adaptive_csp.sensors.ScriptedSource`` (a function-of-time script on a manual clock, read with
    ``read(now=t)``), so policies see exactly what the runtime's sensor path produces (sanitized
    Readings stamped with the simulated time).  Falls back to building the Readings directly only if that
    source is not importable.
    """

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        try:
            from adaptive_csp.sensors.scripted import ManualClock, ScriptedSource
        except ImportError:  # pragma: no cover - sensors package without the scripted source
            self.source = None
            self.kind = "direct"
        else:
            self.source = ScriptedSource(self._script, clock=ManualClock(0.0), start=0.0, name="sim")
            self.kind = "scripted"
        self.has_own_cpu = "own_cpu_percent" in getattr(Readings, "__dataclass_fields__", {})

    def _script(self, t: float) -> dict[str, Any]:
        return self._values

    def push(self, now: float, **values: Any) -> None:
        if not self.has_own_cpu:
            values.pop("own_cpu_percent", None)
        self._values = values
        self._now = now

    def read(self) -> Readings:
        if self.source is None:
            return Readings.sanitized(timestamp=self._now, source="sim", **self._values)
        return self.source.read(now=self._now)


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
    trace: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    level_table: list[dict] = field(default_factory=list, repr=False)

    SUMMARY_FIELDS = (
        "policy", "scenario", "device", "seed", "duration_s", "simulated_s", "battery_life_s",
        "battery_life_projected", "final_soc", "time_above_tcrit_s", "t_crit_c", "max_temperature_c",
        "p95_latency_ms", "deadline_ms", "deadline_miss_pct", "windows_ok_pct", "mean_accuracy",
        "level_switches", "frequency_switches", "energy_j", "frames_arrived", "frames_processed",
        "frames_dropped", "mean_level", "policy_errors",
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
            f"  mean accuracy      {acc}",
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
def _device_for(scn: Scenario, ladder: LevelLadder, device: str | DeviceClass | None) -> DeviceModel:
    dc = get_device_class(device or scn.device)
    th = scn.thermal
    over = {k: v for k, v in (("r_k_per_w", th.r_k_per_w), ("c_j_per_k", th.c_j_per_k),
                              ("t_trip_c", th.t_trip_c), ("t_crit_c", th.t_crit_c)) if v is not None}  # fmt: skip
    if over:
        dc = dc.with_(**over)
    probe = DeviceModel.from_ladder(ladder, dc)
    return DeviceModel.from_ladder(ladder, dc, scn.work_per_frame(probe.base_latency_s[-1]))


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
    """Run ``policy`` (anything :func:`~adaptive_csp.control.get_policy` takes) through ``scenario``.

    ``scenario``: a shipped name, a TOML path, a dict or a :class:`Scenario`.  ``seed`` overrides the
    scenario's seed (traces, bursts, arrivals, jitter all derive from it).  ``overrides`` go to the policy
    factory when the policy is given by name.  ``duration_s`` shortens/lengthens the scenario.
    A Policy instance is ``reset()`` first, so identical seeds give identical results.
    """
    scn = load_scenario(scenario)
    if duration_s is not None:
        scn = scn.with_(duration_s=float(duration_s))
    lad = resolve_ladder(ladder)
    pol = get_policy(policy, **(overrides or {}))
    pol.reset()
    try:
        dev = _device_for(scn, lad, device)
    except ValueError as e:
        if ladder is None:
            raise ValueError(f"the shipped model's ladder cannot drive the simulator: {e}") from None
        raise
    seed = scn.seed if seed is None else int(seed)
    return _run(pol, scn, lad, dev, seed, progress, record)


def _run(pol: Policy, scn: Scenario, lad: LevelLadder, dev: DeviceModel, seed: int,
         progress: Any, record: bool) -> SimResult:  # fmt: skip
    dc = dev.device
    dt = float(scn.decision_interval_s)
    n_ticks = scn.n_ticks()
    times = np.arange(n_ticks, dtype=float) * dt
    ss = np.random.SeedSequence(seed)
    r_fps, r_amb, r_load, r_arr, r_jit = (np.random.default_rng(s) for s in ss.spawn(5))
    fps = np.maximum(scn.frames.sample(times, r_fps, scn.duration_s), 0.0)
    amb = scn.ambient_c.sample(times, r_amb, scn.duration_s)
    load = np.clip(scn.load.sample(times, r_load, scn.duration_s), 0.0, 0.95)
    if scn.arrivals == "poisson":
        n_arr = r_arr.poisson(fps * dt).astype(np.int64)
    else:
        cum = np.floor(np.cumsum(fps * dt) + 1e-9)
        n_arr = np.diff(np.concatenate(([0.0], cum))).astype(np.int64)
    n_total = int(n_arr.sum())
    sig = scn.jitter_sigma
    jitter = r_jit.lognormal(-0.5 * sig * sig, sig, size=n_total) if sig > 0 else np.ones(n_total)
    jit_list = jitter.tolist()
    loadfac = (1.0 / (1.0 - dc.contention * load)).tolist()
    n_arr_l = n_arr.tolist()
    amb_l = amb.tolist()
    load_l = load.tolist()

    # battery, plug events per tick
    bspec = scn.battery
    battery = None
    plug_at: dict[int, bool] = {}
    if bspec is not None:
        battery = Battery(bspec.capacity_wh, bspec.soc, bspec.peukert, bspec.rated_hours, bspec.plugged,
                          bspec.charge_power_w)  # fmt: skip
        for ev in bspec.events:
            k = int(math.ceil(ev.at_s / dt - 1e-9))
            if k < n_ticks:
                plug_at[k] = ev.plugged
    soc0 = battery.soc if battery is not None else None
    ever_plugged = bool(battery is not None and (battery.plugged or any(plug_at.values())))

    t_crit = dc.t_crit_c
    thermal = ThermalModel(dc.r_k_per_w, dc.c_j_per_k, amb_l[0] if n_ticks else 25.0,
                           scn.thermal.start_c)  # fmt: skip
    feed = SensorFeed()
    base = dev.base_latency_s
    accs = dev.accuracy
    has_acc = all(a is not None for a in accs)
    idle = dc.idle_power_w
    bg_w = dc.background_power_w
    p_act_cache: dict[float, float] = {}
    deadline_ms = scn.deadline_ms

    lv_arr = np.zeros(n_ticks, dtype=np.int16)
    f_arr = np.zeros(n_ticks, dtype=np.float32)
    temp_arr = np.zeros(n_ticks, dtype=np.float32)
    soc_arr = np.zeros(n_ticks, dtype=np.float32)
    pow_arr = np.zeros(n_ticks, dtype=np.float32)
    svc_arr = np.zeros(n_ticks, dtype=np.float64)
    nproc_arr = np.zeros(n_ticks, dtype=np.int64)

    level = lad.full
    f_req = 1.0
    last_power = idle
    last_util = 0.0
    last_own = 0.0
    window: deque[float] = deque(maxlen=LATENCY_WINDOW)
    recent: tuple[float, ...] = ()
    slots = 0.0
    j = 0  # next jitter index (processed frames)
    energy = 0.0
    above = 0.0
    max_t = thermal.temperature_c
    switches = fswitches = errors = 0
    acc_sum = 0.0
    lvl_sum = 0.0
    died_at: float | None = None
    k_end = n_ticks
    prev_f_req = f_req
    safe = pol.safe_index(lad)
    upd = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=n_ticks, unit="tick", leave=False, mininterval=0.5)
        upd = bar.update
    elif callable(progress):
        upd = progress
    step_every = max(1, n_ticks // 200)

    for k in range(n_ticks):
        t = k * dt
        if battery is not None and k in plug_at:
            battery.plugged = plug_at[k]
        temp = thermal.temperature_c
        if battery is not None:
            feed.push(t, cpu_percent=last_util, own_cpu_percent=last_own, battery_percent=battery.soc * 100.0,
                      plugged=battery.plugged,
                      battery_power_w=0.0 if battery.plugged else last_power, temperature_c=temp,
                      power_w=last_power)  # fmt: skip
        else:
            feed.push(
                t,
                cpu_percent=last_util,
                own_cpu_percent=last_own,
                plugged=True,
                temperature_c=temp,
                power_w=last_power,
            )
        readings = feed.read()
        stats = RuntimeStats(
            now=t, level=level, latencies_ms=recent, deadline_ms=deadline_ms, frequency=f_req
        )
        try:
            dec: Decision = pol.decide(readings, stats, lad)
            new_level = dec.level
            if isinstance(new_level, bool) or not isinstance(new_level, (int, np.integer)):
                raise TypeError(f"level {new_level!r} is not an int")
            new_level = lad.clamp(new_level)  # the runner clamps an out-of-range level
            if dec.frequency is not None:
                f_req = dev.snap_frequency(dec.frequency)
        except Exception:  # noqa: BLE001 - the runner falls back to the safe level, so does the sim
            errors += 1
            new_level = safe
        if new_level != level:
            if k:  # the first decision sets the starting level; it is not a switch
                switches += 1
            level = new_level
        # throttling caps the frequency at the tick's starting temperature
        f_eff = f_req
        if temp > dc.t_trip_c:
            f_eff = min(f_req, dev.throttle_cap(temp))
        if f_req != prev_f_req:
            if k:
                fswitches += 1
            prev_f_req = f_req
        svc = base[level] / f_eff * loadfac[k]
        n = n_arr_l[k]
        slots += dt / svc
        n_proc = n if n <= slots else int(slots)
        slots -= n_proc
        if slots > 1.0:
            slots = 1.0
        busy = n_proc * svc / dt
        if busy > 1.0:
            busy = 1.0
        p_act = p_act_cache.get(f_eff)
        if p_act is None:
            p_act = p_act_cache[f_eff] = dev.active_power_w(f_eff)
        u = load_l[k]
        power = idle + busy * (p_act - idle) + u * bg_w
        ran = dt
        if battery is not None:
            ran = battery.drain(power, dt)
        energy += power * ran
        t_new = thermal.step(power, ran, amb_l[k])
        if t_new > t_crit or temp > t_crit:
            if t_new > t_crit and temp > t_crit:
                above += ran
            elif t_new > t_crit:
                above += ran * (t_new - t_crit) / (t_new - temp)
            else:
                above += ran * (temp - t_crit) / (temp - t_new)
        if t_new > max_t:
            max_t = t_new
        if n_proc:
            m = n_proc if n_proc < LATENCY_WINDOW else LATENCY_WINDOW
            s_ms = svc * 1000.0
            window.extend([s_ms * x for x in jit_list[j + n_proc - m : j + n_proc]])
            recent = tuple(window)
            j += n_proc
            if has_acc:
                acc_sum += accs[level] * n_proc
            lvl_sum += level * n_proc
        last_power = power
        last_own = 100.0 * busy * (1.0 - u)
        last_util = 100.0 * min(1.0, u + busy * (1.0 - u))
        lv_arr[k] = level
        f_arr[k] = f_eff
        temp_arr[k] = t_new
        pow_arr[k] = power
        svc_arr[k] = svc
        nproc_arr[k] = n_proc
        if battery is not None:
            soc_arr[k] = battery.soc
            if ran < dt:
                died_at = t + ran
                if scn.stop_when_empty:
                    k_end = k + 1
                    break
        if upd is not None and k % step_every == step_every - 1:
            upd(step_every) if progress is True else upd(k + 1, n_ticks)
    if progress is True:
        bar.close()

    # ---- metrics ------------------------------------------------------------------------------------
    ke = k_end
    svc_a, np_a, na_a = svc_arr[:ke], nproc_arr[:ke], n_arr[:ke]
    lat_ms = np.repeat(svc_a * 1000.0, np_a) * jitter[: int(np_a.sum())]
    dropped_per_tick = na_a - np_a
    arrived = int(na_a.sum())
    processed = int(np_a.sum())
    dropped = int(dropped_per_tick.sum())
    p95 = float(np.percentile(lat_ms, 95)) if processed else float("inf")
    misses = int(np.count_nonzero(lat_ms > deadline_ms)) + dropped
    miss_pct = 100.0 * misses / arrived if arrived else 0.0
    windows_ok = _windows_ok_pct(lat_ms, np_a, dropped_per_tick, times[:ke], deadline_ms)
    simulated = died_at if died_at is not None else min(float(scn.duration_s), ke * dt)
    if battery is not None:
        if died_at is not None:
            life, projected = died_at, False
        elif not ever_plugged and soc0 is not None and soc0 - battery.soc > 1e-9:
            life, projected = simulated * soc0 / (soc0 - battery.soc), True
        else:
            life, projected = None, False
    else:
        life, projected = None, False
    trace = {}
    if record:
        trace = {
            "t": times[:ke], "level": lv_arr[:ke], "frequency": f_arr[:ke], "temperature_c": temp_arr[:ke],
            "soc": soc_arr[:ke] if battery is not None else None, "power_w": pow_arr[:ke],
            "latency_ms": svc_a * 1000.0, "fps": fps[:ke], "load": load[:ke], "ambient_c": amb[:ke],
            "arrived": na_a, "processed": np_a,
        }  # fmt: skip
        trace = {k: v for k, v in trace.items() if v is not None}
    return SimResult(
        policy=str(getattr(pol, "name", type(pol).__name__)),
        scenario=scn.name,
        device=dc.name,
        seed=seed,
        duration_s=float(scn.duration_s),
        simulated_s=float(simulated),
        battery_life_s=None if life is None else float(life),
        battery_life_projected=projected,
        final_soc=None if battery is None else float(battery.soc),
        time_above_tcrit_s=float(above),
        t_crit_c=float(t_crit),
        max_temperature_c=float(max_t),
        p95_latency_ms=p95,
        deadline_ms=float(deadline_ms),
        deadline_miss_pct=float(miss_pct),
        windows_ok_pct=float(windows_ok),
        mean_accuracy=(acc_sum / processed) if (has_acc and processed) else None,
        level_switches=switches,
        frequency_switches=fswitches,
        energy_j=float(energy),
        frames_arrived=arrived,
        frames_processed=processed,
        frames_dropped=dropped,
        mean_level=(lvl_sum / processed) if processed else float("nan"),
        policy_errors=errors,
        assumptions=dc.assumptions,
        trace=trace,
        level_table=dev.table(),
    )


def _windows_ok_pct(lat_ms: np.ndarray, nproc: np.ndarray, dropped: np.ndarray, tick_t: np.ndarray,
                    deadline_ms: float, window_s: float = 1.0) -> float:  # fmt: skip
    """Share of windows (aligned to ticks) whose p95 latency, dropped frames counting as ∞, meets the deadline."""
    if lat_ms.size + int(dropped.sum()) == 0:
        return 100.0
    win_tick = np.floor(tick_t / window_s + 1e-9).astype(np.int64)
    win = np.concatenate((np.repeat(win_tick, nproc), np.repeat(win_tick, dropped)))
    lat = np.concatenate((lat_ms, np.full(int(dropped.sum()), np.inf)))
    order = np.lexsort((lat, win))
    win_s, lat_s = win[order], lat[order]
    starts = np.flatnonzero(np.r_[True, win_s[1:] != win_s[:-1]])
    counts = np.diff(np.r_[starts, win_s.size])
    idx = starts + np.ceil(0.95 * counts).astype(np.int64) - 1
    ok = lat_s[idx] <= deadline_ms
    return 100.0 * float(ok.mean())
