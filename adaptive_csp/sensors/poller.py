"""Background sensor polling: a thread reads the source; the hot path only reads the latest snapshot.

``SensorPoller(source, rate_hz=2.0)`` polls at ``rate_hz`` but never faster than the source's
``min_interval_s`` (slow sensor reads belong on a thread, and a governor must not run faster than its
sensor updates — FACTS.md "Governor and thermal reference constants").  :meth:`latest` is one attribute
read: it never waits for a sensor, even one that blocks for seconds.

Faults never escape the thread: a read that raises, returns None, or yields sanitized-away values is
counted by kind in :attr:`faults` and logged once per kind.  After a failed read :meth:`latest` returns
the last good values tagged with ``source:error`` / ``source:none`` in ``Readings.faults`` (and an old
timestamp), so policies can go to their safe level; before the first read it is an empty snapshot tagged
``source:pending``.  Staleness: :meth:`age` and :attr:`stale` (age > ``stale_after_s``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from adaptive_csp.sensors.auto import create_source
from adaptive_csp.sensors.base import close_source, source_interval, source_name
from adaptive_csp.sensors.readings import Readings
from adaptive_csp.util.log import OnceLogger

__all__ = ["SensorPoller"]

log = logging.getLogger(__name__)


class SensorPoller:
    def __init__(self, source: Any = "auto", rate_hz: float = 2.0, *,
                 clock: Callable[[], float] = time.monotonic, stale_after_s: float | None = None,
                 close_source_on_close: bool | None = None):
        if not rate_hz or rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz!r}")
        owned = not callable(getattr(source, "read", None))
        self.source = create_source(source, clock=clock) if owned else source
        self._owns = owned if close_source_on_close is None else close_source_on_close
        self.name = source_name(self.source)
        self.clock = clock
        self.rate_hz = float(rate_hz)
        self.period = max(1.0 / self.rate_hz, source_interval(self.source))
        self.stale_after_s = float(stale_after_s) if stale_after_s else max(3.0 * self.period, 2.0)
        self.faults: Counter[str] = Counter()
        self.reads = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_ok: float | None = None  # clock() when the last good read finished
        self.read_s = 0.0  # duration of the last read
        self._once = OnceLogger(log)
        self._good: Readings | None = None
        self._latest = Readings(timestamp=clock(), source=f"{self.name}(pending)", faults=("source:pending",))
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None

    # hot path ----------------------------------------------------------------------------------------
    def latest(self) -> Readings:
        """The newest snapshot; never blocks on the sensor."""
        return self._latest

    # status ------------------------------------------------------------------------------------------
    def age(self, now: float | None = None) -> float:
        return (self.clock() if now is None else now) - self._latest.timestamp

    @property
    def stale(self) -> bool:
        stale = self.age() > self.stale_after_s
        if stale:
            self._fault("stale", "sensor snapshot from %s is stale (older than %.1f s)", self.name,
                        self.stale_after_s)
        return stale

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        return {"source": self.name, "rate_hz": self.rate_hz, "period_s": self.period,
                "reads": self.reads, "errors": self.errors, "age_s": round(self.age(), 3),
                "stale": self.stale, "faults": dict(self.faults), "last_error": self.last_error,
                "read_s": round(self.read_s, 6), "running": self.running}

    # polling -----------------------------------------------------------------------------------------
    def _fault(self, kind: str, msg: str, *args: Any) -> None:
        self.faults[kind] += 1
        self._once(kind, msg, *args)

    def _failed(self, tag: str) -> None:
        base = self._good or self._latest
        faults = tuple(dict.fromkeys((*base.faults, tag)))
        self._latest = base.with_(faults=faults)

    def poll_once(self) -> Readings:
        """Read the source once (in the caller's thread) and publish the result; never raises."""
        t0 = self.clock()
        try:
            r = self.source.read()
        except Exception as e:  # noqa: BLE001 - a sensor must never crash the camera loop
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            self._fault(f"error:{type(e).__name__}", "sensor source %s raised %s: %s", self.name,
                        type(e).__name__, e)
            self._failed("source:error")
            return self._latest
        finally:
            self.reads += 1
            self.read_s = self.clock() - t0
        if not isinstance(r, Readings):
            self._fault("none", "sensor source %s returned %r instead of Readings", self.name,
                        type(r).__name__)
            self._failed("source:none")
            return self._latest
        for f in r.faults:
            self._fault(f, "sensor fault from %s: %s", self.name, f)
        if self.clock() - r.timestamp > self.stale_after_s:
            self._fault("stale", "sensor source %s returned a stale snapshot (%.1f s old)", self.name,
                        self.clock() - r.timestamp)
        self._good = r
        self._latest = r
        self.last_ok = self.clock()
        return r

    def _run(self) -> None:
        nxt = self.clock()
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as e:  # noqa: BLE001 - defensive: the thread must outlive any bug
                self._fault(f"poller:{type(e).__name__}", "sensor poller %s: %s", self.name, e)
            self._first.set()
            nxt += self.period
            now = self.clock()
            if nxt < now:  # a slow read: restart the schedule instead of bursting to catch up
                nxt = now
            if self._stop.wait(max(0.0, nxt - now)):
                break

    def start(self, wait: float = 1.0) -> SensorPoller:
        """Start the thread; wait up to ``wait`` seconds for the first read (0 = don't wait)."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"sensor-poller:{self.name}", daemon=True)
        self._thread.start()
        if wait > 0:
            self._first.wait(wait)
        return self

    def close(self, timeout: float = 2.0) -> None:
        """Stop and join the thread (up to ``timeout``; a source stuck in read is left to the daemon)."""
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            if t.is_alive():
                log.warning("sensor poller %s: read still blocked after %.1f s; left behind", self.name,
                            timeout)
        if self._owns:
            close_source(self.source)

    def __enter__(self) -> SensorPoller:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
