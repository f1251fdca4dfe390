"""adaptive-csp: one elastic CSP network whose compute is chosen per call by a resource-aware policy.

>>> import adaptive_csp as ac
>>> runner = ac.AdaptiveRunner(ac.pretrained(), policy="battery")   # doctest: +SKIP
>>> pred = runner.infer(frame)                                        # doctest: +SKIP
>>> model = ac.train(out_dir="runs/mine", dataset="my_images/", init="pretrained")  # doctest: +SKIP

One verb per kind: ``create_*`` builds from a name (``create_model``, ``create_policy``, ``create_engine``,
``create_source``), ``load_*`` reads a file (``load_model`` of either task, ``load_bundle``), and
``pretrained(name)`` loads a model shipped inside the package, classifier or detector.
"""

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> the module that defines it.  Imported on first use (PEP 562), so ``import adaptive_csp``
# costs nothing and a bundle runs without torch (:func:`load_bundle`): only the names a program touches
# pull in their floors, and torch comes in only with a model, a trainer or the torch engines.
_EXPORTS = {
    "AdaptiveRunner": "adaptive_csp.runtime.runner", "Prediction": "adaptive_csp.runtime.runner",
    "Detections": "adaptive_csp.runtime.results",
    "load_bundle": "adaptive_csp.runtime.bundle", "Bundle": "adaptive_csp.runtime.bundle",
    "create_policy": "adaptive_csp.control.presets", "register_policy": "adaptive_csp.control.presets",
    "Decision": "adaptive_csp.control.policy", "Policy": "adaptive_csp.control.policy",
    "RuntimeStats": "adaptive_csp.control.policy",
    "Level": "adaptive_csp.levels", "LevelLadder": "adaptive_csp.levels", "Rung": "adaptive_csp.levels",
    "StageLevel": "adaptive_csp.levels",
    "Readings": "adaptive_csp.sensors.readings", "create_source": "adaptive_csp.sensors",
    "ImageSet": "adaptive_csp.data.images",
    "Detector": "adaptive_csp.detect", "ElasticNet": "adaptive_csp.models", "ElasticModel": "adaptive_csp.models",
    "available_engines": "adaptive_csp.engines", "create_engine": "adaptive_csp.engines",
    "create_model": "adaptive_csp.models.factory", "list_models": "adaptive_csp.models.factory",
    "load_model": "adaptive_csp.models.factory", "pretrained": "adaptive_csp.models.factory",
    "save_model": "adaptive_csp.models.factory", "list_pretrained": "adaptive_csp.models.factory",
    "ModelLadder": "adaptive_csp.models.ladder",
    "export_bundle": "adaptive_csp.engines.bundle_export",
    "profile_ladder": "adaptive_csp.runtime.model_profile",
    "simulate": "adaptive_csp.sim",
}

# Names from before the one-verb-per-kind API (create_* builds from a name, load_* reads a file,
# pretrained(name) loads a shipped asset of either task): they keep working, outside __all__.
_ALIASES = {
    "get_policy": "adaptive_csp.control.presets", "make_engine": "adaptive_csp.engines",
    "make_source": "adaptive_csp.sensors", "load_detector": "adaptive_csp.detect",
    "pretrained_detector": "adaptive_csp.detect", "save_detector": "adaptive_csp.detect",
}


_SUBPACKAGES = frozenset({"apps", "cli", "commands", "control", "data", "detect", "engines", "levels", "models",
                          "nn", "power", "quant", "runtime", "sensors", "sim", "util"})


def __getattr__(name: str) -> Any:
    if name == "train":  # the callable package: adaptive_csp.train(cfg, out_dir, dataset)
        return importlib.import_module("adaptive_csp.train")
    if name in _SUBPACKAGES:  # ``adaptive_csp.sim.World`` works as when everything was imported eagerly
        return importlib.import_module(f"adaptive_csp.{name}")
    mod = _EXPORTS.get(name) or _ALIASES.get(name)
    if mod is None:
        raise AttributeError(f"module 'adaptive_csp' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from adaptive_csp.control.policy import Decision, Policy, RuntimeStats  # noqa: F401
    from adaptive_csp.levels import Level, LevelLadder, Rung, StageLevel  # noqa: F401
    from adaptive_csp.runtime.bundle import Bundle, load_bundle  # noqa: F401
    from adaptive_csp.runtime.runner import AdaptiveRunner, Prediction  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "AdaptiveRunner", "Prediction", "Detections",
    "create_model", "create_policy", "create_engine", "create_source",
    "load_model", "load_bundle", "pretrained", "save_model", "export_bundle",
    "list_models", "list_pretrained", "available_engines", "register_policy", "profile_ladder", "simulate", "train",
    "ElasticModel", "ElasticNet", "Detector", "ModelLadder", "Bundle", "ImageSet",
    "Policy", "Decision", "RuntimeStats", "Level", "LevelLadder", "Rung", "StageLevel", "Readings", "__version__",
]
