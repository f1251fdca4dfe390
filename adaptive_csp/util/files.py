"""File modes: what we write is readable like any other file the user makes (their umask), not 0600.

safetensors writes through a private temporary file, so its files would come out ``-rw-------`` beside a
``-rw-r--r--`` JSON: a model copied to another user or served from a shared folder could not be read.  :func:`as_user_file` gives a written file the mode ``open()`` would have given it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

__all__ = ["as_user_file", "user_mode", "sha256_file"]

_lock = threading.Lock()


def user_mode() -> int:
    """``0o666`` less the process umask (read once per call; os.umask is process-wide, hence the lock)."""
    with _lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def as_user_file(path: str | Path) -> Path:
    """chmod ``path`` to :func:`user_mode`; a filesystem that refuses chmod keeps what it has."""
    p = Path(path)
    try:
        os.chmod(p, user_mode())
    except OSError:
        pass
    return p


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (checkpoint and model-file digests)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
