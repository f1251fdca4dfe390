"""Compute levels of an elastic CSP network.

A :class:`Level` says, for every stage, which fraction of the stage's expanded channels runs through
its blocks (``ratio``; the rest bypass them) and how many of its blocks are active (``blocks``; 0 turns
the stage's blocks off), and one ``width`` multiplier over the whole network (stem, down-sampling,
expand/transition and block channels; 1.0 = the full width).  The split ratio applies within the active
width.  A :class:`LevelLadder` is an ordered list of levels, cheapest first and the
full level last, each optionally carrying what was measured for it (MACs, latency, accuracy).

Latency per engine and batch: ``Rung.latency`` maps ``"<engine>:b<batch>"`` (``"ort:b1"``, ``"torch:b32"``;
:func:`latency_key` spells it) to measured milliseconds.  The ranking of rungs differs between engines and
batch sizes (a rung can be dominated at batch 1 on ONNX Runtime and on the front at batch 32 in torch), so
:meth:`LevelLadder.view` gives the ladder *as it runs* on one engine at one batch size: only the rungs on that
key's Pareto front (latency down, accuracy up), each carrying that key's latency as ``latency_ms``, so the
view's ``costs`` are ratios on that engine.  ``view.parent_index(i)`` maps a view index back to the ladder
the engine runs.  The plain ladder (``model.levels``) is unchanged by all this: ordered by its batch-32
latency (``latency_ms_b32``), its ``costs`` from :meth:`LevelLadder.relative_cost`.

Policies only see ladder *indices* and the ladder's relative costs; models turn a level into tensors.
This module imports nothing else from the package.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["StageLevel", "Level", "Rung", "LevelLadder", "latency_key", "engine_key"]

#: engine names as the runtime spells them -> the short name used in latency keys
_ENGINE_KEYS = {"onnxruntime": "ort"}
_KEY = re.compile(r"^[a-z][a-z0-9_]*:b[1-9][0-9]*$")


def engine_key(engine: str) -> str:
    """The short engine name of latency keys: ``"onnxruntime"`` -> ``"ort"``; others as given."""
    if not isinstance(engine, str) or not engine:
        raise ValueError(f"engine must be a non-empty name, got {engine!r}")
    return _ENGINE_KEYS.get(engine, engine)


def latency_key(engine: str, batch: int) -> str:
    """``"ort:b1"`` for ``("onnxruntime", 1)``: the key of :attr:`Rung.latency`."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    return f"{engine_key(engine)}:b{batch}"


def _check_latency(latency: Any) -> dict[str, float]:
    if not isinstance(latency, Mapping):
        raise ValueError(f"rung latency must be a mapping 'engine:bN' -> ms, got {type(latency).__name__}")
    out = {}
    for k, v in latency.items():
        if not isinstance(k, str) or not _KEY.match(k):
            raise ValueError(f"latency key {k!r} is not of the form '<engine>:b<batch>' (e.g. 'ort:b1')")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"latency {k!r} must be a positive number of ms, got {v!r}")
        out[k] = float(v)
    return out


@dataclass(frozen=True)
class StageLevel:
    """One stage's setting: split ``ratio`` (fraction of expanded channels through blocks), ``blocks``."""

    ratio: float
    blocks: int

    def __post_init__(self) -> None:
        if isinstance(self.blocks, bool) or not isinstance(self.blocks, int):
            raise ValueError(f"blocks must be an int, got {self.blocks!r}")
        if self.blocks < 0:
            raise ValueError(f"blocks must be >= 0, got {self.blocks}")
        r = float(self.ratio)
        if not math.isfinite(r) or not 0.0 < r <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {self.ratio!r}")
        object.__setattr__(self, "ratio", r)


def _check_width(width: Any) -> float:
    if isinstance(width, bool):
        raise ValueError(f"width must be a number in (0, 1], got {width!r}")
    try:
        w = float(width)
    except (TypeError, ValueError):
        raise ValueError(f"width must be a number in (0, 1], got {width!r}") from None
    if not math.isfinite(w) or not 0.0 < w <= 1.0:
        raise ValueError(f"width must be in (0, 1], got {width!r}")
    return w


