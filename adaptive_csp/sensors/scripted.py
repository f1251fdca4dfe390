"""Scripted and replayed sensors: a list, a function of time, or a CSV/JSONL trace.

The simulator and the tests drive policies through this source, so it follows the real ones: ``read()``
returns a sanitized :class:`Readings` stamped with the read time.

Scripts
    - a **list** of dicts / Readings: each ``read()`` returns the next item and the last one repeats
      (``loop=True`` starts over).  If every dict has a ``"t"`` key the list is a **schedule** instead:
      ``read`` returns the entry in force at the elapsed time (zero-order hold, or linear between entries
      with ``interpolate=True``).
    - a **function** ``fn(t) -> dict | Readings | None`` of the elapsed time ``t`` in seconds.
    - a **trace** file: :meth:`ScriptedSource.from_trace` (format below); :func:`write_trace` writes one.

Items: a dict holds Readings fields (``temperature_c``, ``battery_percent``, ...); it is stamped with the
read time unless it carries its own ``"timestamp"`` (use that to inject a stale snapshot).  A Readings
item is returned as it is.  For fault injection an item may be ``None`` (read returns None) or an
exception instance (read raises it).

Clock
    ``read(now=t)`` reads at time ``t`` (what the simulator does); otherwise at ``clock()``, by default
    ``time.monotonic``.  ``clock=ManualClock()`` gives a clock the caller moves with ``source.advance(dt)``
    or ``source.clock.set(t)``.  Elapsed time counts from ``start`` (default: the first read).

Trace format
    JSONL: one object per line, keys ``t`` plus Readings fields.  CSV: a header with ``t`` and Readings
    fields; an empty cell is None; ``plugged`` is true/false/1/0; ``per_cpu_percent`` and ``load_avg``
    are separated by ``;``; per-zone temperatures are columns ``temp.<zone>``.  A file with
    ``timestamp`` but no ``t`` uses it as ``t``.  Unknown columns (e.g. a simulator's ``level``) are
    ignored.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from adaptive_csp.sensors.readings import Readings

__all__ = ["ScriptedSource", "ManualClock", "write_trace", "load_trace"]

FIELDS = frozenset(f.name for f in fields(Readings)) - {"faults"}
_TUPLES = ("per_cpu_percent", "load_avg")


class ManualClock:
    """A clock that only moves when told: ``clock()``, ``clock.advance(dt)``, ``clock.set(t)``."""

    def __init__(self, t: float = 0.0):
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += float(dt)
        return self.t

    def set(self, t: float) -> None:
        self.t = float(t)


def _check_keys(d: dict, strict: bool) -> dict:
    extra = set(d) - FIELDS - {"t"}
    if extra and strict:
        raise ValueError(f"unknown Readings fields {sorted(extra)}; known: {sorted(FIELDS)}")
    return {k: v for k, v in d.items() if k in FIELDS or k == "t"}


class ScriptedSource:
    """A source that plays a list, a function of time or a trace (see the module docstring)."""

    def __init__(self, script: Sequence[Any] | Callable[[float], Any], *,
                 clock: Callable[[], float] | None = None, start: float | None = None,
                 loop: bool = False, interpolate: bool = False, name: str = "scripted",
                 min_interval_s: float = 0.0, strict: bool = True):
        self.name = name
        self.min_interval_s = float(min_interval_s)
        self.clock = clock or time.monotonic
        self.start = start
        self.loop = loop
        self.interpolate = interpolate
        self.available = True
        self.reads = 0
        self._fn: Callable[[float], Any] | None = None
        self._items: list[Any] = []
        self._times: list[float] | None = None
        if callable(script) and not isinstance(script, (list, tuple)):
            self._fn = script
            return
        items = [(_check_keys(x, strict) if isinstance(x, dict) else x) for x in script]
        if not items:
            raise ValueError("a ScriptedSource needs at least one item")
        if all(isinstance(x, dict) and "t" in x for x in items):
            items.sort(key=lambda d: float(d["t"]))
            self._times = [float(d["t"]) for d in items]
        self._items = items

    # construction helpers --------------------------------------------------------------------------
    @classmethod
    def from_trace(cls, path: str | Path, **kw: Any) -> ScriptedSource:
        """Replay a CSV or JSONL trace (schedule mode: rows are keyed by ``t``)."""
        kw.setdefault("name", f"trace:{Path(path).name}")
        return cls(load_trace(path), strict=False, **kw)

    def advance(self, dt: float) -> float:
        """Move a :class:`ManualClock`; TypeError for any other clock."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs clock=ManualClock(); pass read(now=t) otherwise")
        return self.clock.advance(dt)

    # reading ---------------------------------------------------------------------------------------
    def _item_at(self, elapsed: float) -> Any:
        if self._fn is not None:
            return self._fn(elapsed)
        items = self._items
        if self._times is None:
            i = self.reads
            if i >= len(items):
                i = i % len(items) if self.loop else len(items) - 1
            return items[i]
        times = self._times
        if self.loop and times[-1] > 0:
            elapsed = elapsed % times[-1] if elapsed >= 0 else elapsed
        i = bisect.bisect_right(times, elapsed) - 1
        if i < 0:
            return items[0]
        if not self.interpolate or i + 1 >= len(items):
            return items[i]
        a, b = items[i], items[i + 1]
        w = (elapsed - times[i]) / (times[i + 1] - times[i]) if times[i + 1] > times[i] else 0.0
        out = dict(a)
        for k, va in a.items():
            vb = b.get(k)
            if (k not in ("t", "timestamp", "plugged") and isinstance(va, (int, float))
                    and isinstance(vb, (int, float)) and not isinstance(va, bool)):
                out[k] = va + (vb - va) * w
        return out

    def read(self, now: float | None = None) -> Readings | None:
        t = float(self.clock() if now is None else now)
        if isinstance(self.clock, ManualClock) and now is not None:
            self.clock.set(t)
        if self.start is None:
            self.start = t
        item = self._item_at(t - self.start)
        self.reads += 1
        if isinstance(item, BaseException):
            raise item
        if item is None or isinstance(item, Readings):
            return item
        if not isinstance(item, dict):
            raise TypeError(f"a scripted item must be a dict, Readings, None or exception, got {item!r}")
        d = {k: v for k, v in item.items() if k != "t"}
        d.setdefault("timestamp", t)
        d.setdefault("source", self.name)
        return Readings.sanitized(**d)


