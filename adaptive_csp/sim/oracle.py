"""A clairvoyant oracle and the best static level in hindsight, for measuring how good a policy's picks are.

The oracle knows a scenario's traces in advance (frame arrivals, background load, ambient temperature) and
chooses, per decision tick, a level (and optionally a frame interval) to maximise the **accuracy of frames
answered in time**: the expected number of right answers delivered within the deadline, divided by the
frames that arrived ("right and on time", :attr:`SimResult.on_time_accuracy`).  Constraints:

* energy: total board energy ≤ ``energy_budget_j``, or (battery scenarios) the pack lasts at least
  ``min_lifetime_s``;
* heat: no time above the scenario's scored limit (``t_crit_c``): every tick ends at or below it;
* misses: at most ``max_misses`` late or dropped frames.

Method
------
Per tick ``k`` and option ``o`` the simulator's own models (:meth:`World.service_s`,
:meth:`DeviceModel.power_w`, :meth:`DeviceModel.throttle_cap`, :class:`ThermalModel`,
:meth:`Battery.effective_power`) give the expected frames run (``min(wanted, dt / service)``), the chance
each is on time under the scenario's log-normal jitter (the oracle knows the traces, not the jitter draws:
it maximises the expected count), the energy and the next temperature.

1. **Lagrangian relaxation of energy** (and of misses when capped, with bisection on that multiplier μ):
   maximise ``value − λ·energy − μ·misses``; the budget is met by **bisection on λ** (batched: a geometric
   grid of multipliers, refined around the bracket three times).  For every (untilted, see 3) multiplier
   tried, ``L(λ) + λ·budget`` is an upper bound on the constrained optimum; the least of them is reported
   as :attr:`OracleResult.dual_bound`.  A lifetime target is the same with the pack's Peukert-corrected
   drain over the target's ticks in place of energy.
2. **Exact per tick where heat cannot reach the limit**: when even the hottest option held every tick never
   heats the device to its trip point (temperature is monotone in power), ticks decouple and the
   Lagrangian is an argmax per tick.  The switching cost is then handled by a Viterbi pass whose state is
   the level of the last frame run, and the multiple-choice-knapsack rounding spends what the budget leaves
   on the ticks whose choice flips at the bracketing multiplier, best value per joule first (for a target
   accuracy: the fewest such ticks that reach it).
3. **Backward dynamic programming over a discretised temperature** where it can: the state is the
   temperature on a grid (``grid_c`` °C) up to the scored limit, the stages are ``dp_step_s`` long (an
   option held through a stage; the thermal step is exact for it); the value function is interpolated
   linearly and a transition ending above the limit is infeasible.  The multiplier is tilted by ±1 %
   across the horizon (``TILT``) so that stages tied at one λ are taken in order instead of all at once;
   the slack left under the budget is then spent by running the next richer multiplier's rule for a first
   part of the horizon (split point by bisection on replays).  The schedule is played forward through
   :func:`~adaptive_csp.sim.simulate` at the exact temperature, each tick holding the best option to its
   stage's end and then following the stored value function, so the limit is checked exactly.
4. **Switching cost**: the simulator charges it (:data:`~adaptive_csp.sim.device.SWITCH_COST`) and so does
   every number reported here, because each schedule is replayed through :func:`simulate`.  The dual bound
   relaxes it (so it stays a bound); per tick the Viterbi pass pays it, in the DP the forward pass does.
5. The replays of the static levels the model finds feasible are candidates too: where one beats the
   schedule in replay (whole frames against the model's expected ones), it is the answer.

Every reported number (accuracy, energy, lifetime, misses, time above the limit) comes from replaying the
chosen schedule through :func:`simulate`, so it is what the simulator says.  The dual bound is of the
relaxed (switch-free, and in the DP case grid-discretised) problem: the gap ``dual_bound − accuracy`` says
how close to optimal the oracle is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_csp.control.policy import Decision, Policy
from adaptive_csp.levels import LevelLadder
from adaptive_csp.sim.device import DeviceClass
from adaptive_csp.sim.scenario import load_scenario
from adaptive_csp.sim.simulate import SimResult, resolve_ladder, simulate
from adaptive_csp.sim.thermal import ThermalModel
from adaptive_csp.sim.world import ScenarioTraces, World, device_for

__all__ = ["OracleResult", "OracleProblem", "oracle", "best_static"]

_NEG = -1e18  # infeasible value (finite, so interpolation stays finite)
TIGHTEN_MIN = 1e-3  # solve(): least budget step (fraction of the budget) when a replay overruns it
TILT = 0.02  # DP: spread of the per-block multiplier that orders blocks tied at one λ (see _tilt)


@dataclass
class OracleResult:
    """A schedule and what the simulator made of it (``sim``: the replay's :class:`SimResult`)."""

    name: str
    accuracy: float  # right and on time: expected right answers within the deadline / frames arrived
    mean_accuracy: float | None  # the simulator's accuracy of answered frames
    energy_j: float
    lifetime_s: float | None
    misses: int
    seconds_above_limit: float
    dual_bound: float | None  # upper bound on ``accuracy`` under the same constraints (None: not computed)
    feasible: bool  # every constraint met in the replay
    method: str  # "per-tick", "dp" or "static"
    levels: np.ndarray = field(repr=False)  # level per tick
    intervals: np.ndarray = field(repr=False)  # frame interval per tick
    multiplier: float = 0.0  # λ of the final schedule
    sim: SimResult | None = field(default=None, repr=False)

    @property
    def switches(self) -> int:
        return 0 if self.sim is None else self.sim.level_switches


def _phi(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7)."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.where(z >= 0, erf, -erf))


class _Schedule(Policy):
    """Plays a schedule through the simulator: fixed per tick, or chosen at the exact temperature (DP)."""

    name = "oracle"

    def __init__(self, dt: float, levels: np.ndarray, intervals: np.ndarray, chooser: Any = None, name: str = "oracle"):
        self.dt, self.levels, self.intervals, self.chooser, self.name = dt, levels, intervals, chooser, name
        self.played: list[int] = []

    def reset(self) -> None:
        self.played = []

    def decide(self, readings, stats, ladder) -> Decision:
        k = min(int(round(stats.now / self.dt)), len(self.levels) - 1)
        if self.chooser is not None:
            o = self.chooser(k, readings.temperature_c, stats.level)
            self.played.append(o)
            lv, iv = self.chooser.options[o]
        else:
            lv, iv = int(self.levels[k]), int(self.intervals[k])
        return Decision(lv, self.name, frame_interval=iv)


class OracleProblem:
    """One scenario's traces and option terms, shared by every oracle run on it (multipliers are cached).

    ``intervals``: the frame intervals the oracle may choose (1 = every frame).  ``grid_c``: the
    temperature step of the DP.  Build once, then call :meth:`at_energy`, :meth:`at_lifetime`,
    :meth:`at_accuracy`, :meth:`best_static`.
    """

    def __init__(self, scenario: Any, ladder: LevelLadder | str | Path | None = None,
                 device: str | DeviceClass | None = None, *, seed: int | None = None,
                 intervals: tuple[int, ...] = (1,), grid_c: float = 0.2, dp_step_s: float = 5.0,
                 duration_s: float | None = None):  # fmt: skip
        scn = load_scenario(scenario)
        if duration_s is not None:
            scn = scn.with_(duration_s=float(duration_s))
        if not intervals or any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in intervals):
            raise ValueError(f"intervals must be ints >= 1, got {intervals!r}")
        if not grid_c > 0:
            raise ValueError("grid_c must be > 0")
        self.scn, self.lad = scn, resolve_ladder(ladder)
        self.device_arg = device
        self.dev = device_for(scn, self.lad, device)
        if any(a is None for a in self.dev.accuracy):
            raise ValueError("the oracle needs an accuracy for every rung of the ladder")
        self.seed = scn.seed if seed is None else int(seed)
        self.tr = ScenarioTraces.sample(scn, self.seed)
        self.dt, self.grid_c, self.dp_step_s = self.tr.dt, float(grid_c), float(dp_step_s)
        self.tilt = 0.0  # DP only: see _tilt
        self.options = [(lv, iv) for iv in sorted(set(intervals)) for lv in range(len(self.lad))]
        self.world = World(scn, self.dev, ambient_c=float(self.tr.ambient_c[0]) if len(self.tr) else None)
        self._terms()
        self.heat = self._heat_reachable()
        self._grid()
        if self.heat:
            self._blocks()
            self.tilt = TILT
        self._cache: dict[float, dict] = {}

    # option terms ----------------------------------------------------------------------------------
    def _terms(self) -> None:
        """Per (tick, option) arrays at f_max unthrottled: service s, wanted frames, skipped right answers."""
        w, dev, tr = self.world, self.dev, self.tr
        cold = w.dev.device.t_trip_c - 1.0
        lv = np.array([o[0] for o in self.options])
        iv = np.array([o[1] for o in self.options], dtype=float)
        loads = np.unique(tr.load)
        lf = {u: w.service_s(0, 1.0, float(u), cold)[0] / dev.base_latency_s[0] for u in loads}
        h = np.array([lf[u] for u in tr.load])
        self.svc0 = h[:, None] * np.asarray(dev.base_latency_s)[lv][None, :]  # (K, O)
        n = tr.arrivals.astype(float)
        self.n = n
        self.wanted = n[:, None] / iv[None, :]
        self.acc = np.asarray(dev.accuracy, dtype=float)[lv]
        hold = self.scn.scene_hold_s
        stale = np.zeros((len(tr), len(self.options)))
        if hold > 0:
            fps = np.maximum(tr.fps, 1e-9)
            for j, i in enumerate(iv.astype(int)):
                if i > 1:
                    ages = np.arange(1, i)[None, :] / (fps[:, None] * hold)
                    stale[:, j] = np.exp(-ages).mean(axis=1)
        self.skip_right = (n[:, None] - self.wanted) * self.acc[None, :] * stale
        self.base_power = np.array([dev.power_w(0.0, 1.0, float(u)) for u in tr.load])  # idle + background
        self.N = float(n.sum())
        self.lv = lv

    def _frame_terms(self, wanted, skip_right, base_power, svc, pex, acc, whole=False):
        """(value, misses, energy, power) at service times ``svc`` (all arguments broadcast together).

        Frames run per tick are ``dt / svc`` as a fluid, the long-run mean of the simulator's whole frames
        with their carried slot; where ``whole`` (the first tick: nothing carried in yet) they are whole,
        ``floor(dt / svc)``, as the simulator runs them, so that a slow level's fewer frames at the start
        are costed as run."""
        dt = self.dt
        slots = dt / svc
        nproc = np.minimum(wanted, np.where(whole, np.floor(slots + 1e-9), slots))
        busy = np.minimum(1.0, nproc * svc / dt)
        p_on = self._p_on(svc)
        value = nproc * acc * p_on + skip_right
        misses = wanted - nproc + nproc * (1.0 - p_on)
        power = base_power + busy * pex
        return value, misses, power * dt, power

    def _p_on(self, svc: np.ndarray) -> np.ndarray:
        """Chance that a call of ``svc`` seconds meets the deadline under the scenario's log-normal jitter."""
        sig, dl = self.scn.jitter_sigma, self.scn.deadline_ms / 1000.0
        if sig > 0:
            return _phi((np.log(dl / svc) + 0.5 * sig * sig) / sig)
        return (svc <= dl).astype(float)

    def _heat_reachable(self) -> bool:
        """Can any schedule reach the trip point?  (The hottest option every tick, from the start.)"""
        dc = self.dev.device
        pex = self.dev.active_power_w(1.0) - dc.idle_power_w
        ks = np.arange(len(self.tr))
        val, miss, energy, power = self._frame_terms(self.wanted, self.skip_right, self.base_power[:, None],
                                                     self.svc0, pex, self.acc[None, :],
                                                     (ks == 0)[:, None])  # fmt: skip
        self.flat = {"value": val, "misses": miss, "energy": energy, "power": power}  # per tick, unthrottled
        pmax = power.max(axis=1)
        th = ThermalModel(dc.r_k_per_w, dc.c_j_per_k, float(self.tr.ambient_c[0]) if len(ks) else 25.0,
                          self.scn.thermal.start_c)  # fmt: skip
        hottest = th.temperature_c
        for p, a in zip(pmax.tolist(), self.tr.ambient_c.tolist(), strict=True):
            hottest = max(hottest, th.step(p, self.dt, a))
        return hottest > dc.t_trip_c

    def _grid(self) -> None:
        """The DP's temperature grid up to the scored limit, with the throttled speed and power at each point."""
        dc = self.dev.device
        self.t_hi = float(dc.t_crit_c)
        if not self.heat:
            self.tg = np.array([self.t_hi])
            return
        start = self.world.thermal.temperature_c
        lo = min(start, float(self.tr.ambient_c.min())) - self.grid_c
        g = int(math.ceil((self.t_hi - lo) / self.grid_c)) + 1
        self.tg = self.t_hi - self.grid_c * np.arange(g)[::-1]
        f = np.array([self.dev.effective_frequency(1.0, float(t)) for t in self.tg])
        self.slow = 1.0 / f  # service-time factor of throttling
        self.pex = np.array([self.dev.active_power_w(float(x)) for x in f]) - dc.idle_power_w

    def _thermal(self, temperature) -> ThermalModel:
        dc = self.dev.device
        return ThermalModel(dc.r_k_per_w, dc.c_j_per_k, 25.0, temperature)

    # per tick (heat cannot reach the trip) -------------------------------------------------------------
    def _cost(self, lifetime: bool) -> np.ndarray:
        if not lifetime:
            return self.flat["energy"]
        if "drain" not in self.flat:
            b = self.world.battery
            self.flat["drain"] = b.effective_power(self.flat["power"]) * self.dt
        return self.flat["drain"]

    def _per_tick(self, lam: float, mu: float, lifetime: bool, horizon: int) -> dict:
        """Argmax of value − λ·cost − μ·misses per tick (a level is held through ticks without frames)."""
        f, cost = self.flat, self._cost(lifetime)
        r = f["value"] - lam * cost - mu * f["misses"]
        choice = np.argmax(r, axis=1)
        idle = self.n == 0
        if idle.any():
            idx = np.where(idle, -1, np.arange(len(choice)))
            idx = np.maximum.accumulate(idx)
            choice = np.where(idx >= 0, choice[np.maximum(idx, 0)], choice)
        return self._totals(choice, r, lam, mu, lifetime, horizon)

    def _totals(self, choice, r, lam, mu, lifetime, horizon) -> dict:
        f, ks = self.flat, np.arange(len(choice))
        cost = self._cost(lifetime)[ks, choice]
        end = len(choice)
        if lifetime:
            cap = self.world.battery.soc * self.world.battery.capacity_wh * 3600.0
            dead = np.nonzero(np.cumsum(cost) > cap)[0]
            end = int(dead[0]) if dead.size else len(choice)
        sl = slice(0, end)
        lv = self.lv[choice]
        sw = np.nonzero((lv[1:] != lv[:-1]) & (self.n[1:] > 0))[0] + 1
        sw_j = float((self.dev.switch_cost * self.svc0[sw, choice[sw]] * (self.dev.active_power_w(1.0)
                                                                     - self.dev.device.idle_power_w)).sum())
        h = min(horizon, len(choice))
        lag = float(r[:h].max(axis=1).sum())
        return {"choice": choice, "value": float(f["value"][ks, choice][sl].sum()),
                "n": float(self.n[sl].sum()), "cost": float(cost[:h].sum()) + (0.0 if lifetime else sw_j),
                "energy": float(f["energy"][ks, choice][sl].sum()) + sw_j, "end": end,
                "misses": float(f["misses"][ks, choice][sl].sum()), "lagrangian": lag}  # fmt: skip

    # DP over temperature (heat can reach the trip) ------------------------------------------------------
    def _blocks(self) -> None:
        """DP stages of ``dp_step_s``: per block, option sums of the unthrottled terms and the mean ambient."""
        m = max(1, int(round(self.dp_step_s / self.dt)))
        starts = np.arange(0, len(self.tr), m)
        self.bstart = starts
        self.bend = np.append(starts[1:], len(self.tr))
        self.bsum = {k: np.add.reduceat(v, starts, axis=0) for k, v in self.flat.items() if k != "power"}
        self.bamb = np.add.reduceat(self.tr.ambient_c, starts) / (self.bend - starts)
        self.hot = np.nonzero(self.slow > 1.0)[0]  # grid points above the trip: throttled

    def _block_terms(self, b: int, temps: np.ndarray, hot: np.ndarray, first: int | None = None):
        """(value, misses, energy, next temperature) of holding each option from tick ``first`` (default: the
        block's start) to the block's end, from each temperature in ``temps`` (index ``hot``: throttled)."""
        s0, e0 = self.bstart[b], self.bend[b]
        s0 = s0 if first is None else first
        o, g = len(self.options), len(temps)
        if first is None:
            val, miss, en = (np.repeat(self.bsum[k][b][:, None], g, axis=1) for k in ("value", "misses", "energy"))
        else:
            val, miss, en = (np.repeat(self.flat[k][s0:e0].sum(axis=0)[:, None], g, axis=1)
                             for k in ("value", "misses", "energy"))  # fmt: skip
        if hot.size:
            slow, pex = self.slow_at(temps[hot])
            ks = np.arange(s0, e0)
            v, mi, e, _ = self._frame_terms(self.wanted[ks][:, :, None], self.skip_right[ks][:, :, None],
                                            self.base_power[ks][:, None, None],
                                            self.svc0[ks][:, :, None] * slow[None, None, :], pex[None, None, :],
                                            self.acc[None, :, None], (ks == 0)[:, None, None])  # fmt: skip
            val[:, hot], miss[:, hot], en[:, hot] = v.sum(0), mi.sum(0), e.sum(0)
        span = (e0 - s0) * self.dt
        th = self._thermal(np.broadcast_to(temps[None, :], (o, g)).copy())
        nxt = th.step(en / span, span, float(self.bamb[b]))
        return val, miss, en, nxt

    def slow_at(self, temps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(service-time factor, active-above-idle power) of throttling at each temperature."""
        f = np.array([self.dev.effective_frequency(1.0, float(t)) for t in temps])
        return 1.0 / f, np.array([self.dev.active_power_w(float(x)) for x in f]) - self.dev.device.idle_power_w

    def _tilt(self, b: int) -> float:
        """DP: the multiplier of block ``b`` relative to λ, 1 ± TILT/2 from first to last block.  Where many
        blocks tie at one λ (a jump in the frontier), the tilt orders them, so the search can stop between
        (earlier blocks get the richer option first).  ``tilt = 0`` gives the plain Lagrangian."""
        nb = len(self.bstart)
        return 1.0 + self.tilt * ((b + 0.5) / nb - 0.5)

    def _interp(self, nxt: np.ndarray):
        pos = (nxt - self.tg[0]) / self.grid_c
        i0 = np.clip(np.floor(pos).astype(np.int64), 0, len(self.tg) - 2)
        return i0, np.clip(pos - i0, 0.0, 1.0), nxt <= self.t_hi + 1e-9

    def _dp(self, lams: np.ndarray, mu: float, keep: bool = False) -> list[dict]:
        """Backward DP over blocks for a batch of multipliers; ``keep`` stores the value function of the first
        multiplier at every block boundary for the forward pass."""
        nb, g = len(self.bstart), len(self.tg)
        V = np.zeros((len(lams), g))
        acc = {key: np.zeros((len(lams), g)) for key in ("value", "energy", "misses")}
        stored = np.zeros((nb + 1, g)) if keep else None
        bi, gi = np.arange(len(lams))[:, None], np.arange(g)[None, :]
        for b in range(nb - 1, -1, -1):
            val, miss, energy, nxt = self._block_terms(b, self.tg, self.hot)
            i0, w, ok = self._interp(nxt)
            r = val[None] - (lams * self._tilt(b))[:, None, None] * energy[None] - mu * miss[None]
            q = np.where(ok[None], r + V[:, i0] * (1.0 - w) + V[:, i0 + 1] * w, _NEG)
            o = np.argmax(q, axis=1)
            V = np.take_along_axis(q, o[:, None, :], axis=1)[:, 0, :]
            i0o, wo = i0[o, gi], w[o, gi]
            for key, term in (("value", val), ("energy", energy), ("misses", miss)):
                a = acc[key]
                acc[key] = term[o, gi] + a[bi, i0o] * (1.0 - wo) + a[bi, i0o + 1] * wo
            if keep:
                stored[b] = V[0]
        if keep:
            self._stored = stored
        t0 = self.world.thermal.temperature_c
        out = []
        for j in range(len(lams)):
            lag = float(np.interp(t0, self.tg, V[j]))
            out.append({"lagrangian": lag, "n": self.N, "end": len(self.tr), "feasible_heat": lag > _NEG / 2,
                        **{k: float(np.interp(t0, self.tg, acc[k][j])) for k in acc}})  # fmt: skip
            out[-1]["cost"] = out[-1]["energy"]
        return out

    def _chooser(self, lam: float, mu: float, stored: np.ndarray):
        """The DP's forward rule at the exact temperature: hold an option to the block's end, then V."""
        prob, trip = self, self.dev.device.t_trip_c
        block_of = np.searchsorted(self.bstart, np.arange(len(self.tr)), side="right") - 1

        def choose(k: int, temp: float | None, prev: int) -> int:
            t = float(prob.world.thermal.temperature_c if temp is None else temp)
            b = int(block_of[k])
            hot = np.array([0]) if t > trip else np.array([], dtype=np.int64)
            val, miss, en, nxt = prob._block_terms(b, np.array([t]), hot, first=k)
            val, miss, en, nxt = val[:, 0], miss[:, 0], en[:, 0], nxt[:, 0]
            i0, w, ok = prob._interp(nxt)
            vn = stored[b + 1][i0] * (1.0 - w) + stored[b + 1][i0 + 1] * w
            slow, pex = prob.slow_at(np.array([t]))
            sw = (prob.lv != prev) & (prob.wanted[k] > 0)
            pen = lam * prob.dev.switch_cost * prob.svc0[k] * slow[0] * pex[0] * sw
            q = np.where(ok, val - lam * prob._tilt(b) * en - mu * miss - pen + vn, _NEG)
            o = int(np.argmax(q))
            return o if q[o] > _NEG / 2 else int(np.argmin(nxt))

        choose.options = self.options
        return choose

    # searching the multiplier -------------------------------------------------------------------------
    def _eval(self, lams, mu: float, lifetime: bool, horizon: int) -> list[dict]:
        key = (mu, lifetime, horizon, self.tilt)
        todo = [float(x) for x in lams if (float(x), key) not in self._cache]
        if todo:
            if self.heat:
                if lifetime:
                    raise ValueError("a lifetime target where heat can reach the trip point is not supported")
                res = self._dp(np.array(todo), mu)
            else:
                res = [self._per_tick(x, mu, lifetime, horizon) for x in todo]
            for x, r in zip(todo, res, strict=True):
                r["lam"], r["tilt"] = x, self.tilt
                self._cache[x, key] = r
        return [self._cache[float(x), key] for x in lams]

    def _scale(self) -> float:
        e = self.flat["energy"].max(axis=1).sum()
        return self.N / e if e > 0 else 1.0

    def _search(self, ok, mu: float, lifetime: bool, horizon: int,
                largest: bool = False) -> tuple[dict, dict | None, list[dict]]:  # fmt: skip
        """The least multiplier whose solution satisfies ``ok`` (``largest``: the largest one, for a target
        that holds at small multipliers): ``(best, the bracketing one that fails, all tried)``."""
        seen = self._eval([0.0], mu, lifetime, horizon)
        if ok(seen[0]) and not largest:
            return seen[0], None, seen
        n = 8 if self.heat else 16
        seen += self._eval(self._scale() * np.logspace(-6, 1, n), mu, lifetime, horizon)
        sign = -1.0 if largest else 1.0
        for rnd in range(4):
            good = [r for r in seen if ok(r)]
            if not good:
                return min(seen, key=lambda r: sign * -r["lam"]), None, seen
            best = min(good, key=lambda r: sign * r["lam"])
            bad = [r for r in seen if not ok(r) and sign * r["lam"] < sign * best["lam"]]
            other = min(bad, key=lambda r: -sign * r["lam"]) if bad else None
            if rnd == 3:
                return best, other, seen
            if other is None:
                if not largest or best["lam"] == 0.0:
                    return best, None, seen
                a, z = best["lam"], best["lam"] * 1e3
            else:
                a, z = sorted((best["lam"], other["lam"]))
                a = a if a > 0 else z * 1e-3
            seen += self._eval(np.geomspace(a, z, n + 2)[1:-1], mu, lifetime, horizon)
        raise AssertionError("unreachable")

    def _viterbi(self, lam: float, mu: float, lifetime: bool) -> np.ndarray:
        """Per tick with the switching cost: a backward DP whose state is the level of the last frame run.

        Entering a level from another costs ``switch_cost`` of a call (λ·energy, and the frames it crowds
        out when capacity binds); ticks without frames hold the state."""
        f, c = self.flat, self.dev.switch_cost
        r = f["value"] - lam * self._cost(lifetime) - mu * f["misses"]
        cap = self.dt / self.svc0
        lost = np.clip(self.wanted - (cap - c), 0.0, c)
        p_on = self._p_on(self.svc0)
        pex = self.dev.active_power_w(1.0) - self.dev.device.idle_power_w
        # the first frame at the new level takes (1 + c) calls (the simulator's _latencies_ms): it may be late
        late = np.where(self.wanted > 0, self.acc * (p_on - self._p_on(self.svc0 * (1.0 + c))), 0.0)
        pen = lam * c * self.svc0 * pex + lost * (self.acc * p_on + mu) + np.maximum(late, 0.0)
        live = np.nonzero(self.n > 0)[0]
        K, n_opt = len(self.tr), len(self.options)
        nxt = np.zeros((K, n_opt), dtype=np.int16)
        same = [[q for q in range(n_opt) if self.lv[q] == self.lv[p]] for p in range(n_opt)]
        rows, pens = r.tolist(), pen.tolist()
        V, w = [0.0] * n_opt, [0.0] * n_opt
        for k in live[::-1].tolist():  # plain lists: ~9 options, numpy per tick would be slower
            rk, pk = rows[k], pens[k]
            w = [a + v for a, v in zip(rk, V, strict=True)]
            sw = [a - b for a, b in zip(w, pk, strict=True)]
            j = max(range(n_opt), key=sw.__getitem__)
            best = sw[j]
            row = nxt[k]
            newv = []
            for p in range(n_opt):
                q = p if len(same[p]) == 1 else max(same[p], key=w.__getitem__)
                if w[q] >= best:
                    row[p] = q
                    newv.append(w[q])
                else:
                    row[p] = j
                    newv.append(best)
            V = newv
        o = max(range(n_opt), key=w.__getitem__)  # the first tick with frames sets the level: not a switch
        choice = np.full(K, o, dtype=np.int64)
        for k in live[1:].tolist():
            o = int(nxt[k, o])
            choice[k] = o
        ffill = np.maximum.accumulate(np.where(self.n > 0, np.arange(K), 0))
        return choice[ffill]

    def _switch_aware(self, best, lo, mu, budget, lifetime, horizon, fill) -> np.ndarray:
        """The per-tick schedule with switching costs: Viterbi at the chosen multiplier; when a budget is
        given and the Viterbi schedule overruns it (model), the multiplier is raised until it fits, then
        bisected back (geometric, 5 steps)."""
        if not self.dev.switch_cost:
            return self._fill(best, lo, budget, lifetime, horizon) if fill else best["choice"]

        def run(lam):
            choice = self._viterbi(lam, mu, lifetime)
            t = self._totals(choice, np.zeros((len(choice), 1)), lam, mu, lifetime, horizon)
            fits = t["cost"] <= budget * (1 + 1e-9) and (not lifetime or t["end"] >= horizon)
            ok = not math.isfinite(budget) or fits
            return choice, ok

        lam = best["lam"]
        choice, ok = run(lam)
        if ok:
            return self._fill_between(choice, lo["choice"], budget, lifetime, horizon) if fill and lo else choice
        lo_lam, hi_lam = lam, max(lam, self._scale() * 1e-6)
        for f in (1.05, 1.3, 2.0, 5.0, 20.0, 100.0):  # a feasible start; the fill then spends the rest
            hi_choice, ok = run(hi_lam * f)
            if ok:
                break
        if fill:
            rich = lo["choice"] if lo is not None else self._per_tick(lo_lam, mu, lifetime, horizon)["choice"]
            return self._fill_between(hi_choice, rich, budget, lifetime, horizon)
        return hi_choice

    def _fill_between(self, hi: np.ndarray, lo: np.ndarray, budget, lifetime, horizon) -> np.ndarray:
        """Move ticks from the feasible schedule ``hi`` to ``lo``'s choice, best value per joule first (ties:
        earliest first, so the moved ticks stay together), as far as the budget (switches counted) allows."""
        if not math.isfinite(budget):
            return hi
        ks = np.nonzero(lo != hi)[0]
        ks = ks[ks < horizon]
        cost, val = self._cost(lifetime), self.flat["value"]
        dv = val[ks, lo[ks]] - val[ks, hi[ks]]
        dc = cost[ks, lo[ks]] - cost[ks, hi[ks]]
        keep = dv > 0
        ks, dv, dc = ks[keep], dv[keep], dc[keep]
        order = np.argsort(-np.round(dv / np.maximum(dc, 1e-12), 9), kind="stable")
        ks, dc = ks[order], dc[order]
        zero = np.zeros((len(hi), 1))
        lo_n, hi_n = 0, len(ks)
        while lo_n < hi_n:  # bisection on how many ticks move (switch energy is not monotone per tick)
            mid = (lo_n + hi_n + 1) // 2
            c = hi.copy()
            c[ks[:mid]] = lo[ks[:mid]]
            t = self._totals(c, zero, 0.0, 0.0, lifetime, horizon)
            if t["cost"] <= budget * (1 + 1e-9) and (not lifetime or t["end"] >= horizon):
                lo_n = mid
            else:
                hi_n = mid - 1
        c = hi.copy()
        c[ks[:lo_n]] = lo[ks[:lo_n]]
        return c

    def _fill(self, hi: dict, lo: dict | None, budget: float, lifetime: bool, horizon: int) -> np.ndarray:
        """Per tick: spend what the budget leaves on the ticks whose choice flips between ``hi`` and ``lo``."""
        choice = hi["choice"].copy()
        if lo is None or lifetime:
            return choice
        ks = np.nonzero(lo["choice"] != choice)[0]
        cost, val = self._cost(False), self.flat["value"]
        dv = val[ks, lo["choice"][ks]] - val[ks, choice[ks]]
        dc = cost[ks, lo["choice"][ks]] - cost[ks, choice[ks]]
        keep = dv > 0
        ks, dv, dc = ks[keep], dv[keep], dc[keep]
        order = np.argsort(-(dv / np.maximum(dc, 1e-12)))
        take = np.cumsum(dc[order]) <= budget - hi["cost"]
        sel = ks[order][take]
        choice[sel] = lo["choice"][sel]
        return choice

    # solving ------------------------------------------------------------------------------------------
    def _mode(self, energy_budget_j, min_lifetime_s) -> tuple[bool, float, int]:
        """``(lifetime?, budget, horizon ticks)`` of the constraint asked for."""
        if energy_budget_j is not None and min_lifetime_s is not None:
            raise ValueError("give energy_budget_j or min_lifetime_s, not both")
        if min_lifetime_s is None:
            if energy_budget_j is not None and not energy_budget_j > 0:
                raise ValueError(f"energy_budget_j must be > 0, got {energy_budget_j!r}")
            return False, math.inf if energy_budget_j is None else float(energy_budget_j), len(self.tr)
        b, bs = self.world.battery, self.scn.battery
        if b is None or bs.plugged or bs.events:
            raise ValueError("min_lifetime_s needs a scenario on battery without plug events")
        if not min_lifetime_s > 0:
            raise ValueError(f"min_lifetime_s must be > 0, got {min_lifetime_s!r}")
        h = int(math.ceil(float(min_lifetime_s) / self.dt - 1e-9))
        return True, b.soc * b.capacity_wh * 3600.0, min(h, len(self.tr))

    def _plan(self, ok, mu, lifetime, horizon, budget, fill: bool,
              largest: bool = False) -> tuple[_Schedule, dict, list[dict]]:  # fmt: skip
        best, lo, seen = self._search(ok, mu, lifetime, horizon, largest)
        if self.heat:
            seen = seen + self._untilted([r["lam"] for r in (best, lo) if r is not None], mu)
            self._dp(np.array([best["lam"]]), mu, keep=True)
            sched = _Schedule(self.dt, np.zeros(len(self.tr)), np.zeros(0), self._chooser(best["lam"], mu, self._stored))
            if lo is not None and math.isfinite(budget) and not lifetime:
                sched = self._split(sched, best, lo, mu, budget)
        else:
            choice = self._switch_aware(best, lo, mu, budget, lifetime, horizon, fill)
            sched = _Schedule(self.dt, self.lv[choice], np.array([self.options[c][1] for c in choice]))
        return sched, best, seen

    def _untilted(self, lams: list[float], mu: float) -> list[dict]:
        """Plain-Lagrangian DP runs (no tilt) around the chosen multipliers: their bounds are valid duals."""
        tilt, self.tilt = self.tilt, 0.0
        try:
            pts = sorted(set(lams) | {x * f for x in lams for f in (0.99, 1.01)})
            return self._eval(pts, mu, False, len(self.tr))
        finally:
            self.tilt = tilt

    def _split(self, sched: _Schedule, best: dict, lo: dict, mu: float, budget: float) -> _Schedule:
        """DP: spend the budget's slack by running the richer multiplier's rule (``lo``) for the first part of
        the horizon and ``best``'s after it; the split point by bisection on replays (3 steps)."""
        first = self._replay(sched)
        if first.energy_j >= budget * (1 - 2e-3):
            return sched
        self._dp(np.array([lo["lam"]]), mu, keep=True)
        rich = self._chooser(lo["lam"], mu, self._stored)
        lean = sched.chooser

        def mixed(split: int) -> _Schedule:
            def choose(k, temp, prev):
                return (rich if k < split else lean)(k, temp, prev)

            choose.options = self.options
            return _Schedule(self.dt, np.zeros(len(self.tr)), np.zeros(0), choose)

        a, z, best_s = 0, len(self.tr), sched
        for _ in range(3):
            mid = (a + z) // 2
            cand = mixed(mid)
            if self._replay(cand).energy_j <= budget * (1 + 1e-9):
                a, best_s = mid, cand
            else:
                z = mid
        return best_s

    def _replay(self, policy: Policy) -> SimResult:
        return simulate(policy, self.scn, ladder=self.lad, device=self.device_arg, seed=self.seed)

    def solve(self, energy_budget_j: float | None = None, min_lifetime_s: float | None = None,
              max_misses: float | None = None) -> OracleResult:  # fmt: skip
        """The oracle under an energy budget or a lifetime, a miss cap and the heat limit (module docstring)."""
        lifetime, budget, horizon = self._mode(energy_budget_j, min_lifetime_s)
        if max_misses is not None and not max_misses >= 0:
            raise ValueError(f"max_misses must be >= 0, got {max_misses!r}")
        cap = math.inf if max_misses is None else float(max_misses)
        target = budget
        for attempt in range(6):  # the replay charges switches the model relaxes: tighten the budget, retry
            res, seen, mu, lam = self._solve_mu(target, cap, lifetime, horizon)
            out = self._result(res, seen, budget, lifetime, horizon, min_lifetime_s, cap, mu, lam)
            short = self._shortfall(out, budget, lifetime, min_lifetime_s)
            if short <= 0 or not math.isfinite(budget):
                break
            # a shortfall far below the model's step between plans leaves the plan as it was: step at least
            # TIGHTEN_MIN of the budget, doubling each retry
            target -= max(1.05 * short, TIGHTEN_MIN * budget) * 2**attempt
        return self._or_static(out, budget, lifetime, min_lifetime_s, cap)

    def _or_static(self, out: OracleResult, budget, lifetime, min_lifetime_s, cap) -> OracleResult:
        """The model counts expected frames; a replay counts whole ones.  Where a static level's replay meets
        the constraints and beats the schedule, it is the oracle's answer (cheap: the replays are cached)."""
        if self.heat and len(self.tr) > 20000:
            return out
        best = out
        for lv in self._static_candidates(lambda v, c, life: c <= budget * 1.01 if not lifetime
                                          else life >= (min_lifetime_s or 0) * 0.99):  # fmt: skip
            r = self._wrap("oracle", self.static(lv), out.dual_bound, budget, lifetime, min_lifetime_s, cap,
                           out.method, out.multiplier)  # fmt: skip
            if r.feasible and (not best.feasible or r.accuracy > best.accuracy):
                best = r
        return best

    def _solve_mu(self, budget, cap, lifetime, horizon):
        """Bisection on the miss multiplier μ (only when the cap binds), each with its λ search."""
        def run(mu):
            ok = lambda r: r["cost"] <= budget * (1 + 1e-9) and (not lifetime or r["end"] >= horizon)  # noqa: E731
            sched, best, seen = self._plan(ok, mu, lifetime, horizon, budget, fill=True)
            return self._replay(sched), seen, mu, best["lam"]

        first = run(0.0)
        if first[0].deadline_misses <= cap:
            return first
        lo, hi = 0.0, 1.0
        for _ in range(12):
            best = run(hi)
            if best[0].deadline_misses <= cap:
                break
            lo, hi = hi, hi * 4.0
        for _ in range(8):
            mid = 0.5 * (lo + hi)
            r = run(mid)
            if r[0].deadline_misses <= cap:
                best, hi = r, mid
            else:
                lo = mid
        return best

    def _shortfall(self, out: OracleResult, budget, lifetime, min_lifetime_s) -> float:
        """How far the replay is over the energy budget (J), or short of the lifetime (in J of the pack)."""
        if lifetime:
            life = out.lifetime_s or 0.0
            return 0.0 if life >= min_lifetime_s - 1e-6 else budget * (min_lifetime_s - life) / min_lifetime_s
        return out.energy_j - budget if out.energy_j > budget * (1 + 1e-9) else 0.0

    def _result(self, res: SimResult, seen, budget, lifetime, horizon, min_lifetime_s, cap, mu, lam) -> OracleResult:
        """Wrap a replay; the dual bound is the least ``L(λ, μ) + λ·budget + μ·cap`` over the multipliers tried."""
        n_h = float(self.n[:horizon].sum()) if lifetime else self.N
        extra = mu * cap if math.isfinite(cap) else 0.0
        duals = [(r["lagrangian"] + (r["lam"] * budget if r["lam"] else 0.0) + extra) / n_h
                 for r in seen if (math.isfinite(budget) or r["lam"] == 0.0) and not r.get("tilt")]  # fmt: skip
        return self._wrap("oracle", res, min(duals) if duals else None, budget, lifetime, min_lifetime_s, cap,
                          "dp" if self.heat else "per-tick", lam)  # fmt: skip

    def _wrap(self, name, res: SimResult, dual, budget, lifetime, min_lifetime_s, cap, method, lam) -> OracleResult:
        life_ok = not lifetime or (res.battery_life_s or 0.0) >= min_lifetime_s - 1e-6
        energy_ok = lifetime or res.energy_j <= budget * (1 + 1e-9)
        feasible = life_ok and energy_ok and res.time_above_tcrit_s == 0 and res.deadline_misses <= cap
        return OracleResult(name=name, accuracy=float(res.on_time_accuracy or 0.0), mean_accuracy=res.mean_accuracy,
                            energy_j=res.energy_j, lifetime_s=res.battery_life_s, misses=res.deadline_misses,
                            seconds_above_limit=res.time_above_tcrit_s, dual_bound=dual, feasible=feasible,
                            method=method, levels=np.asarray(res.trace["level"]),
                            intervals=np.asarray(res.trace["frame_interval"]), multiplier=float(lam), sim=res)  # fmt: skip

    # equal accuracy, best static ---------------------------------------------------------------------
    def at_accuracy(self, target: float, lifetime: bool = False) -> OracleResult:
        """The oracle's least energy (``lifetime``: longest battery life) at which its accuracy (right and on
        time) reaches ``target``: bisection over the multiplier along the Lagrangian frontier, replayed."""
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"target accuracy must be within 0..1, got {target!r}")
        if lifetime:
            self._mode(None, self.dt)  # validates: battery, no plug events
        horizon = len(self.tr)

        def ok(r):
            return r["value"] >= target * r["n"]

        best, other, seen = self._search(ok, 0.0, lifetime, horizon, largest=True)
        method = "dp" if self.heat else "per-tick"
        if self.heat:
            lam = best["lam"]
            for _ in range(8):  # the replay falls short of the model: a smaller multiplier, more accuracy
                self._dp(np.array([lam]), 0.0, keep=True)
                res = self._replay(_Schedule(self.dt, np.zeros(len(self.tr)), np.zeros(0),
                                             self._chooser(lam, 0.0, self._stored)))  # fmt: skip
                if res.on_time_accuracy >= target - 1e-12 or lam == 0.0:
                    break
                lam = 0.0 if lam < self._scale() * 1e-6 else lam * 0.97
        else:
            want = target
            for _ in range(4):
                choice = self._reach(best, other, want, lifetime)
                res = self._replay(_Schedule(self.dt, self.lv[choice], np.array([self.options[c][1] for c in choice])))
                if res.on_time_accuracy >= target - 1e-12:
                    break
                want += target - res.on_time_accuracy
            lam = best["lam"]
        out = self._wrap("oracle", res, None, math.inf, False, None, math.inf, method, lam)
        for lv in self._static_candidates(lambda v, c, life: v >= target - 1e-3):  # reaching it more cheaply
            st = self._wrap("oracle", self.static(lv), None, math.inf, False, None, math.inf, method, lam)
            if st.seconds_above_limit == 0 and st.accuracy >= target - 1e-12 and (
                    out.accuracy < target - 1e-12 or _cheaper(st, out, lifetime)):  # fmt: skip
                out = st
        return out

    def _reach(self, best: dict, other: dict | None, target: float, lifetime: bool) -> np.ndarray:
        """Per tick: from the cheaper schedule ``other`` (below the target), move the fewest ticks toward
        ``best``'s choice, best value per joule first, until the model's accuracy reaches ``target``."""
        rich = self._viterbi(best["lam"], 0.0, lifetime)
        if other is None:
            return rich
        cheap = self._viterbi(other["lam"], 0.0, lifetime)
        ks = np.nonzero(cheap != rich)[0]
        cost, val = self._cost(lifetime), self.flat["value"]
        dv = val[ks, rich[ks]] - val[ks, cheap[ks]]
        dc = cost[ks, rich[ks]] - cost[ks, cheap[ks]]
        order = np.argsort(-np.round(dv / np.maximum(dc, 1e-12), 9), kind="stable")
        ks = ks[order]
        zero = np.zeros((len(rich), 1))
        lo_n, hi_n = 0, len(ks)
        while lo_n < hi_n:
            mid = (lo_n + hi_n) // 2
            c = cheap.copy()
            c[ks[:mid]] = rich[ks[:mid]]
            t = self._totals(c, zero, 0.0, 0.0, lifetime, len(c))
            if t["value"] >= target * t["n"]:
                hi_n = mid
            else:
                lo_n = mid + 1
        c = cheap.copy()
        c[ks[:lo_n]] = rich[ks[:lo_n]]
        return c

    def _static_candidates(self, ok, keep: int = 2) -> list[int]:
        """Static levels worth replaying: all where heat can bind; else those the model finds ``ok`` (model
        accuracy, energy, lifetime), most accurate first, at most ``keep``."""
        if self.heat:
            return list(range(len(self.lad)))
        out = []
        for lv in range(len(self.lad)):
            o = self.options.index((lv, 1))
            t = self._totals(np.full(len(self.tr), o), np.zeros((len(self.tr), 1)), 0.0, 0.0,
                             self.world.battery is not None and not self.scn.battery.events, len(self.tr))  # fmt: skip
            acc = t["value"] / t["n"] if t["n"] else 0.0
            if ok(acc, t["energy"], t["end"] * self.dt):
                out.append((acc, lv))
        return [lv for _, lv in sorted(out, reverse=True)[:keep]]

    def static(self, level: int) -> SimResult:
        """The replay of one level held throughout (cached)."""
        key = ("static", int(level))
        if key not in self._cache:
            k = len(self.tr)
            sched = _Schedule(self.dt, np.full(k, int(level)), np.ones(k, dtype=int), name=f"static-{level}")
            self._cache[key] = self._replay(sched)
        return self._cache[key]

    def best_static(self, energy_budget_j: float | None = None, min_lifetime_s: float | None = None,
                    max_misses: float | None = None) -> OracleResult:  # fmt: skip
        """The best single level in hindsight under the same constraints (each level replayed; when none
        meets them all, the most accurate one, marked infeasible)."""
        lifetime, budget, _ = self._mode(energy_budget_j, min_lifetime_s)
        cap = math.inf if max_misses is None else float(max_misses)
        pick = self._static_candidates(lambda v, c, life: c <= budget * 1.01 if not lifetime
                                       else life >= (min_lifetime_s or 0) * 0.99)  # fmt: skip
        runs = [self._wrap("best-static", self.static(lv), None, budget, lifetime, min_lifetime_s, cap, "static", 0.0)
                for lv in (pick or range(len(self.lad)))]  # fmt: skip
        good = [r for r in runs if r.feasible]
        return max(good or runs, key=lambda r: r.accuracy)


