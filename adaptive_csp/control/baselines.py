"""Baselines that presets must beat, written as ordinary :class:`Policy` objects.

* ``static-max`` / ``static-min``: always the full / the cheapest level at f_max.
* ``ondemand``: a Linux-ondemand-like DVFS governor (the OS's answer, no model adaptation): the model
  stays at a fixed level (full by default); each decision reads CPU utilisation and, above the 80 %
  ``up_threshold``, jumps to f_max, otherwise sets ``f = f_min + util·(1 − f_min)`` (ondemand's
  proportional rule).  See FACTS.md "Governor and thermal reference constants".
* ``unity``: an indexer in the style of Unity Adaptive Performance: a thermal tracker (thermal level from
  temperature, warning/throttling thresholds, least-squares trend) and a performance tracker (frame-time
  overrun averaged: ≥ 15 % decrease, ≥ 30 % fast decrease) vote; the level moves one step at a time,
  then waits 10 s (thermal) / 4 s (performance) before the next action, halved after a fast decrease;
  with no pressure it raises one step per thermal delay.  Unity averages 120 per-frame samples (4 s at
  30 fps); here each decision adds one sample (the mean of the newest 8 latencies of the rolling window)
  and the average runs over the last ``perf_window_s`` = 4 s, so the baseline behaves the same whether it
  is called per frame (the runner) or per 0.5 s tick (the simulator).

All take time only from ``RuntimeStats.now``; ``BASELINES`` maps names to factories accepting overrides.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from adaptive_csp.control.policy import Decision, Policy, RuntimeStats
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sensors.readings import Readings

__all__ = ["StaticPolicy", "StaticMax", "StaticMin", "OndemandGovernor", "UnityIndexer", "BASELINES"]


class StaticPolicy(Policy):
    """Always the same level (index; negative counts from the full end) and frequency."""

    name = "static"

    def __init__(self, level: int = -1, frequency: float | None = 1.0, name: str | None = None):
        self.level = int(level)
        self.frequency = frequency
        self.safe_level = self.level
        if name:
            self.name = name

    def decide(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> Decision:
        return Decision(ladder.clamp(self.level % len(ladder)), "static", self.frequency)


class StaticMax(StaticPolicy):
    name = "static-max"

    def __init__(self, frequency: float | None = 1.0):
        super().__init__(-1, frequency)


class StaticMin(StaticPolicy):
    name = "static-min"

    def __init__(self, frequency: float | None = 1.0):
        super().__init__(0, frequency)


class OndemandGovernor(Policy):
    """Linux-ondemand-like frequency governor over a fixed model level."""

    name = "ondemand"

    def __init__(
        self, up_threshold: float = 80.0, f_min: float = 0.3, level: int = -1, sampling_down_factor: int = 1
    ):
        if not 0 < up_threshold <= 100:
            raise ValueError("up_threshold must be in (0, 100]")
        if not 0 < f_min <= 1:
            raise ValueError("f_min must be in (0, 1]")
        self.up_threshold = float(up_threshold)
        self.f_min = float(f_min)
        self.level = int(level)
        self.safe_level = self.level
        self.sampling_down_factor = max(1, int(sampling_down_factor))
        self.reset()

    def reset(self) -> None:
        self._f = 1.0
        self._hold = 0

    def decide(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> Decision:
        level = ladder.clamp(self.level % len(ladder))
        util = readings.cpu_percent
        if util is None:
            self._f = 1.0
            return Decision(level, "ondemand: no utilisation reading, f_max", 1.0)
        if util > self.up_threshold:
            self._f = 1.0
            self._hold = self.sampling_down_factor  # stay at max this many samples
            return Decision(level, f"ondemand: util {util:.0f}% > {self.up_threshold:.0f}%, f_max", 1.0)
        if self._hold > 1:
            self._hold -= 1
            return Decision(level, "ondemand: sampling-down hold", self._f)
        self._f = self.f_min + util / 100.0 * (1.0 - self.f_min)
        return Decision(level, f"ondemand: util {util:.0f}%, f={self._f:.2f}", self._f)


STALE, INCREASE, DECREASE, FAST_DECREASE = "stale", "increase", "decrease", "fast-decrease"


class UnityIndexer(Policy):
    """Unity-Adaptive-Performance-style indexer over the ladder (one step per action)."""

    name = "unity"

    def __init__(
        self,
        thermal_action_delay_s: float = 10.0,
        performance_action_delay_s: float = 4.0,
        t_warning_c: float = 70.0,
        t_throttle_c: float = 80.0,
        trend_window_s: float = 30.0,
        trend_scale_c_per_s: float = 1.0,
        perf_window_s: float = 4.0,
        frame_time_samples: int = 8,
        target_ms: float | None = None,
    ):
        if not t_warning_c < t_throttle_c:
            raise ValueError("t_warning_c must be below t_throttle_c")
        self.thermal_delay = float(thermal_action_delay_s)
        self.perf_delay = float(performance_action_delay_s)
        self.t_warning = float(t_warning_c)
        self.t_throttle = float(t_throttle_c)
        self.trend_window = float(trend_window_s)
        self.trend_scale = float(trend_scale_c_per_s)
        self.perf_window = float(perf_window_s)
        self.frame_time_samples = max(1, int(frame_time_samples))
        self.target_ms = target_ms
        self.safe_level = 0
        self.reset()

    def reset(self) -> None:
        self._level: int | None = None
        self._temps: deque[tuple[float, float]] = deque()
        self._overrun: deque[tuple[float, float]] = deque()
        self._last_now: float | None = None
        self._wait = self.thermal_delay

    # trackers ----------------------------------------------------------------------------------------
    def _trend(self) -> float:
        n = len(self._temps)
        if n < 2:
            return 0.0
        mt = sum(t for t, _ in self._temps) / n
        mv = sum(v for _, v in self._temps) / n
        den = sum((t - mt) ** 2 for t, _ in self._temps)
        if den <= 0:
            return 0.0
        slope = sum((t - mt) * (v - mv) for t, v in self._temps) / den
        return max(-1.0, min(1.0, slope / self.trend_scale))

    def _thermal_action(self, temp: float | None, now: float) -> str:
        if temp is None:
            return STALE
        self._temps.append((now, temp))
        while self._temps and self._temps[0][0] < now - self.trend_window:
            self._temps.popleft()
        trend = self._trend()
        if temp >= self.t_throttle:
            return FAST_DECREASE
        if temp >= self.t_warning:
            if temp > (self.t_warning + self.t_throttle) / 2:
                return DECREASE
            if trend <= 0:
                return STALE
            return FAST_DECREASE if trend > 0.5 else DECREASE
        if trend <= 0:
            return INCREASE
        if trend > 0.5:
            return FAST_DECREASE
        if trend > 0.1:
            return DECREASE
        return STALE

    def _performance_action(self, stats: RuntimeStats) -> str:
        target = self.target_ms or stats.deadline_ms
        lat = stats.latencies_ms
        if target and lat:
            newest = lat[-self.frame_time_samples :]
            self._overrun.append((stats.now, sum(newest) / len(newest) / target - 1.0))
        while self._overrun and self._overrun[0][0] < stats.now - self.perf_window:
            self._overrun.popleft()
        if not self._overrun:
            return STALE
        trend = sum(v for _, v in self._overrun) / len(self._overrun)
        if trend >= 0.30:
            return FAST_DECREASE
        if trend >= 0.15:
            return DECREASE
        return STALE

    def decide(self, readings: Readings, stats: RuntimeStats, ladder: LevelLadder) -> Decision:
        if self._level is None:
            self._level = ladder.full
        level = ladder.clamp(self._level)
        dt = 0.0 if self._last_now is None else max(0.0, stats.now - self._last_now)
        self._last_now = stats.now
        thermal = self._thermal_action(readings.temperature_c, stats.now)
        perf = self._performance_action(stats)
        self._wait = max(0.0, self._wait - dt)
        if self._wait > 0:
            return Decision(level, f"unity: waiting ({thermal}/{perf})")
        if perf == STALE and thermal in (INCREASE, STALE):
            self._wait = self.thermal_delay
            self._level = ladder.clamp(level + 1)
            return Decision(self._level, f"unity: thermal {thermal}, performance stale: raise")
        if thermal == DECREASE or perf == DECREASE:
            self._wait = self.thermal_delay if thermal == DECREASE else self.perf_delay
            self._level = ladder.clamp(level - 1)
            return Decision(self._level, f"unity: thermal {thermal}, performance {perf}: lower")
        if thermal == FAST_DECREASE or perf == FAST_DECREASE:
            self._wait = (self.thermal_delay if thermal == FAST_DECREASE else self.perf_delay) / 2
            self._level = ladder.clamp(level - 1)
            return Decision(self._level, f"unity: thermal {thermal}, performance {perf}: fast lower")
        return Decision(level, f"unity: hold ({thermal}/{perf})")


BASELINES: dict[str, Callable[..., Policy]] = {
    "static-max": StaticMax,
    "static-min": StaticMin,
    "ondemand": OndemandGovernor,
    "unity": UnityIndexer,
}
