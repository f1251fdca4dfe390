"""The on-disk cache of exported levels, keyed by what the exported file depends on.

A level's key hashes the format version, the level's full key (``Level.key``: every stage's setting,
width included), the model's architecture (its config), every tensor of its ``state_dict`` (weights and
BatchNorm running statistics), the level's calibrated BN statistics (``bn_stats[level.key]``), the input
shape, the ONNX opset and any variant tag (``"int8:<calibration digest>"``).  Change any of them and the
key changes, so a stale file is never used; files are written atomically (temp file + rename), so
processes sharing the cache never read a half-written one.

Location: ``cache_dir=`` where an API takes it, else ``$ADAPTIVE_CSP_CACHE``, else
``$XDG_CACHE_HOME/adaptive_csp`` (``~/.cache/adaptive_csp``).

**The cache heals** (:func:`cached_file`): every file is written with its SHA-256 beside it
(``NAME.sha256``); a file found with a missing, different or unreadable digest (truncated by a full disk,
emptied by a crash on a filesystem that does not order writes, overwritten by another tool) is rebuilt,
logged once per file, without an exception to the caller.  A file that passes but still fails to load is
rebuilt too (``cached_file(..., rebuild=True)``, the engine's retry).  A cache directory that cannot be
written (read-only, full, not creatable) falls back to a private temporary folder for this process, with
one warning.  Two processes that build the same file at once each write a complete temp file and rename it
into place: the last rename wins and both files are good.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cache_dir", "weights_digest", "level_key", "tensors_digest", "cached_file"]

log = logging.getLogger("adaptive_csp.engines")

FORMAT = "adaptive-csp-onnx-1"


def cache_dir(path: str | Path | None = None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get("ADAPTIVE_CSP_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "adaptive_csp"


def _update(h: Any, name: str, t: Any) -> None:
    import torch  # only digests of torch tensors need it: cache_dir / cached_file run without torch

    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: hash the raw bits
        t = t.view(torch.int16)
    h.update(np.ascontiguousarray(t.numpy()).tobytes())


def tensors_digest(items: Iterable[tuple[str, Any]]) -> str:
    h = hashlib.sha256()
    for name, t in items:
        _update(h, name, t)
    return h.hexdigest()


def weights_digest(model: Any) -> str:
    """sha256 over the architecture and every tensor of the state dict (weights and BN buffers)."""
    h = hashlib.sha256(FORMAT.encode())
    cfg = getattr(model, "cfg", None)
    dump = getattr(cfg, "model_dump_json", None)
    h.update((dump() if callable(dump) else repr(type(model))).encode())
    for name, t in model.state_dict().items():
        _update(h, name, t)
    return h.hexdigest()


def level_key(weights: str, model: Any, level: Any, input_shape: tuple[int, ...],
              opset: int, variant: str = "fp32") -> str:
    """The cache key of one exported level (see the module docstring)."""
    lkey = level.key
    stats = (getattr(model, "bn_stats", None) or {}).get(lkey, {})
    bn = tensors_digest((f"{n}.{i}", t) for n in sorted(stats) for i, t in enumerate(stats[n]))
    text = f"{FORMAT}|{weights}|{lkey}|{bn}|{tuple(input_shape)}|{opset}|{variant}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _digest(path: Path) -> str:
    from adaptive_csp.util.files import sha256_file

    return sha256_file(path)


def _intact(path: Path) -> bool:
    """True when ``path`` and its ``.sha256`` sidecar exist and agree."""
    try:
        want = Path(f"{path}.sha256").read_text().strip()
        return bool(want) and _digest(path) == want
    except (OSError, UnicodeDecodeError):
        return False


_fallback: dict[str, Path] = {}
_fallback_lock = threading.Lock()


def _private_dir(directory: Path, err: OSError) -> Path:
    """This process's stand-in for an unwritable ``directory`` (created once, removed at exit)."""
    with _fallback_lock:
        d = _fallback.get(str(directory))
        if d is None:
            d = Path(tempfile.mkdtemp(prefix="adaptive-csp-cache-"))
            atexit.register(shutil.rmtree, d, True)
            _fallback[str(directory)] = d
            log.warning("cache %s cannot be written (%s); building in %s for this process", directory, err, d)
    return d


def _build_into(directory: Path, name: str, build: Callable[[Path], None]) -> Path:
    path = directory / name
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        build(Path(tmp))
        digest = _digest(Path(tmp))
        side_tmp = f"{tmp}.sha256"
        with open(side_tmp, "w") as f:
            f.write(digest + "\n")
        os.replace(tmp, path)  # the file first, then its digest: a crash between leaves a file that heals
        os.replace(side_tmp, f"{path}.sha256")
    finally:
        for t in (tmp, f"{tmp}.sha256"):
            if os.path.exists(t):
                os.unlink(t)
    return path


def cached_file(directory: Path, name: str, build: Callable[[Path], None], *,
                rebuild: bool = False) -> tuple[Path, bool]:
    """``directory/name``, built by ``build(tmp_path)`` and renamed into place unless an intact copy exists
    (see the module docstring: damaged files heal; an unwritable directory falls back to a private one).
    ``rebuild=True`` builds anew even over an intact file (it failed to load).

    Returns (path, built): ``built`` is False when an existing file was reused.
    """
    directory = _fallback.get(str(directory), directory)
    path = directory / name
    if path.is_file() and not rebuild:
        if _intact(path):
            return path, False
        why = ("has no SHA-256 beside it (written before the cache kept digests, or interrupted)"
               if not Path(f"{path}.sha256").exists() else "does not match its SHA-256 (truncated or altered)")
        log.warning("cached file %s %s; rebuilding it", path, why)
    elif rebuild:
        log.warning("cached file %s failed to load; rebuilding it", path)
    try:
        return _build_into(directory, name, build), True
    except OSError as e:
        if directory in _fallback.values():
            raise
        return _build_into(_private_dir(directory, e), name, build), True
