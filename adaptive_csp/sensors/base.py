"""What every sensor source shares: the ``Source`` protocol and small helpers.

A source is any object with ``read() -> Readings``.  Optional attributes the rest of the package uses:

- ``name`` (str): shown in ``Readings.source`` and in logs;
- ``min_interval_s`` (float): the poller never calls ``read`` faster than this (jtop: 0.5 s, ADPF
  refuses thermal reads faster than ~1/s — FACTS.md "Governor and thermal reference constants");
- ``available`` (bool): False when the hardware/service is absent (the source then returns empty Readings);
- ``close()``: release handles.

Sources never raise for absent hardware: a missing battery or thermal zone is a None field.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

from adaptive_csp.sensors.readings import Readings

__all__ = ["Source", "source_name", "source_interval", "close_source"]


@runtime_checkable
class Source(Protocol):
    def read(self) -> Readings: ...


def source_name(src: Any) -> str:
    return str(getattr(src, "name", None) or type(src).__name__)


def source_interval(src: Any) -> float:
    try:
        v = float(getattr(src, "min_interval_s", 0.0) or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return v if v > 0 else 0.0


def close_source(src: Any) -> None:
    fn = getattr(src, "close", None)
    if callable(fn):
        try:
            fn()
        except Exception:  # noqa: BLE001 - closing must never raise
            logging.getLogger(__name__).debug("closing %s failed", source_name(src), exc_info=True)
