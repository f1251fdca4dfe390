"""Telemetry, the last stage of a runner call: a bounded ring buffer of recent calls, running counters,
stats and JSONL / CSV export.

Each record is ``(time, level, latency_ms, reason, readings summary, batch, result, times)``; ``result`` is
what the call answered — a classifier's predicted class and score (a batch: classes joined by ``|``, the
lowest score), a detector's number of detections and their mean score; ``times`` the call's stage stamps
(:mod:`.results`), kept raw on the hot path and turned into milliseconds per stage (``preprocess_ms``,
``decide_ms``, ``inference_ms``, ``postprocess_ms``, like Ultralytics' predictor's ``speed``) on export and in
``stats()["speed_ms"]`` (means over the buffer).  The buffer keeps the last ``capacity`` records (memory
stays bounded however long the camera runs).  Counters (calls, frames, calls per level, level switches,
skipped and bad frames, faults) cover the whole run.  ``stats()`` reports them with p50 / p95 latency over
the buffer.  The caller serialises ``record`` (the runner holds its lock).
"""

from __future__ import annotations

import csv
import json
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptive_csp.runtime.results import STAGES, stage_ms
from adaptive_csp.runtime.telemetry_file import TelemetryFile, jsonable
from adaptive_csp.util.stats import percentile

__all__ = ["Telemetry", "TelemetryOptions"]

_STAGE_COLUMNS = tuple(f"{s}_ms" for s in STAGES)
COLUMNS = ("time", "level", "latency_ms", "reason", "batch", "class", "score", "detections", *_STAGE_COLUMNS,
           "readings")


@dataclass(frozen=True)
class TelemetryOptions:
    """The runner's telemetry (``AdaptiveRunner(telemetry=TelemetryOptions(...))``; the flat keyword
    ``telemetry_size`` and a path or TelemetryFile as ``telemetry=`` mean the same).

    size: records kept in memory (the ring buffer, >= 1); file: a path, or a
    :class:`~adaptive_csp.runtime.telemetry_file.TelemetryFile` for ``max_bytes``, ``backups``, ``flush_s``:
    every record is also appended there as JSONL from a background thread, rotated by size, so a crash
    loses at most the last ``flush_s``; None: in memory only.
    """

    size: int = 4096
    file: Any = None

    def __post_init__(self) -> None:
        _check_capacity(self.size)

    def build(self, class_names: list[str] | None = None) -> Telemetry:
        """The telemetry, its file writer started when there is a file."""
        tel = Telemetry(self.size, class_names)
        if self.file is not None:  # every record also appended to disk (survives a crash)
            tf = self.file if isinstance(self.file, TelemetryFile) else TelemetryFile(self.file)
            tel.sink = tf.start(tel.row)
        return tel


