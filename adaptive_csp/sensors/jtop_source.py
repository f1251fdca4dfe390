"""NVIDIA Jetson source through jetson-stats (``jtop``, extra ``adaptive-csp[jetson]``, AGPL-3.0).

``jtop`` is imported lazily.  Without the package, or without its ``jtop.service`` (``start()`` raises
``JtopException`` "The jtop.service is not active"), the source reports ``available = False`` with one
log line and returns empty Readings.  Field mapping (FACTS.md "Machine and packages"):

- ``stats['CPU1'..'CPUn']`` (percent, or 'OFF') → ``per_cpu_percent`` / ``cpu_percent`` (mean of online);
- ``stats['GPU']`` → ``gpu_percent``;
- ``.temperature`` {name: {online, temp}} (or ``stats['Temp <name>']``) → ``temperatures_c``; an offline
  sensor (``online`` False or the −256 °C marker) is dropped, so it is *absent*, not a fault;
- ``.power['tot']['power']`` (mW, or ``stats['Power TOT']``) → ``power_w``.

jtop's own update interval is kept ≥ 0.5 s, and so is this source's ``min_interval_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from adaptive_csp.sensors.readings import Readings
from adaptive_csp.util.log import OnceLogger

__all__ = ["JtopSource", "readings_from_jtop", "OFFLINE_C"]

log = logging.getLogger(__name__)

OFFLINE_C = -256.0  # jtop's marker for an offline thermal sensor


def _f(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def readings_from_jtop(stats: Mapping[str, Any] | None, power: Mapping[str, Any] | None = None,
                       temperature: Mapping[str, Any] | None = None, *, now: float,
                       name: str = "jtop") -> Readings:
    """Map jtop's ``stats``, ``power`` and ``temperature`` structures to a sanitized Readings."""
    stats = dict(stats or {})
    kw: dict[str, Any] = {"timestamp": now, "source": name}
    cpus = sorted((k for k in stats if k.startswith("CPU") and k[3:].isdigit()), key=lambda k: int(k[3:]))
    per = [_f(stats[k]) for k in cpus]
    online = [p for p in per if p is not None]  # 'OFF' cores are skipped
    if online:
        kw["per_cpu_percent"] = tuple(online)
        kw["cpu_percent"] = sum(online) / len(online)
    if "GPU" in stats:
        kw["gpu_percent"] = _f(stats["GPU"])
    temps = _temperatures(stats, temperature)
    if temps:
        kw["temperatures_c"] = temps
    mw = None
    if power and isinstance(power.get("tot"), Mapping):
        mw = _f(power["tot"].get("power"))
    if mw is None and "Power TOT" in stats:
        mw = _f(stats["Power TOT"])
    if mw is not None:
        kw["power_w"] = mw / 1000.0
    return Readings.sanitized(**kw)


def _temperatures(stats: Mapping[str, Any], temperature: Mapping[str, Any] | None) -> dict[str, float]:
    """Zone temperatures from jtop's ``temperature`` structure, else from the ``Temp <zone>`` stats keys;
    offline zones (flagged, or at jtop's offline reading) are left out."""
    temps: dict[str, float] = {}
    if temperature:
        for k, v in temperature.items():
            if isinstance(v, Mapping):
                t = _f(v.get("temp"))
                if v.get("online", True) is False:
                    continue
            else:
                t = _f(v)
            if t is None or t <= OFFLINE_C:
                continue
            temps[str(k)] = t
    else:
        for k, v in stats.items():
            if k.startswith("Temp "):
                t = _f(v)
                if t is not None and t > OFFLINE_C:
                    temps[k[5:]] = t
    return temps


class JtopSource:
    """Reads the running jtop client's latest data; never blocks waiting for a new sample."""

    name = "jtop"

    def __init__(self, interval: float = 0.5, clock: Callable[[], float] = time.monotonic,
                 quiet: bool = False):
        self.interval = max(0.5, float(interval))
        self.min_interval_s = self.interval
        self.clock = clock
        self._once = OnceLogger(log)
        self._jtop: Any = None
        self.available = False
        self.error: str | None = None
        level = logging.INFO if quiet else logging.WARNING
        try:
            from jtop import jtop  # lazy: optional, AGPL extra
        except Exception as e:  # noqa: BLE001 - ImportError or a broken install
            self.error = f"jetson-stats not installed ({type(e).__name__}: {e})"
        else:
            try:
                client = jtop(interval=self.interval)
                client.start()
            except Exception as e:  # noqa: BLE001 - JtopException when the service is down
                self.error = f"jtop service unavailable ({type(e).__name__}: {e})".replace("\n", " ")
            else:
                self._jtop = client
                self.available = True
        if self.error:
            self._once("unavailable", "jtop source unavailable: %s", self.error, level=level)

    def read(self) -> Readings:
        now = self.clock()
        j = self._jtop
        if j is None:
            return Readings(timestamp=now, source="jtop(unavailable)")
        try:
            if hasattr(j, "is_alive") and not j.is_alive():
                raise RuntimeError("jtop client stopped")
            stats = j.stats
            power = getattr(j, "power", None)
            temperature = getattr(j, "temperature", None)
        except Exception as e:  # noqa: BLE001 - the service went away mid-run
            self._once(f"read:{type(e).__name__}", "jtop read failed (%s); source now unavailable", e)
            self.available = False
            self.close()
            return Readings(timestamp=now, source="jtop(unavailable)", faults=("source:jtop_lost",))
        return readings_from_jtop(stats, power, temperature, now=now, name=self.name)

    def close(self) -> None:
        j, self._jtop = self._jtop, None
        if j is not None:
            try:
                j.close()
            except Exception:  # noqa: BLE001
                log.debug("jtop close failed", exc_info=True)
