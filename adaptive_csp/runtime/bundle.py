"""A bundle: everything a device needs to run an adaptive model, on onnxruntime and numpy alone (no torch).

``model.export_bundle(DIR)`` / ``adaptive-csp export --bundle DIR`` (:mod:`adaptive_csp.models.bundle_export`)
writes it; ``AdaptiveRunner("DIR")`` or ``AdaptiveRunner(load_bundle("DIR"))`` runs it::

    DIR/manifest.json      format name and version, every other file with its size and SHA-256
    DIR/model.json         task, class names, preprocessing spec, the ladder (every rung's measured
                           latency per engine and batch), each level's file and precision, a detector's
                           post-processing (score threshold, NMS IoU, max detections), where it came from
    DIR/levels/NN.onnx     one ONNX file per ladder level (float32 input N×C×H×W; int8 QDQ rungs too)
    DIR/policy.toml        the default policy (a preset TOML; the runner's policy when none is given)

:func:`load_bundle` checks the format version, that every file the manifest names is there with its size
and SHA-256, and that ``model.json`` is well formed; each failure is a :class:`BundleError` (a ValueError)
naming the file.  The :class:`Bundle` it returns looks to the runner and the ONNX Runtime engine like an
elastic model whose levels are ONNX files (``levels``, ``meta``, ``onnx_file(i)``,
``needs_onnxruntime``), so policies, sensors, content demand, frame-rate control, telemetry, ``stream()``
and ``calibrate()`` work unchanged.  Nothing here, nor in the floors the runner imports for it, imports
torch (:mod:`adaptive_csp.util.tensors`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptive_csp.data.preprocess_spec import merge_spec
from adaptive_csp.levels import LevelLadder
from adaptive_csp.util.files import sha256_file

__all__ = ["Bundle", "BundleError", "load_bundle", "is_bundle", "FORMAT", "VERSION", "MANIFEST", "MODEL_JSON",
           "POLICY_TOML"]

FORMAT = "adaptive-csp-bundle"
VERSION = 1
MANIFEST, MODEL_JSON, POLICY_TOML = "manifest.json", "model.json", "policy.toml"
TASKS = ("classify", "detect")


class BundleError(ValueError):
    """A bundle that cannot be run: missing, corrupt or altered files, or a format from a newer version."""


def is_bundle(path: Any) -> bool:
    """True when ``path`` is a folder with a bundle manifest (cheap: reads nothing)."""
    try:
        return isinstance(path, (str, os.PathLike)) and (Path(path) / MANIFEST).is_file()
    except OSError:
        return False


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: the bundle's {what} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path}: the bundle's {what} is unreadable or not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{path}: the bundle's {what} must be a JSON object")
    return doc


def _check_files(root: Path, manifest: dict[str, Any], verify: bool) -> dict[str, dict[str, Any]]:
    files = manifest.get("files")
    if not isinstance(files, dict) or MODEL_JSON not in files:
        raise BundleError(f"{root / MANIFEST}: no 'files' table naming {MODEL_JSON}")
    for name, entry in files.items():
        path = root / name
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise BundleError(f"{root / MANIFEST}: entry {name!r} has no sha256")
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(f"{root / MANIFEST}: entry {name!r} points outside the bundle")
        if not path.is_file():
            raise BundleError(f"{path}: missing (the bundle's manifest lists it)")
        size = entry.get("bytes")
        if isinstance(size, int) and path.stat().st_size != size:
            raise BundleError(f"{path}: {path.stat().st_size} bytes, the manifest says {size} (truncated or "
                              "replaced)")
        if verify and sha256_file(path) != entry["sha256"]:
            raise BundleError(f"{path}: SHA-256 does not match the manifest (corrupt or altered)")
    return files


@dataclass
class Bundle:
    """A loaded bundle (see the module docstring); build one with :func:`load_bundle`."""

    root: Path
    meta: dict[str, Any]
    levels: LevelLadder
    files: list[Path]
    precisions: list[str]
    policy_file: Path | None
    digest: str  # SHA-256 of the manifest: what names this bundle in latency caches
    manifest: dict[str, Any] = field(repr=False, default_factory=dict)

    needs_onnxruntime = True  # every level is an ONNX file: the runner's engine is onnxruntime

    def onnx_file(self, level: int) -> Path:
        return self.files[self.levels.index(level)]

    def precision(self, level: int) -> str:
        return self.precisions[self.levels.index(level)]

    def with_spec(self, preprocess: dict[str, Any] | None) -> Bundle:
        """A copy whose preprocessing spec has ``preprocess`` merged over the bundle's (validated)."""
        if not preprocess:
            return self
        meta = {**self.meta, "preprocess": merge_spec(self.meta.get("preprocess"), preprocess)}
        return Bundle(self.root, meta, self.levels, self.files, self.precisions, self.policy_file, self.digest,
                      self.manifest)

    @property
    def task(self) -> str:
        return str(self.meta.get("task", "classify"))

    def __len__(self) -> int:
        return len(self.levels)


def load_bundle(path: str | os.PathLike, *, verify: bool = True) -> Bundle:
    """The bundle in folder ``path``, checked (see the module docstring).  ``verify=False`` skips the
    SHA-256 of each file (sizes are still checked): for a device that checked it once and starts often."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"{root}: not a folder (a bundle is the folder `adaptive-csp export --bundle` wrote)")
    manifest = _read_json(root / MANIFEST, "manifest")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{root / MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise BundleError(f"{root / MANIFEST}: version {version!r} is not a format version")
    if version > VERSION:
        raise BundleError(f"{root / MANIFEST}: bundle format version {version} is newer than this runtime "
                          f"reads ({VERSION}); upgrade adaptive-csp on the device")
    files = _check_files(root, manifest, verify)
    doc = _read_json(root / MODEL_JSON, "model description")
    where = root / MODEL_JSON
    task = doc.get("task", "classify")
    if task not in TASKS:
        raise BundleError(f"{where}: task {task!r}, expected one of {TASKS}")
    try:
        ladder = LevelLadder.from_dict(doc["ladder"])
        spec = merge_spec(doc["preprocess"], None)
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{where}: bad ladder or preprocessing ({type(e).__name__}: {e})") from None
    lv = doc.get("levels")
    if not isinstance(lv, list) or len(lv) != len(ladder):
        raise BundleError(f"{where}: 'levels' must list one file per ladder rung ({len(ladder)})")
    paths, precs = [], []
    for i, entry in enumerate(lv):
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name not in files:
            raise BundleError(f"{where}: level {i} names file {name!r}, which the manifest does not list")
        paths.append(root / name)
        precs.append(str(entry.get("precision", "fp32")))
    names = doc.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise BundleError(f"{where}: class_names must be a list of strings")
    policy = root / POLICY_TOML if POLICY_TOML in files else None
    meta = {k: v for k, v in doc.items() if k not in ("ladder", "levels")}
    meta.update({"task": task, "preprocess": spec})
    digest = sha256_file(root / MANIFEST)
    return Bundle(root, meta, ladder, paths, precs, policy, digest, manifest)
