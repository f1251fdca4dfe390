"""Writing a bundle (the format: :mod:`adaptive_csp.runtime.bundle`): ``export_bundle(model, DIR)`` (``ac.export_bundle``;
a function of floor 4, not a model method: models sit on floor 2 and never import engines).

Every ladder level's ONNX file comes from the ONNX Runtime engine's own export path
(:meth:`adaptive_csp.engines.ort_engine.OrtEngine.onnx_path`), so a bundle level is byte for byte the
file the full package's engine runs: float32 levels exported from the static module, int8 rungs (a rung
with ``extra["precision"] == "int8"``) as static QDQ models calibrated on ``calib``, and for a ladder of
your own models (:class:`~adaptive_csp.models.ladder.ModelLadder`) your ONNX files as given.  The bundle
is written into a temporary sibling folder and moved into place when complete, the manifest last: a
crash or a full disk leaves the old bundle (or none), never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from adaptive_csp.runtime.bundle import FORMAT, MANIFEST, MODEL_JSON, POLICY_TOML, VERSION, is_bundle
from adaptive_csp.runtime.heads import POSTPROCESS_DEFAULTS
from adaptive_csp.util.files import as_user_file, sha256_file, user_mode

__all__ = ["export_bundle"]


def _policy_toml(policy: str | os.PathLike) -> Path:
    from adaptive_csp.control.presets import PRESETS, preset_dir

    p = Path(policy)
    if p.suffix == ".toml" and p.is_file():
        return p
    if str(policy) in PRESETS:
        return preset_dir() / f"{policy}.toml"
    raise ValueError(f"policy {policy!r}: a bundle's default policy is a preset name ({', '.join(PRESETS)}) "
                     "or a TOML file")


def _description(model: Any, files: list[str], precisions: list[str], source: dict[str, Any]) -> dict[str, Any]:
    from adaptive_csp.data.preprocess_spec import describe, merge_spec
    from adaptive_csp.models.static import output_spec

    meta = dict(getattr(model, "meta", None) or {})
    spec = merge_spec(meta.get("preprocess"), None)
    task = str(meta.get("task", "classify"))
    doc: dict[str, Any] = {
        "task": task, "class_names": [str(n) for n in meta.get("class_names") or []] or None,
        "preprocess": spec, "preprocessing_recipe": describe(spec),
        "input": {"name": "input", "dtype": "float32", "layout": "N×C×H×W", "after": "preprocessing_recipe"},
        "output": output_spec(model),  # the exported levels' names; a level that is your own file keeps its own
        "ladder": model.levels.to_dict(),
        "levels": [{"file": f, "precision": p} for f, p in zip(files, precisions, strict=True)],
        "source": source,
    }
    if task == "detect":
        doc["postprocess"] = {**POSTPROCESS_DEFAULTS, **(meta.get("postprocess") or {})}
        if meta.get("namer"):  # the second stage is a torch checkpoint: named here, used where torch is
            doc["namer"] = meta["namer"]
    return doc


def export_bundle(model: Any, out_dir: str | os.PathLike, *, policy: str | os.PathLike = "balanced",
                  calib: Any = None, threads: int | None = None, source: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s bundle to ``out_dir`` and return it (see the module docstring).

    ``model``: an elastic classifier, a detector or a ModelLadder, with ``meta["preprocess"]``.  ``policy``:
    the bundle's default policy (a preset name or a TOML file).  ``calib``: calibration batches for int8
    rungs (as for the ONNX Runtime engine's ``calib=``).  ``out_dir`` must be missing, empty or an older
    bundle (replaced).  ``source``: extra provenance stored in ``model.json`` (e.g. the checkpoint)."""
    from adaptive_csp.engines.ort_engine import OrtEngine

    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_bundle(out))):
        raise ValueError(f"{out}: exists and is not an empty folder or a bundle; choose a new --bundle folder")
    if not (getattr(model, "meta", None) or {}).get("preprocess"):
        raise ValueError("the model has no meta['preprocess'] (input size, colour, mean/std); a bundle needs it")
    toml = _policy_toml(policy)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "levels").mkdir()
        with tempfile.TemporaryDirectory(prefix="adaptive-csp-bundle-") as cache:
            eng = OrtEngine(model, threads=threads or 1, cache=cache, calib=calib)
            files, precs = [], []
            own = getattr(model, "onnx_file", None)
            for i in range(len(eng.ladder)):
                prec = "as given" if callable(own) and own(i) is not None else eng.precision(i)
                if prec == "int8" and calib is None and getattr(model, "int8_calib", None) is None:
                    raise ValueError(f"rung {i} is marked int8: pass calib= (calibration batches) so its int8 "
                                     "file can be built, or clear its precision")
                src, _ = eng.onnx_path(i)
                name = f"levels/{i:02d}.onnx"
                shutil.copyfile(src, tmp / name)
                files.append(name)
                precs.append(prec)
            eng.close()
        prov = {"model": getattr(getattr(model, "cfg", None), "name", type(model).__name__),
                "exported": time.strftime("%Y-%m-%d %H:%M:%S"), "adaptive_csp": _version(), **(source or {})}
        (tmp / MODEL_JSON).write_text(json.dumps(_description(model, files, precs, prov), indent=1) + "\n")
        shutil.copyfile(toml, tmp / POLICY_TOML)
        names = [MODEL_JSON, POLICY_TOML, *files]
        manifest = {"format": FORMAT, "version": VERSION,
                    "files": {n: {"sha256": sha256_file(tmp / n), "bytes": (tmp / n).stat().st_size} for n in names}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        for n in (*names, MANIFEST):
            as_user_file(tmp / n)
        os.chmod(tmp, 0o777 & ~(0o666 & ~user_mode()))  # mkdtemp made it 0700: the umask's mode instead
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("adaptive-csp")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "unknown"
