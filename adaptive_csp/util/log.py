"""Once-per-kind logging: one log line per fault kind, not one per call."""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["OnceLogger"]


class OnceLogger:
    """Logs the first occurrence of each ``kind`` only (one log line per fault kind, not per call).

    ``once(kind, msg, *args, level=logging.WARNING)`` returns True when it logged, False when ``kind``
    was already seen; ``reset()`` forgets every kind.  Thread-safe.
    """

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, kind: str, msg: str, *args: Any, level: int = logging.WARNING) -> bool:
        with self._lock:
            if kind in self.seen:
                return False
            self.seen.add(kind)
        self.logger.log(level, msg, *args)
        return True

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