@dataclass(frozen=True)
class Level:
    """Per-stage (ratio, blocks) settings plus a network ``width``; immutable and hashable (cache keys)."""

    stages: tuple[StageLevel, ...]
    width: float = 1.0

    def __init__(self, stages: Iterable[StageLevel | Sequence[Any] | dict], width: float = 1.0):
        items = []
        for s in stages:
            if isinstance(s, StageLevel):
                items.append(s)
            elif isinstance(s, dict):
                if "ratio" not in s or "blocks" not in s:
                    raise ValueError(f"a stage entry needs 'ratio' and 'blocks', got {s!r}")
                items.append(StageLevel(s["ratio"], s["blocks"]))
            else:
                ratio, blocks = s
                items.append(StageLevel(ratio, blocks))
        if not items:
            raise ValueError("a Level needs at least one stage")
        object.__setattr__(self, "stages", tuple(items))
        object.__setattr__(self, "width", _check_width(width))

    def __len__(self) -> int:
        return len(self.stages)

    def validate(self, ratios: Sequence[Sequence[float]], depths: Sequence[int],
                 widths: Sequence[float] = (1.0,)) -> Level:
        """Check against a model: ``ratios[i]`` allowed for stage i, ``depths[i]`` its block count,
        ``widths`` the model's allowed width multipliers."""
        if len(self.stages) != len(depths):
            raise ValueError(
                f"level has {len(self.stages)} stages but the model has {len(depths)}: {self.key}"
            )
        if not any(math.isclose(self.width, w, abs_tol=1e-9) for w in widths):
            raise ValueError(f"width {self.width:g} is not one of the model's widths "
                             f"{[round(w, 6) for w in widths]}")
        for i, (s, allowed, depth) in enumerate(zip(self.stages, ratios, depths)):
            if not any(math.isclose(s.ratio, a, abs_tol=1e-9) for a in allowed):
                raise ValueError(
                    f"stage {i}: ratio {s.ratio:g} is not one of the allowed ratios "
                    f"{[round(a, 6) for a in allowed]}"
                )
            if s.blocks > depth:
                raise ValueError(f"stage {i}: {s.blocks} active blocks but the stage has only {depth}")
        return self

    @property
    def key(self) -> str:
        """Compact stable text form, e.g. ``r0.5b3-r0.25b0`` (``w0.5-`` in front below full width)."""
        body = "-".join(f"r{s.ratio:g}b{s.blocks}" for s in self.stages)
        return body if self.width == 1.0 else f"w{self.width:g}-{body}"

    def to_list(self) -> list[dict[str, Any]]:
        """The stages only (the pre-width JSON form; ``width`` travels beside it)."""
        return [asdict(s) for s in self.stages]

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "stages": self.to_list()}

    @classmethod
    def from_list(cls, data: Sequence[dict | Sequence[Any]], width: float = 1.0) -> Level:
        return cls(data, width)

    @classmethod
    def parse(cls, data: Any) -> Level:
        """A Level, its :meth:`to_dict` form, or the old stages-only list (width 1)."""
        if isinstance(data, Level):
            return data
        if isinstance(data, dict):
            if "stages" not in data:
                raise ValueError(f"a level object needs 'stages' (and optionally 'width'), got keys {sorted(data)}")
            return cls(data["stages"], data.get("width", 1.0))
        if isinstance(data, (list, tuple)):
            return cls(data)
        raise ValueError(f"cannot read a Level from {type(data).__name__}")

    def __repr__(self) -> str:
        return f"Level({self.key})"


@dataclass(frozen=True)
class Rung:
    """A ladder level plus what was measured for it (None where not measured)."""

    level: Level
    macs: int | None = None
    params: int | None = None
    latency_ms: float | None = None  # batch 1 (profiled in eager torch; in a view: that view's key)
    latency_ms_b32: float | None = None  # batch 32, eager torch (None in a view)
    accuracy: float | None = None  # validation accuracy in [0, 1]
    extra: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)  # "<engine>:b<batch>" -> ms (see latency_key)

    def __post_init__(self) -> None:
        object.__setattr__(self, "latency", _check_latency(self.latency))

    def accuracy_on(self, engine: str) -> float | None:
        """The accuracy of what ``engine`` runs for this rung: a rung marked int8 (``extra["precision"]``)
        runs int8 on ONNX Runtime, at ``extra["int8_accuracy"]``; every other engine runs it in float32, at
        ``accuracy``."""
        if self.extra.get("precision") == "int8" and engine_key(engine) == "ort":
            return self.extra.get("int8_accuracy", self.accuracy)
        return self.accuracy

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("macs", "params", "latency_ms", "latency_ms_b32", "accuracy")}
        d["level"] = self.level.to_list()
        d["width"] = self.level.width
        d["extra"] = dict(self.extra)
        if self.latency:
            d["latency"] = dict(self.latency)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rung:
        if "level" not in d:
            raise ValueError("rung entry has no 'level'")
        return cls(
            level=Level.from_list(d["level"], d.get("width", 1.0)),
            macs=d.get("macs"),
            params=d.get("params"),
            latency_ms=d.get("latency_ms"),
            latency_ms_b32=d.get("latency_ms_b32"),
            accuracy=d.get("accuracy"),
            extra=dict(d.get("extra") or {}),
            latency=d.get("latency") or {},
        )


