"""Presets and the policy registry: ``create_policy(spec, **overrides)``.

``spec`` may be
- a preset name (``PRESETS``: performance, powersave, battery, thermal, latency, balanced), loaded from
  the ``policies/*.toml`` shipped with the package;
- a name given to :func:`register_policy`, or a simulation baseline (static-max, static-min, ondemand,
  unity: from :mod:`adaptive_csp.control.baselines`, imported lazily);
- a path to a TOML file; a dict or :class:`PolicyConfig`; a Policy class or any factory returning one;
- a Policy object (returned as is: the same object and state; overrides raise ValueError).

Without ``spec``: :data:`DEFAULT_POLICY` (``balanced``), the default of every entry point.  Each preset's
``description`` states its decision rule in one sentence (``load_config(name).description``); the governors
behind them predict each rung's cost (:mod:`adaptive_csp.control.predict`) and pick the highest that fits.

``overrides`` are merged into the preset before validation: ``safe_level=1``,
``battery={"target_hours": 8}`` or ``battery__target_hours=8``; ``thermal=None`` drops a section.
Bad files or values raise :class:`pydantic.ValidationError` naming the field.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adaptive_csp.control.battery import BatteryGovernor
from adaptive_csp.control.compose import GovernedPolicy
from adaptive_csp.control.config import PolicyConfig
from adaptive_csp.control.efficiency import EfficiencyGovernor
from adaptive_csp.control.frames import FrameRule
from adaptive_csp.control.governors import ConfidenceGovernor, ContentionGovernor, Governor, StaticCap
from adaptive_csp.control.ladder import HysteresisLadder
from adaptive_csp.control.latency import LatencyGovernor
from adaptive_csp.control.policy import Policy
from adaptive_csp.control.thermal import ThermalPI, ThermalStepWise

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["create_policy", "PRESETS", "DEFAULT_POLICY", "get_policy", "register_policy", "registered", "load_config", "build_policy",
           "preset_dir", "preset_path"]

PRESETS: tuple[str, ...] = ("performance", "powersave", "battery", "thermal", "latency", "balanced")
#: the policy every entry point uses when none is given (runner, create_policy, simulate, demo, CLI)
DEFAULT_POLICY = "balanced"
_REGISTRY: dict[str, Callable[..., Policy]] = {}


def preset_dir() -> Path:
    """``adaptive_csp/policies`` (installed package data, a link to the repo's ``policies/``)."""
    here = Path(__file__).resolve().parent.parent
    for d in (here / "policies", here.parent / "policies"):
        if d.is_dir() and any(d.glob("*.toml")):
            return d
    return here / "policies"


def preset_path(name: str) -> Path:
    return preset_dir() / f"{name}.toml"


def register_policy(name: str, factory: Callable[..., Policy], *, replace: bool = False) -> None:
    """Make ``create_policy(name, **kw)`` call ``factory(**kw)`` (a Policy subclass or a function)."""
    if not isinstance(name, str) or not name:
        raise ValueError("a policy name must be a non-empty string")
    if not callable(factory):
        raise TypeError("factory must be callable (a Policy subclass or a function returning a Policy)")
    if not replace and (name in _REGISTRY or name in PRESETS):
        raise ValueError(f"policy name {name!r} is already taken; pass replace=True to override")
    _REGISTRY[name] = factory


def _baselines() -> dict[str, Callable[..., Policy]]:
    try:
        from adaptive_csp.control.baselines import BASELINES
    except ImportError:
        return {}
    return dict(BASELINES)


def registered() -> list[str]:
    """Every name ``create_policy`` resolves: presets, registered policies, baselines."""
    return list(dict.fromkeys([*PRESETS, *_REGISTRY, *_baselines()]))


def _toml_error(path: Path, e: Exception) -> ValidationError:
    return ValidationError.from_exception_data(
        "PolicyConfig", [{"type": "value_error", "loc": ("toml",), "input": str(path),
                          "ctx": {"error": ValueError(f"invalid TOML in {path}: {e}")}}])


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if "__" in k:
            head, rest = k.split("__", 1)
            sub = out.get(head)
            out[head] = _merge(sub if isinstance(sub, dict) else {}, {rest: v})
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        elif v is None and k in ("thermal", "latency", "battery", "contention", "confidence", "frames",
                                      "efficiency"):
            out.pop(k, None)
        else:
            out[k] = v
    return out


def load_config(spec: str | Path | dict[str, Any] | PolicyConfig, **overrides: Any) -> PolicyConfig:
    """A validated :class:`PolicyConfig` from a preset name, a TOML path, a dict or a config."""
    if isinstance(spec, PolicyConfig):
        data = spec.model_dump(exclude_none=True)
    elif isinstance(spec, dict):
        data = dict(spec)
    else:
        p = Path(spec)
        if isinstance(spec, str) and spec in PRESETS:
            p = preset_path(spec)
        if not p.is_file():
            raise ValueError(f"no policy file {str(p)!r}")
        try:
            data = tomllib.loads(p.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise _toml_error(p, e) from None
        data.setdefault("name", p.stem)
    if overrides:
        data = _merge(data, overrides)
    return PolicyConfig.model_validate(data)


def build_policy(cfg: PolicyConfig) -> GovernedPolicy:
    """Turn a validated config into governors (order = tie-break priority) and a GovernedPolicy."""
    band = cfg.ladder.dead_band
    govs: list[Governor] = []
    t = cfg.thermal
    if t is not None and t.enabled:
        if t.mode == "pi":
            govs.append(ThermalPI(t.control_c, t.switch_on_c, t.critical_c, t.sustainable, t.forecast_s,
                                  t.forecast_samples, t.sample_s, band, t.k_po, t.k_pu, t.k_i, t.idle_fraction))
        else:
            govs.append(ThermalStepWise(t.trip_c if t.trip_c is not None else t.control_c, t.hysteresis_c,
                                        t.critical_c, t.trend_c_per_s, t.sample_s))
    b = cfg.battery
    if b is not None and b.enabled:
        govs.append(BatteryGovernor(b.low_percent, b.critical_percent, b.target_hours, b.until,
                                    b.idle_fraction, b.window_s, b.min_window_s, b.sample_s, b.capacity_wh,
                                    b.margin, band, stretch=b.stretch))
    lat = cfg.latency
    if lat is not None and lat.enabled:
        govs.append(LatencyGovernor(lat.deadline_ms, lat.window, lat.percentile, lat.margin, lat.up_hold_s,
                                    lat.min_samples, lat.min_samples_down, lat.dvfs, lat.min_frequency,
                                    switch_cost=lat.switch_cost))
    c = cfg.contention
    if c is not None and c.enabled:
        govs.append(ContentionGovernor(c.pressure_high, c.pressure_low, c.util_high, c.util_low, c.step_s,
                                       margin=c.margin))
    k = cfg.confidence
    if k is not None and k.enabled:
        govs.append(ConfidenceGovernor(k.high, k.low, k.hold_s, k.alpha, k.floor_level))
    e = cfg.efficiency
    if e is not None and e.enabled:
        govs.append(EfficiencyGovernor(e.min_gain_pt, e.idle_fraction))
    if cfg.max_cost < 1.0:
        govs.append(StaticCap(cfg.max_cost))
    lc = cfg.ladder
    hyst = HysteresisLadder(lc.up_hold_s, lc.up_cooldown_s, lc.down_cooldown_s, lc.up_step, lc.dead_band)
    f = cfg.frames
    frames = FrameRule(f.min_fps, f.steady_interval, f.max_interval, f.energy) if f is not None and f.enabled else None
    return GovernedPolicy(govs, hyst, name=cfg.name, safe_level=cfg.safe_level,
                          stale_after_s=cfg.stale_after_s, config=cfg, frames=frames)


def _made(policy: Any, by: Any) -> Policy:
    if not isinstance(policy, Policy):
        raise TypeError(f"policy factory {by!r} returned {type(policy).__name__}, not a Policy")
    return policy


def create_policy(spec: Any = DEFAULT_POLICY, **overrides: Any) -> Policy:
    """Resolve ``spec`` to a Policy: the one policy lookup of the package (runner, simulator, CLI).

    Names, TOML paths, dicts, configs, classes and factories build a new Policy on every call.  A Policy
    *object* is returned as is — the same object with its state (the caller owns it; call ``reset()`` for
    a clean start, as :func:`adaptive_csp.sim.simulate` does).  ``overrides`` with an object raise
    ValueError: they can only shape a policy that is being built.
    """
    if isinstance(spec, Policy):
        if overrides:
            raise ValueError(f"overrides {sorted(overrides)} cannot be applied to the Policy object {spec.name!r}; "
                             "pass a preset name, TOML path, config or factory to build one with them")
        return spec
    if isinstance(spec, (dict, PolicyConfig)):
        return build_policy(load_config(spec, **overrides))
    if isinstance(spec, str):
        if spec in _REGISTRY:
            return _made(_REGISTRY[spec](**overrides), spec)
        if spec in PRESETS:
            return build_policy(load_config(spec, **overrides))
        base = _baselines()
        if spec in base:
            return base[spec](**overrides)
    if isinstance(spec, (str, Path)) and (str(spec).endswith(".toml") or Path(spec).is_file()):
        return build_policy(load_config(Path(spec), **overrides))
    if callable(spec) and not isinstance(spec, (str, Path)):  # a Policy subclass or a factory function
        return _made(spec(**overrides), spec)
    raise ValueError(f"unknown policy {spec!r}; known: {registered()} (or a path to a .toml file, a dict, "
                     "a PolicyConfig, a Policy object, class or factory)")


get_policy = create_policy  # the name before the one-verb API; kept as an alias