# traces ------------------------------------------------------------------------------------------------
def _cell(name: str, text: str) -> Any:
    text = text.strip()
    if text == "" or (name == "plugged" and text.lower() in ("none", "null")):
        return None
    if name == "plugged":
        return text.lower() in ("1", "true", "yes", "y", "t")
    if name in _TUPLES:
        return tuple(float(x) for x in text.replace(";", " ").split())
    if name == "temperatures_c":
        return json.loads(text)
    if name == "source":
        return text
    try:
        return float(text)
    except ValueError:
        return math.nan  # garbage → a fault flagged by Readings.sanitized


def load_trace(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV or JSONL trace as dicts with ``t`` and Readings fields."""
    p = Path(path)
    rows = _read_jsonl(p) if p.suffix.lower() in (".jsonl", ".ndjson", ".json") else _read_csv(p)
    for i, r in enumerate(rows):
        if "t" not in r:
            if "timestamp" not in r:
                raise ValueError(f"{p}: row {i + 1} has neither 't' nor 'timestamp'")
            r["t"] = r.pop("timestamp")
        if r["t"] is None:
            raise ValueError(f"{p}: row {i + 1} has an empty 't'")
    if not rows:
        raise ValueError(f"{p}: empty trace")
    return [_check_keys(r, strict=False) for r in rows]


def _read_jsonl(p: Path) -> list[dict[str, Any]]:
    """One JSON object per non-blank line."""
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError, ValueError) as e:
                raise ValueError(f"{p}:{n}: not a JSON object ({e})") from e
    return rows


def _read_csv(p: Path) -> list[dict[str, Any]]:
    """CSV rows: known columns parsed by :func:`_cell`, ``temp.<zone>`` columns into ``temperatures_c``."""
    rows: list[dict[str, Any]] = []
    with p.open(newline="") as f:
        for raw in csv.DictReader(f):
            row: dict[str, Any] = {}
            temps: dict[str, float] = {}
            for k, v in raw.items():
                if k is None or v is None:
                    continue
                k = k.strip()
                if k.startswith("temp."):
                    if v.strip():
                        temps[k[5:]] = float(v)
                elif k in FIELDS or k == "t":
                    row[k] = _cell(k, v)
            if temps:
                row["temperatures_c"] = temps
            rows.append(row)
    return rows


def write_trace(rows: Iterable[Readings | dict[str, Any]], path: str | Path) -> Path:
    """Write Readings (``t`` = their timestamp) or dicts to ``.jsonl`` or ``.csv`` (by suffix)."""
    p = Path(path)
    out: list[dict[str, Any]] = []
    for r in rows:
        if isinstance(r, Readings):
            d = {k: v for k, v in r.__dict__.items() if v is not None and k not in ("faults", "timestamp")}
            d = {"t": r.timestamp, **d}
        else:
            d = dict(r)
        out.append(d)
    if p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        p.write_text("".join(json.dumps(d, default=list) + "\n" for d in out))
        return p
    cols: list[str] = []
    zones: list[str] = []
    for d in out:
        for k, v in d.items():
            if k == "temperatures_c" and isinstance(v, dict):
                zones += [z for z in v if z not in zones]
            elif k not in cols:
                cols.append(k)
    header = cols + [f"temp.{z}" for z in zones]
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for d in out:
            row = []
            for k in cols:
                v = d.get(k)
                if v is None:
                    row.append("")
                elif k in _TUPLES:
                    row.append(";".join(str(x) for x in v))
                else:
                    row.append(str(v))
            temps = d.get("temperatures_c") or {}
            row += ["" if temps.get(z) is None else str(temps[z]) for z in zones]
            w.writerow(row)
    return p
