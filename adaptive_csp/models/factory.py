"""The public verbs over both tasks: ``create_model`` builds from a name, ``load_model`` reads a file,
``pretrained`` loads a shipped asset, ``save_model`` writes one — a classifier or a detector alike.

A checkpoint says its task in ``meta["task"]`` ("detect" for a detector, absent or "classify" for a
classifier), so one loader reads both; a name says its task by the registry it is in (model presets:
:mod:`adaptive_csp.models.registry`; detector presets: :data:`adaptive_csp.detect.model.DETECTOR_CFGS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adaptive_csp.detect.checkpoint import DEFAULT_DETECTOR
from adaptive_csp.detect.model import DETECTOR_CFGS, DetCfg, Detector, get_detector_cfg
from adaptive_csp.models.config import ModelCfg
from adaptive_csp.models.elastic import ElasticModel
from adaptive_csp.models.net import ElasticNet
from adaptive_csp.models.net import create_model as _create_classifier
from adaptive_csp.models.pretrained import (
    ASSETS,
    DEFAULT_MODEL,
    CheckpointError,
    _paths,
    _read_meta,
    load_checkpoint,
    shipped_path,
)
from adaptive_csp.models.pretrained import save_model as _save
from adaptive_csp.models.registry import list_models as _classifier_names

__all__ = ["create_model", "load_model", "pretrained", "save_model", "list_models", "list_pretrained",
           "DEFAULT_MODEL", "DEFAULT_DETECTOR"]



def list_models(task: str | None = None) -> list[str]:
    """Preset names ``create_model`` builds: classifiers, detectors, or both (``task`` None)."""
    if task not in (None, "classify", "detect"):
        raise ValueError(f"task must be 'classify', 'detect' or None, got {task!r}")
    names = [] if task == "detect" else _classifier_names()
    return names + ([] if task == "classify" else sorted(DETECTOR_CFGS))


def create_model(name: str | ModelCfg | DetCfg, **overrides: Any) -> ElasticModel:
    """An untrained elastic model from a preset name or a config: a classifier
    (:class:`~adaptive_csp.models.net.ElasticNet`; keywords ``num_classes``, ``in_chans``,
    ``features_only``, ``input_size``) or a detector (:class:`~adaptive_csp.detect.model.Detector`;
    keywords override :class:`DetCfg` fields)."""
    if isinstance(name, DetCfg):
        return Detector(DetCfg.model_validate({**name.model_dump(), **overrides}) if overrides else name)
    if isinstance(name, str) and name in DETECTOR_CFGS:
        return Detector(get_detector_cfg(name, **overrides))
    return _create_classifier(name, **overrides)


def _task(path: str | Path) -> str:
    return str(_read_meta(_paths(path)[1]).get("task", "classify"))


def load_model(path: str | Path, verify: bool = True) -> ElasticModel:
    """A checkpoint written by :func:`save_model` (or ``adaptive-csp train`` / ``train-detector``), either
    task, in eval mode.  A missing, corrupt or mismatched file raises :class:`CheckpointError` naming it."""
    task = _task(path)
    if task == "detect":
        return load_checkpoint(path, lambda config: Detector(DetCfg.model_validate(config)), verify)
    if task != "classify":
        raise CheckpointError(f"{_paths(path)[1]}: unknown task {task!r} (classify, detect)")
    return load_checkpoint(path, lambda config: ElasticNet(ModelCfg.model_validate(config)), verify)


def list_pretrained() -> list[str]:
    """Names of the models shipped inside the package (either task)."""
    return sorted(p.stem for p in ASSETS.glob("*.safetensors"))


def pretrained(name: str | Path = DEFAULT_MODEL) -> ElasticModel:
    """A trained model of either task: one shipped inside the package by name (offline, no pickle; see
    :func:`list_pretrained`), or a checkpoint you trained, by path (a ``Path``, or a string with a ``/``
    or ending in ``.safetensors`` / ``.json``)."""
    return load_model(checkpoint_path(name))


def checkpoint_path(name: str | Path) -> Path:
    """The weights file :func:`pretrained` reads for ``name``: a shipped model's, or the path given."""
    from adaptive_csp.models.pretrained import _paths

    text = str(name)
    if isinstance(name, Path) or "/" in text or "\\" in text or text.endswith((".safetensors", ".json")):
        return _paths(name)[0]
    return shipped_path(text)


def save_model(model: ElasticModel, path: str | Path, **meta: Any) -> Path:
    """Write ``path.safetensors`` + ``path.json`` (config, ladder, per-level BN, preprocessing, recipe,
    and the task in ``meta``); returns the tensor file's path."""
    return _save(model, path, **meta)