class Telemetry:
    """``class_names``: to name a classifier's predicted labels in exports (None: the label number)."""

    def __init__(self, capacity: int = 4096, class_names: list[str] | None = None):
        _check_capacity(capacity)
        self.capacity = int(capacity)
        self.class_names = list(class_names) if class_names else None
        self.records: deque[tuple] = deque(maxlen=self.capacity)
        self.sink: Any = None  # a TelemetryFile: every record also goes to disk (runtime/telemetry_file.py)
        self.reset()

    def reset(self) -> None:
        self.records.clear()
        self.calls = 0
        self.frames = 0
        self.per_level: Counter[int] = Counter()
        self.switches = 0
        self.skipped = 0
        self.bad_frames = 0
        self.faults: Counter[str] = Counter()
        self.last_level: int | None = None
        self.last_reason = ""
        self._summary_src: object = None
        self._summary: dict[str, Any] = {}

    # hot path -------------------------------------------------------------------------------------------
    def summarize(self, readings: Any) -> dict[str, Any]:
        """``readings.summary()``, computed once per snapshot object (the poller reuses it between reads)."""
        if readings is not self._summary_src:
            self._summary_src = readings
            try:
                self._summary = readings.summary() if readings is not None else {}
            except Exception:  # noqa: BLE001 - telemetry must never break inference
                self._summary = {}
        return self._summary

    def record(self, t: float, level: int, latency_ms: float, reason: str, readings: Any, batch: int,
               result: tuple | None = None, times: tuple[float, ...] | None = None) -> None:
        """``result``: ``("cls", labels, scores)`` or ``("det", count, mean score or None)``; ``times``: the
        call's stage stamps.  Both kept raw (named only on export, off the hot path)."""
        self.calls += 1
        self.frames += batch
        self.per_level[level] += 1
        if self.last_level is not None and level != self.last_level:
            self.switches += 1
        self.last_level, self.last_reason = level, reason
        rec = (t, level, latency_ms, reason, self.summarize(readings), batch, result, times)
        self.records.append(rec)
        if self.sink is not None:
            self.sink.put(rec)

    def fault(self, kind: str) -> None:
        self.faults[kind] += 1

    # reporting ------------------------------------------------------------------------------------------
    def latencies(self) -> list[float]:
        return [r[2] for r in self.records]

    def stats(self) -> dict[str, Any]:
        lat = self.latencies()
        return {
            "calls": self.calls,
            "frames": self.frames,
            "per_level": dict(sorted(self.per_level.items())),
            "switches": self.switches,
            "skipped": self.skipped,
            "bad_frames": self.bad_frames,
            "faults": dict(self.faults),
            "level": self.last_level,
            "reason": self.last_reason,
            "window": len(lat),
            "p50_ms": percentile(lat, 50.0) if lat else None,
            "p95_ms": percentile(lat, 95.0) if lat else None,
            "mean_ms": sum(lat) / len(lat) if lat else None,
            "speed_ms": self.speed(),
        }

    def speed(self) -> dict[str, float] | None:
        """Mean milliseconds per stage over the buffer's calls that carry stage stamps (None: none do)."""
        per = [ms for ms in (stage_ms(r[7]) for r in self.records) if ms is not None]
        return {s: sum(m[s] for m in per) / len(per) for s in STAGES} if per else None

    def _result(self, res: tuple | None) -> tuple[Any, Any, Any]:
        """``(class, score, detections)`` of one record's result."""
        if res is None:
            return None, None, None
        if res[0] == "det":
            return None, res[2], res[1]
        _, labels, scores = res
        names = self.class_names
        text = "|".join(names[int(k)] if names and 0 <= int(k) < len(names) else str(int(k)) for k in labels)
        return text, float(min(scores)) if len(scores) else None, None

    def row(self, record: tuple) -> dict[str, Any]:
        """One record as the dict ``export_jsonl`` writes (also what a TelemetryFile appends); the stage
        columns are None for a record without stamps."""
        t, lv, lat, why, s, b, res = record[:7]
        ms = stage_ms(record[7] if len(record) > 7 else None)  # a record without stage stamps: no times
        stages = (None,) * len(STAGES) if ms is None else tuple(ms.values())
        return dict(zip(COLUMNS, (t, lv, lat, why, b, *self._result(res), *stages, dict(s)), strict=True))

    def rows(self) -> list[dict[str, Any]]:
        return [self.row(r) for r in self.records]

    def export_jsonl(self, path: str | Path) -> Path:
        p = Path(path)
        with p.open("w") as f:
            for row in self.rows():
                f.write(json.dumps(row, default=jsonable) + "\n")
        return p

    def export_csv(self, path: str | Path) -> Path:
        """One row per record; the readings summary is flattened into ``r.<field>`` columns."""
        rows = self.rows()
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row["readings"] if k not in keys]
        p = Path(path)
        with p.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow([*COLUMNS[:-1], *(f"r.{k}" for k in keys)])
            for row in rows:
                r = row["readings"]
                w.writerow([*("" if row[c] is None else row[c] for c in COLUMNS[:-1]),
                            *("" if r.get(k) is None else r[k] for k in keys)])
        return p


def _check_capacity(capacity: int) -> None:
    if capacity < 1:
        raise ValueError(f"telemetry capacity must be >= 1, got {capacity}")


