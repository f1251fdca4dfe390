"""The on-disk cache of exported levels, keyed by what the exported file depends on.

A level's key hashes the format version, the level's full key (``Level.key``: every stage's setting,
width included), the model's architecture (its config), every tensor of its ``state_dict`` (weights and
BatchNorm running statistics), the level's calibrated BN statistics (``bn_stats[level.key]``), the input
shape, the ONNX opset and any variant tag (``"int8:<calibration digest>"``).  Change any of them and the
key changes, so a stale file is never used; files are written atomically (temp file + rename), so
processes sharing the cache never read a half-written one.

Location: ``cache_dir=`` where an API takes it, else ``$ADAPTIVE_CSP_CACHE``, else
``$XDG_CACHE_HOME/adaptive_csp`` (``~/.cache/adaptive_csp``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cache_dir", "weights_digest", "level_key", "tensors_digest", "cached_file"]

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


def cached_file(directory: Path, name: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """``directory/name``, built by ``build(tmp_path)`` and renamed into place if missing.

    Returns (path, built): ``built`` is False when an existing file was reused.
    """
    path = directory / name
    if path.is_file():
        return path, False
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        build(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path, True
