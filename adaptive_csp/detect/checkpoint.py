"""Detector checkpoints: the same safetensors + JSON format as classifiers (no pickle), and the shipped
detector inside the package; nothing is downloaded.  The public verbs over both tasks are
:func:`adaptive_csp.load_model` and :func:`adaptive_csp.pretrained`; these detector-only names stay for
code written before them."""

from __future__ import annotations

from pathlib import Path

from adaptive_csp.detect.model import DetCfg, Detector
from adaptive_csp.models.pretrained import CheckpointError, load_checkpoint, save_model, shipped_path

__all__ = ["save_detector", "load_detector", "pretrained_detector", "DEFAULT_DETECTOR"]

#: csp_det_wide (backbone from the shipped classifier) on scenes of every kind, with per-rung thresholds;
#: the belt-scene-only detector stays loadable by name, ``pretrained("csp_det_scenes")``
DEFAULT_DETECTOR = "csp_det_wide_scenes"


def save_detector(model: Detector, path: str | Path, **meta) -> Path:
    """Write ``path.safetensors`` + ``path.json`` (config, ladder, per-level BN, preprocessing, recipe)."""
    return save_model(model, path, **meta)


def load_detector(path: str | Path, verify: bool = True) -> Detector:
    """Load a detector written by :func:`save_detector` (eval mode)."""
    model = load_checkpoint(path, lambda config: Detector(DetCfg.model_validate(config)), verify)
    if model.meta.get("task") != "detect":
        raise CheckpointError(f"{path}: not a detector checkpoint (task={model.meta.get('task')!r})")
    return model


def pretrained_detector(name: str = DEFAULT_DETECTOR) -> Detector:
    """The trained detector shipped inside the package."""
    return load_detector(shipped_path(name, "detector"))
