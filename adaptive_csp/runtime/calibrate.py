"""Each ladder level's latency on an engine, measured on this device, and the per-device cache of it.

:func:`measure` times every level of one or more engines at the given batch sizes with the project's one
timing loop (:func:`adaptive_csp.util.timing.interleaved_medians`: warm, round-robin over every
(engine, level) pair so machine drift hits all alike) and keeps, per level, the fastest round
(``stat="min"``, the default) or the median round.  The fastest round is the default because a profiled
latency is meant as the level's own cost: the load of other processes is what the runtime measures as
slowdown against it, and on a shared CPU the median moves with that load (2-3x between runs here, and
close rungs swap places) while the fastest round stays within a few percent.  The result is one mapping per
level, ``{"ort:b1": ms, "ort:b32": ms, ...}`` (:func:`adaptive_csp.levels.latency_key`), what
:attr:`adaptive_csp.levels.Rung.latency` holds and :meth:`LevelLadder.view` reads.

:class:`LatencyCache` keeps such measurements per device in one JSON file,
``<cache_dir>/latency/<device digest>.json`` (the same cache root as the engines' exported ONNX files:
``$ADAPTIVE_CSP_CACHE``, else ``$XDG_CACHE_HOME/adaptive_csp``).  An entry is keyed by what a latency
depends on: the architecture (config digest and input shape), the level, its precision and the engine's
thread count.  A file that is not valid JSON or not of this format is logged and rebuilt, never an error;
writes are atomic (temp file + rename), and a write merges with what another process wrote meanwhile.

:func:`calibrate_ladder` puts both together: the engine's ladder with this device's latencies, from the
cache when every entry is there (instant), else measured now (seconds) and cached.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import statistics
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_csp.engines.base import Engine, input_shape
from adaptive_csp.engines.cache import cache_dir
from adaptive_csp.levels import LevelLadder, latency_key
from adaptive_csp.util.tensors import loaded_torch, torch_threads
from adaptive_csp.util.timing import interleaved_times

__all__ = ["measure", "cpu_name", "device_id", "engine_threads", "LatencyCache", "calibrate_ladder"]

log = logging.getLogger("adaptive_csp.runtime")
FORMAT = "adaptive-csp-latency-1"
#: (rounds, iters per round) per batch size: batch 1 is sub-millisecond on small rungs, so more calls
_PLAN = {1: (9, 10)}
_PLAN_LARGE = (5, 2)
_STATS = {"median": statistics.median, "min": min}


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def device_id() -> str:
    """What names this device in the cache: CPU model, architecture, logical CPU count and host name."""
    return f"{cpu_name()}|{platform.machine()}|{os.cpu_count()} cpus|{platform.node()}"


def engine_threads(engine: Engine) -> int:
    """The intra-op threads the engine runs with (torch engines: torch's current setting)."""
    return int(getattr(engine, "threads", None) or torch_threads())


def _input_shape(engine: Engine) -> tuple[int, ...]:
    shape = getattr(engine, "shape", None)
    if shape is None:
        shape = input_shape(engine.model)
    return tuple(int(s) for s in shape)


def measure(engines: Sequence[Engine], batches: Iterable[int] = (1, 32), *, levels: Sequence[int] | None = None,
            rounds: int | None = None, warmup: int = 3, threads: int | None = None,
            stat: str = "min") -> list[dict[str, float]]:
    """Median ms per call of every level (default: all) of every engine at every batch size; one mapping
    per level, keyed ``"<engine>:b<batch>"``.  The engines must share one ladder.  ``threads`` sets torch's
    thread count for the measurement (restored after); ONNX Runtime sessions keep the engine's own.
    ``rounds`` overrides the interleaved rounds (default 9 at batch 1, 5 above); ``stat`` is "min" (the
    fastest round's per-call mean) or "median" (of the rounds')."""
    if stat not in _STATS:
        raise ValueError(f"stat must be one of {sorted(_STATS)}, got {stat!r}")
    engines = list(engines)
    if not engines:
        raise ValueError("measure needs at least one engine")
    n = len(engines[0].ladder)
    if any(len(e.ladder) != n for e in engines):
        raise ValueError("the engines measured together must run the same ladder")
    idx = list(range(n)) if levels is None else [engines[0].ladder.index(i) for i in levels]
    batches = sorted({int(b) for b in batches})
    if not batches or batches[0] < 1:
        raise ValueError(f"batch sizes must be >= 1, got {batches}")
    out: list[dict[str, float]] = [{} for _ in range(n)]
    shape = _input_shape(engines[0])
    rng = np.random.default_rng(0)
    torch = loaded_torch()  # a torch engine's threads are torch's; ONNX Runtime sessions keep their own
    saved = torch.get_num_threads() if torch is not None else None
    if threads and torch is not None:
        torch.set_num_threads(int(threads))
    try:
        for b in batches:
            x = rng.standard_normal((b, *shape), dtype=np.float32)
            pairs = [(e, i) for e in engines for i in idx]
            r, iters = _PLAN.get(b, _PLAN_LARGE)
            times = interleaved_times([functools.partial(e.run, x, i) for e, i in pairs], rounds or r, iters, warmup)
            ms = [_STATS[stat](t) for t in times]
            for (e, i), v in zip(pairs, ms, strict=True):
                out[i][latency_key(e.name, b)] = round(float(v), 4)
    finally:
        if torch is not None:
            torch.set_num_threads(saved)
    return out


def _arch(model: Any, shape: tuple[int, ...]) -> str:
    cfg = getattr(model, "cfg", None)
    dump = getattr(cfg, "model_dump_json", None)
    digest = getattr(model, "digest", None)  # a bundle: what its files are
    text = (dump() if callable(dump) else digest if isinstance(digest, str) else repr(type(model))) + repr(shape)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _precision(engine: Engine, i: int) -> str:
    fn = getattr(engine, "precision", None)
    return fn(i) if callable(fn) else str(engine.ladder.rungs[i].extra.get("precision", "fp32"))


class LatencyCache:
    """This device's measured latencies, one JSON file per device (see the module docstring)."""

    def __init__(self, directory: str | Path | None = None, device: str | None = None):
        self.device = device if device is not None else device_id()
        digest = hashlib.sha256(self.device.encode()).hexdigest()[:16]
        self.path = cache_dir(directory) / "latency" / f"{digest}.json"

    @staticmethod
    def entry_keys(engine: Engine) -> list[str]:
        """One cache key per ladder level of ``engine``."""
        arch, t = _arch(engine.model, _input_shape(engine)), engine_threads(engine)
        return [f"{arch}|{r.level.key}|{_precision(engine, i)}|t{t}" for i, r in enumerate(engine.ladder.rungs)]

    def read(self) -> dict[str, dict[str, float]]:
        """All entries; an unreadable, corrupt or foreign file reads as empty (and is logged)."""
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            log.warning("latency cache %s is unreadable (%s); rebuilding it", self.path, e)
            return {}
        ent = doc.get("entries") if isinstance(doc, dict) and doc.get("format") == FORMAT else None
        if not isinstance(ent, dict) or not all(isinstance(v, dict) for v in ent.values()):
            log.warning("latency cache %s is not an %s file; rebuilding it", self.path, FORMAT)
            return {}
        return ent

    def get(self, keys: Sequence[str], wanted: Sequence[str]) -> list[dict[str, float]] | None:
        """The cached latencies (only the ``wanted`` latency keys) of every entry, or None if any is missing."""
        ent = self.read()
        out = []
        for k in keys:
            got = ent.get(k, {})
            vals = {w: got[w] for w in wanted if isinstance(got.get(w), (int, float)) and got[w] > 0}
            if len(vals) != len(wanted):
                return None
            out.append({w: float(v) for w, v in vals.items()})
        return out

    def put(self, keys: Sequence[str], measured: Sequence[dict[str, float]]) -> Path:
        """Merge ``measured[i]`` into entry ``keys[i]`` and write the file atomically."""
        ent = self.read()
        for k, m in zip(keys, measured, strict=True):
            ent[k] = {**ent.get(k, {}), **m}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".latency.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"format": FORMAT, "device": self.device, "entries": ent}, f, indent=1)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.path


def calibrate_ladder(engine: Engine, batches: Iterable[int] = (1,), *, force: bool = False,
                     cache: LatencyCache | str | Path | None = None, rounds: int | None = None,
                     stat: str = "min") -> LevelLadder:
    """``engine.ladder`` with this device's latencies on ``engine`` at ``batches`` merged into every rung's
    ``latency``: from the per-device cache when all are there and ``force`` is False, else measured now
    and written to the cache."""
    lc = cache if isinstance(cache, LatencyCache) else LatencyCache(cache)
    batches = sorted({int(b) for b in batches})
    wanted = [latency_key(engine.name, b) for b in batches]
    keys = lc.entry_keys(engine)
    got = None if force else lc.get(keys, wanted)
    if got is None:
        got = measure([engine], batches, rounds=rounds, stat=stat)
        lc.put(keys, got)
    return engine.ladder.with_latency(got)