def _cheaper(a: OracleResult, b: OracleResult, lifetime: bool) -> bool:
    if lifetime:
        return (a.lifetime_s or 0.0) > (b.lifetime_s or 0.0)
    return a.energy_j < b.energy_j


def oracle(scenario: Any, ladder: LevelLadder | str | Path | None = None, device: str | DeviceClass | None = None,
           *, energy_budget_j: float | None = None, min_lifetime_s: float | None = None,
           max_misses: float | None = None, seed: int | None = None, **options: Any) -> OracleResult:  # fmt: skip
    """The clairvoyant oracle of ``scenario`` (see the module docstring).  ``options`` go to
    :class:`OracleProblem` (``intervals``, ``grid_c``, ``dp_step_s``, ``duration_s``)."""
    prob = OracleProblem(scenario, ladder, device, seed=seed, **options)
    return prob.solve(energy_budget_j, min_lifetime_s, max_misses)


def best_static(scenario: Any, ladder: LevelLadder | str | Path | None = None,
                device: str | DeviceClass | None = None, *, energy_budget_j: float | None = None,
                min_lifetime_s: float | None = None, max_misses: float | None = None, seed: int | None = None,
                **options: Any) -> OracleResult:  # fmt: skip
    """The best static level in hindsight under the same constraints as :func:`oracle`."""
    prob = OracleProblem(scenario, ladder, device, seed=seed, **options)
    return prob.best_static(energy_budget_j, min_lifetime_s, max_misses)
