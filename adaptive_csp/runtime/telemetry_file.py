"""Telemetry that survives a crash: every record appended to a JSONL file from a background thread.

``AdaptiveRunner(..., telemetry="run.jsonl")`` (or a :class:`TelemetryFile` for the settings) hands each
record to :meth:`TelemetryFile.put` — on the hot path only a ``deque.append`` — and a writer thread
formats the waiting records every ``flush_s`` (0.25 s) into the lines ``export_jsonl`` writes (time,
level, latency, reason, batch, class, score, detections, readings), appends them, flushes and
``fsync``-s.  After ``kill -9`` the file holds every record older than about ``flush_s`` (what the kernel
had; ``fsync`` extends that to a power cut).

* **Rotation by size:** before a write would take the file past ``max_bytes`` (default 16 MiB) it is
  renamed to ``NAME.1`` (``NAME.1`` → ``NAME.2`` …, at most ``backups``, default 3, the oldest deleted),
  so the files never hold more than ``max_bytes × (backups + 1)``.
* **Bounded memory:** at most ``max_pending`` records wait for the writer (default 100 000, minutes of
  a fast camera); past that the oldest waiting ones are dropped and counted (``dropped``), never blocking
  the camera loop.
* **A disk that fails** (full, read-only, removed): the error is logged once per kind, the records wait
  (bounded as above) and are written when the disk takes them again; nothing reaches the caller.

The file is opened in append mode: a restarted camera continues the same log.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adaptive_csp.util.log import OnceLogger

__all__ = ["TelemetryFile", "jsonable"]

log = logging.getLogger("adaptive_csp.runtime")


class TelemetryFile:
    def __init__(self, path: str | os.PathLike, *, max_bytes: int = 16 << 20, backups: int = 3,
                 flush_s: float = 0.25, max_pending: int = 100_000, fsync: bool = True):
        if isinstance(max_bytes, bool) or int(max_bytes) < 1024:
            raise ValueError(f"max_bytes must be >= 1024, got {max_bytes!r}")
        if isinstance(backups, bool) or int(backups) < 0:
            raise ValueError(f"backups must be >= 0, got {backups!r}")
        if not flush_s > 0:
            raise ValueError(f"flush_s must be > 0, got {flush_s!r}")
        self.path = Path(path)
        self.max_bytes, self.backups, self.flush_s = int(max_bytes), int(backups), float(flush_s)
        self.fsync = bool(fsync)
        self._pending: deque[tuple] = deque(maxlen=int(max_pending))
        self.written = 0  # records on disk
        self.dropped = 0  # records lost to a full queue (a disk that failed for long)
        self._format: Callable[[tuple], dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._once = OnceLogger(log)
        self._thread: threading.Thread | None = None

    def put(self, record: tuple) -> None:
        """Queue one record (the hot path: a length check and a ``deque.append``, atomic under the GIL)."""
        q = self._pending
        if len(q) == q.maxlen:
            self.dropped += 1  # the oldest waiting record makes room
        q.append(record)

    def start(self, format_row: Callable[[tuple], dict[str, Any]]) -> TelemetryFile:
        """Begin writing; ``format_row(record) -> dict`` turns a telemetry record into its JSON object."""
        self._format = format_row
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="adaptive-csp-telemetry", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write what is waiting now (the writer thread calls this; safe to call from elsewhere)."""
        n = len(self._pending)
        if not n or self._format is None:
            return 0
        lines = [self._line(self._pending[i]).encode() for i in range(n)]
        try:
            self._write(lines)
        except OSError as e:
            self._once(f"telemetry:{type(e).__name__}", "telemetry file %s cannot be written (%s); records wait "
                       "in memory (at most %d) and are written when it can", self.path, e, self._pending.maxlen)
            return 0
        for _ in range(n):
            self._pending.popleft()
        self.written += n
        return n

    def _line(self, record: tuple) -> str:
        try:
            return json.dumps(self._format(record), default=jsonable) + "\n"
        except Exception as e:  # noqa: BLE001 - one bad record must not stop the log
            self._once(f"telemetry-format:{type(e).__name__}", "telemetry record not written (%s: %s)",
                       type(e).__name__, e)
            return ""

    def _write(self, lines: list[bytes]) -> None:
        """Append ``lines``, rotating first whenever the next line would take the file past ``max_bytes``
        (a single line longer than that is written alone)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        chunk: list[bytes] = []
        for line in lines:
            if size and size + len(line) > self.max_bytes:
                self._append(b"".join(chunk))
                chunk = []
                self._rotate()
                size = 0
            chunk.append(line)
            size += len(line)
        self._append(b"".join(chunk))

    def _append(self, data: bytes) -> None:
        if not data:
            return
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())

    def _rotate(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for i in range(self.backups - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is waiting and stop the writer thread (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.flush()

    def status(self) -> dict[str, Any]:
        return {"path": str(self.path), "written": self.written, "pending": len(self._pending),
                "dropped": self.dropped}



def jsonable(v: Any) -> Any:
    """``json.dumps``' ``default``: tuples and sets as lists, anything else as its text."""
    if isinstance(v, (tuple, set, frozenset)):
        return list(v)
    return str(v)
