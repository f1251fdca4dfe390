"""Weights as safetensors + a JSON sidecar (config, ladder, per-level BN, preprocessing, recipe).

No pickle anywhere.  The JSON records the SHA-256 of the tensor file, so a corrupt, truncated or
swapped file is reported as such before any tensor is used.  ``pretrained()`` loads the default
model shipped inside the package; nothing is downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_csp.levels import LevelLadder
from adaptive_csp.models.config import ModelCfg
from adaptive_csp.models.net import ElasticNet
from adaptive_csp.util.files import as_user_file, sha256_file

__all__ = ["save_model", "load_model", "load_checkpoint", "pretrained", "shipped_ladder", "ASSETS", "DEFAULT_MODEL",
           "CheckpointError"]

FORMAT = "adaptive-csp/1"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MODEL = "csp_wide_fmnist"
_BN = "bn_levels/"
_CALIB = "int8_calib/images"  # uint8 N×H×W×C images the int8 rungs are calibrated on (adaptive-csp profile --int8)


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, truncated or does not match its metadata."""


_sha256 = sha256_file


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_suffix(".safetensors"), p.with_suffix(".json")


def save_model(model: Any, path: str | Path, **meta: Any) -> Path:
    """Write ``path.safetensors`` and ``path.json``; returns the tensor file's path."""
    from safetensors.torch import save_file

    tpath, jpath = _paths(path)
    tpath.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked")}
    for key, stats in model.bn_stats.items():
        for name, (mean, var) in stats.items():
            tensors[f"{_BN}{key}/{name}.mean"] = mean.contiguous()
            tensors[f"{_BN}{key}/{name}.var"] = var.contiguous()
    calib = getattr(model, "int8_calib", None)
    if calib is not None:
        import torch

        tensors[_CALIB] = torch.as_tensor(np.ascontiguousarray(calib, np.uint8))
    save_file(tensors, str(tpath), metadata={"format": FORMAT})
    as_user_file(tpath)  # safetensors writes 0600 through a temporary file
    doc = {
        "format": FORMAT,
        "config": model.cfg.model_dump(mode="json"),
        "ladder": model.levels.to_dict(),
        "bn_levels": sorted(model.bn_stats),
        **model.meta,
        **meta,
        "sha256": _sha256(tpath),
    }
    jpath.write_text(json.dumps(doc, indent=1))
    return tpath


def _read_meta(jpath: Path) -> dict[str, Any]:
    if not jpath.exists():
        raise CheckpointError(f"{jpath}: metadata file missing (a checkpoint is .safetensors + .json)")
    try:
        doc = json.loads(jpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{jpath}: metadata is not valid JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{jpath}: not an {FORMAT} metadata file (format={doc.get('format')!r})"
                              if isinstance(doc, dict) else f"{jpath}: metadata must be a JSON object")
    for key in ("config", "ladder", "sha256"):
        if key not in doc:
            raise CheckpointError(f"{jpath}: metadata has no {key!r}")
    return doc


def load_model(path: str | Path, verify: bool = True) -> ElasticNet:
    """Load a classifier checkpoint written by :func:`save_model` (eval mode, levels prepared lazily)."""
    return load_checkpoint(path, lambda config: ElasticNet(ModelCfg.model_validate(config)), verify)


def load_checkpoint(path: str | Path, build: Callable[[dict], Any], verify: bool = True) -> Any:
    """Load a checkpoint of any elastic model: ``build(config dict)`` makes the empty model (a classifier,
    a detector), whose state, per-level BN statistics, ladder and metadata are then filled in."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    tpath, jpath = _paths(path)
    doc = _read_meta(jpath)
    if not tpath.exists():
        raise CheckpointError(f"{tpath}: weights file missing")
    if verify and _sha256(tpath) != doc["sha256"]:
        raise CheckpointError(f"{tpath}: SHA-256 does not match {jpath.name}: the weights file is corrupt, "
                              "truncated, or belongs to another model")
    try:
        model = build(doc["config"])
        ladder = LevelLadder.from_dict(doc["ladder"])
    except ValueError as e:
        raise CheckpointError(f"{jpath}: invalid config or ladder: {e}") from e
    try:
        tensors = load_file(str(tpath))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{tpath}: cannot read safetensors ({e})") from e
    calib = tensors.pop(_CALIB, None)
    state = {k: v for k, v in tensors.items() if not k.startswith(_BN)}
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{tpath}: tensors do not match the config (missing {missing[:3]}, "
                              f"unexpected {extra[:3]})")
    for k, shape in expected.items():
        if state[k].shape != shape:
            raise CheckpointError(f"{tpath}: tensor {k} has shape {tuple(state[k].shape)}, the config needs "
                                  f"{tuple(shape)}")
    model.load_state_dict(state, strict=False)
    for k, v in tensors.items():
        if k.startswith(_BN):
            key, rest = k[len(_BN):].split("/", 1)
            name, kind = rest.rsplit(".", 1)
            entry = model.bn_stats.setdefault(key, {}).setdefault(name, [None, None])
            entry[0 if kind == "mean" else 1] = v
    model.bn_stats = {k: {n: (mv[0], mv[1]) for n, mv in d.items()} for k, d in model.bn_stats.items()}
    try:
        model.levels = ladder
    except ValueError as e:
        raise CheckpointError(f"{jpath}: ladder does not fit the config: {e}") from e
    model.meta = {k: v for k, v in doc.items() if k not in ("format", "config", "ladder", "bn_levels", "sha256")}
    model.int8_calib = calib.numpy() if calib is not None else None  # what ONNX Runtime's int8 rungs calibrate on
    return model.eval()


def shipped_path(name: str, what: str = "model") -> Path:
    """The weights file of a model shipped inside the package; ValueError naming the shipped ones."""
    tpath, _ = _paths(ASSETS / name)
    if not tpath.exists():
        known = sorted(p.stem for p in ASSETS.glob("*.safetensors"))
        raise ValueError(f"no shipped {what} {name!r}; shipped: {known}")
    return tpath


def pretrained(name: str | Path = DEFAULT_MODEL) -> ElasticNet:
    """A trained model: one shipped inside the package by name (offline, no pickle), or a checkpoint you
    trained, by path (``pretrained("runs/mine/model")`` is :func:`load_model`; a path is a ``Path``, or a
    string with a ``/`` or ending in ``.safetensors`` / ``.json``)."""
    text = str(name)
    if isinstance(name, Path) or "/" in text or "\\" in text or text.endswith((".safetensors", ".json")):
        return load_model(name)
    return load_model(shipped_path(text))


def shipped_ladder(name: str = DEFAULT_MODEL) -> LevelLadder:
    """The shipped model's measured ladder, read from its JSON only (cheap; no tensors)."""
    return LevelLadder.from_dict(_read_meta(_paths(ASSETS / name)[1])["ladder"])