class LevelLadder:
    """Levels ordered cheapest → full.  Index ``len(ladder) - 1`` is the full level.

    ``relative_cost(i)`` is what policies use: the rung's measured latency over the full rung's — batch 32
    (per image; stable, and what profiling orders the ladder by), else batch 1 — falling back to the MAC
    ratio, falling back to an even spread when nothing was measured.  In a :meth:`view` that latency is the
    view key's (the view's rungs carry it as ``latency_ms``).

    ``view_key`` is None for a plain ladder, ``"ort:b1"`` etc. for a view.
    """

    view_key: str | None = None

    def __init__(self, rungs: Iterable[Rung | Level]):
        rs = tuple(r if isinstance(r, Rung) else Rung(level=r) for r in rungs)
        if not rs:
            raise ValueError("a LevelLadder needs at least one level")
        n = len(rs[0].level)
        for r in rs:
            if len(r.level) != n:
                raise ValueError("all levels of a ladder must have the same number of stages")
        if len({r.level for r in rs}) != len(rs):
            raise ValueError("a ladder must not repeat a level")
        self.rungs = rs
        self._costs = self._compute_costs()
        self._parent: tuple[int, ...] = tuple(range(len(rs)))  # view index -> root ladder index
        self._from_root: tuple[int, ...] = self._parent  # root ladder index -> view index

    def _compute_costs(self) -> tuple[float, ...]:
        for attr in ("latency_ms_b32", "latency_ms", "macs"):
            vals = [getattr(r, attr) for r in self.rungs]
            if all(v is not None and v > 0 for v in vals):
                top = vals[-1]
                return tuple(float(v) / top for v in vals)
        n = len(self.rungs)
        return tuple((i + 1) / n for i in range(n))

    # sequence protocol ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rungs)

    def __getitem__(self, i: int) -> Level:
        return self.rungs[self.index(i)].level

    def __iter__(self):
        return (r.level for r in self.rungs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LevelLadder) and self.rungs == other.rungs

    def __repr__(self) -> str:
        return f"LevelLadder({[r.level.key for r in self.rungs]})"

    @property
    def full(self) -> int:
        return len(self.rungs) - 1

    def index(self, i: int) -> int:
        """Normalise an index (negative counts from the end); ValueError when out of range."""
        if isinstance(i, bool) or not isinstance(i, int):
            raise ValueError(f"a ladder index must be an int, got {type(i).__name__}")
        n = len(self.rungs)
        if not -n <= i < n:
            raise ValueError(f"level index {i} is out of range for a ladder of {n} levels (0..{n - 1})")
        return i % n

    def clamp(self, i: int) -> int:
        return max(0, min(len(self.rungs) - 1, int(i)))

    def relative_cost(self, i: int) -> float:
        return self._costs[self.index(i)]

    @property
    def costs(self) -> tuple[float, ...]:
        return self._costs

    def accuracy(self, i: int) -> float | None:
        return self.rungs[self.index(i)].accuracy

    # views per engine and batch --------------------------------------------------------------------
    def view(self, engine: str, batch: int) -> LevelLadder:
        """The ladder as it runs on ``engine`` at ``batch``: the rungs on that key's Pareto front, the full
        (last) rung always last.

        Below the full rung, a rung stays when it is faster and no more accurate than the full one (as profiling
        keeps its ladder) and no other rung is at most as slow on this key and at least as accurate (one of
        them strictly; a tie in both keeps the lower index).  Accuracy is the rungs' own where every rung has
        one, else the ladder index (the ladder's promise: a higher rung is better); equal accuracies are
        ordered by that promise too, so rungs tied in accuracy (profile keeps the cheaper of tied candidates
        and, for ``--min-rungs``, tied ones) all stay when a higher one is slower.  The view is ordered by
        this key's latency; each kept rung is copied with ``latency_ms`` = this key's ms and
        ``latency_ms_b32`` = None, so ``costs`` are ratios on this engine and batch.  When not every rung has
        the key, the ladder itself comes back (``view_key`` as it is, ``parent_index`` the identity)."""
        key = latency_key(engine, batch)
        if key == self.view_key or not all(key in r.latency for r in self.rungs):
            return self
        lat = [r.latency[key] for r in self.rungs]
        accs = [r.accuracy_on(engine) for r in self.rungs]
        acc = accs if all(a is not None for a in accs) else list(range(len(self.rungs)))
        top = len(self.rungs) - 1
        below = [i for i in range(top) if lat[i] < lat[top] and acc[i] <= acc[top]]
        keep, best = [], (-math.inf, -1, -math.inf)  # the last kept rung's (accuracy, index, latency)
        for i in sorted(below, key=lambda i: (lat[i], -acc[i], i)):
            if acc[i] > best[0] or (acc[i] == best[0] and i > best[1] and lat[i] > best[2]):
                keep.append(i)
                best = (acc[i], i, lat[i])
        keep.append(top)
        out = LevelLadder(Rung(level=self.rungs[i].level, macs=self.rungs[i].macs, params=self.rungs[i].params,
                               latency_ms=lat[i], latency_ms_b32=None, accuracy=accs[i],
                               extra=dict(self.rungs[i].extra), latency=dict(self.rungs[i].latency))
                          for i in keep)
        # a rung off the view stands for the most expensive view rung not slower than it (it dominates it)
        local = [keep.index(i) if i in keep else max([j for j, k in enumerate(keep) if lat[k] <= lat[i]] or [0])
                 for i in range(len(self.rungs))]
        out._parent = tuple(self._parent[i] for i in keep)
        out._from_root = tuple(local[v] for v in self._from_root)
        out.view_key = key
        return out

    def parent_index(self, i: int) -> int:
        """The index in the ladder this view was taken from (a plain ladder: ``i`` itself)."""
        return self._parent[self.index(i)]

    @property
    def parent_indices(self) -> tuple[int, ...]:
        """``parent_index(i)`` for every rung of this view, in view order (cheapest first on this key, so
        not necessarily ascending)."""
        return self._parent

    def view_index(self, parent: int) -> int:
        """The view rung standing for rung ``parent`` of the ladder the view was taken from: that rung
        itself when on the view, else the most expensive view rung not slower than it on this key."""
        return self._from_root[parent]

    def with_latency(self, measured: Sequence[Mapping[str, float]]) -> LevelLadder:
        """A copy whose rung ``i`` has ``measured[i]`` merged into its ``latency`` (new keys win); the
        plain fields (``latency_ms``, ``latency_ms_b32``), hence order and ``costs``, stay."""
        if len(measured) != len(self.rungs):
            raise ValueError(f"need one latency mapping per rung ({len(self.rungs)}), got {len(measured)}")
        out = LevelLadder(Rung(level=r.level, macs=r.macs, params=r.params, latency_ms=r.latency_ms,
                               latency_ms_b32=r.latency_ms_b32, accuracy=r.accuracy, extra=dict(r.extra),
                               latency={**r.latency, **m})
                          for r, m in zip(self.rungs, measured))
        out._parent, out._from_root, out.view_key = self._parent, self._from_root, self.view_key
        return out

    def with_added_ms(self, ms: Sequence[float]) -> LevelLadder:
        """A copy whose rung ``i`` costs ``ms[i]`` more (``latency_ms``; a view keeps its indices): time a
        call spends outside the engine at that rung, such as a detector's second stage naming its boxes."""
        if len(ms) != len(self.rungs):
            raise ValueError(f"need one added latency per rung ({len(self.rungs)}), got {len(ms)}")
        if any(not (math.isfinite(float(m)) and float(m) >= 0) for m in ms):
            raise ValueError(f"added latencies must be finite and >= 0 ms, got {list(ms)}")
        out = LevelLadder(replace(r, latency_ms=(r.latency_ms or 0.0) + float(m)) for r, m in zip(self.rungs, ms))
        out._parent, out._from_root, out.view_key = self._parent, self._from_root, self.view_key
        return out

    # serialisation ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"rungs": [r.to_dict() for r in self.rungs]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LevelLadder:
        if not isinstance(d, dict) or "rungs" not in d:
            raise ValueError("ladder JSON must be an object with a 'rungs' list")
        return cls(Rung.from_dict(r) for r in d["rungs"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> LevelLadder:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_costs(cls, costs: Sequence[float], accuracies: Sequence[float] | None = None) -> LevelLadder:
        """A synthetic one-stage ladder with the given relative costs (for policies, tests, simulation)."""
        costs = list(costs)
        if sorted(costs) != costs:
            raise ValueError("costs must be ascending (cheapest first)")
        accs = list(accuracies) if accuracies is not None else [None] * len(costs)
        return cls(
            Rung(level=Level([(1.0, i)]), latency_ms=float(c), accuracy=a)
            for i, (c, a) in enumerate(zip(costs, accs))
        )
