"""A ladder of separate models: :class:`ModelLadder` (bring your own models).

Each level is one model of your own — a torch module, an ONNX file or a TorchScript file — cheapest
first, the full (most expensive) model last, with one preprocessing spec and one set of class names for
all of them::

    ladder = ModelLadder(["s.onnx", "m.onnx", "l.onnx"], preprocess={...}, class_names=[...])
    runner = AdaptiveRunner(ladder, policy="balanced")

It is a ``torch.nn.Module`` that looks to engines and the runner like an elastic model: ``levels`` (a
:class:`~adaptive_csp.levels.LevelLadder`, one rung per model, each rung's ``extra`` naming its model:
``{"model": name, "kind": "torch" | "onnx", "file": path}``), ``meta`` (``task``, ``class_names``,
``preprocess``), ``prepared(i)`` / ``export(i)`` (the torch model of level ``i``) and ``onnx_file(i)``
(the ONNX file of level ``i``, None for a torch model).  A level's :class:`~adaptive_csp.levels.Level`
is a placeholder, ``Level([(1.0, i)])``, unique per position.

* Order: ``ordered=True`` (default) takes the models as given, cheapest → full.  ``ordered=False`` says
  the order is unknown: profiling (:func:`adaptive_csp.runtime.model_profile.profile_ladder`, which
  ``AdaptiveRunner`` runs for a ladder not yet measured on its engine) orders them by measured latency.
* Torch models are put in eval mode (this is an inference ladder) and otherwise used as given (device,
  dtype); a module with its own ``levels`` (an :class:`~adaptive_csp.models.net.ElasticNet`) runs at its
  full level.  ONNX files run only on the ``onnxruntime`` engine (the ``auto`` engine picks it).
* A folder: ``ModelLadder.from_folder("models/")`` reads ``models/ladder.json`` (:data:`LADDER_FILE`;
  :meth:`save` writes it, with the profile's measurements) or, without one, takes every ``*.onnx`` file
  there, unordered.

Floor 2: imports only the ground floor (levels, preprocessing spec); engines read it, never the reverse.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from adaptive_csp.data.preprocess_spec import merge_spec
from adaptive_csp.levels import Level, LevelLadder, Rung
from adaptive_csp.util.files import sha256_file

__all__ = ["ModelLadder", "ModelLadderCfg", "LADDER_FILE", "FORMAT", "ONNX_SUFFIXES", "TORCHSCRIPT_SUFFIXES"]

log = logging.getLogger("adaptive_csp.models")

LADDER_FILE = "ladder.json"
FORMAT = "adaptive-csp-model-ladder-1"
ONNX_SUFFIXES = (".onnx",)
TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".torchscript")


class MemberCfg(BaseModel):
    """What one level's model is, as data: kind, name, file and a digest of its architecture / bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["torch", "onnx"]
    name: str
    file: str | None = None
    digest: str


class ModelLadderCfg(BaseModel):
    """The ladder's architecture as data (what caches key on: ``model_dump_json()``, as for a ModelCfg)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    members: tuple[MemberCfg, ...]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    name: str | None = None


class _LadderDoc(BaseModel):
    """The folder's ``ladder.json``."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["adaptive-csp-model-ladder-1"] = FORMAT
    models: list[str | _Entry] = Field(min_length=1)
    ordered: bool = True
    task: Literal["classify", "detect"] = "classify"
    class_names: list[str] | None = None
    preprocess: dict[str, Any] | None = None
    rungs: list[dict[str, Any]] | None = None  # measured, one per model in the order above
    switch_cost: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None


_sha256 = sha256_file


def _module_digest(m: nn.Module) -> str:
    shapes = [(k, tuple(v.shape), str(v.dtype)) for k, v in m.state_dict().items()]
    return hashlib.sha256((repr(m) + repr(shapes)).encode()).hexdigest()


def _read_member(item: Any, i: int) -> tuple[str, nn.Module | None, Path | None]:
    """(kind, module, file) of one given model; ValueError naming a bad one."""
    if isinstance(item, nn.Module):
        return "torch", item, None
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], nn.Module):  # (module, its file)
        return "torch", item[0], Path(item[1]).resolve()
    if not isinstance(item, (str, os.PathLike)):
        raise ValueError(f"model {i}: expected a torch.nn.Module or the path of an ONNX / TorchScript file, "
                         f"got {type(item).__name__}")
    p = Path(item)
    if not p.is_file():
        raise ValueError(f"model {i}: no such file {str(p)!r}")
    suffix = p.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return "onnx", None, p.resolve()
    if suffix in TORCHSCRIPT_SUFFIXES:
        try:
            return "torch", torch.jit.load(str(p), map_location="cpu"), p.resolve()
        except Exception as e:  # noqa: BLE001 - any failure to read is the user's file, named
            raise ValueError(f"model {i}: {p} is not a TorchScript file torch.jit.load can read ({e})") from None
    raise ValueError(f"model {i}: {p.name} has suffix {p.suffix!r}; expected an ONNX file "
                     f"({', '.join(ONNX_SUFFIXES)}) or TorchScript ({', '.join(TORCHSCRIPT_SUFFIXES)})")


def _onnx_params(path: Path) -> int | None:
    """The number of weights stored in an ONNX file (its initializers), or None without the onnx package;
    ValueError for a file onnx cannot read."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as e:  # noqa: BLE001 - a broken file is the user's, named
        raise ValueError(f"{path}: not a readable ONNX file ({type(e).__name__}: {e})") from None
    total = 0
    for t in graph.initializer:
        n = 1
        for d in t.dims:
            n *= int(d)
        total += n
    return total


def _check_names(names: Any, n: int, what: str) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(s, str) and s for s in names):
        raise ValueError(f"{what} must be a list of non-empty strings, got {names!r}")
    names = list(names)
    if n and len(names) != n:
        raise ValueError(f"{what}: {len(names)} given for {n} models")
    return names


class ModelLadder(nn.Module):
    """Separate models as one ladder (see the module docstring).

    models: torch modules and/or paths of ONNX / TorchScript files (or ``(module, file)`` pairs: a module
        and the file it was read from), cheapest → full when ``ordered``.
    preprocess: the preprocessing spec all models share (:mod:`adaptive_csp.data.preprocess_spec`; input
        size, channels, colour, mean / std, resize mode), validated.
    class_names: the classes of the models' outputs.  names: one name per model (default: the file's
        stem, else ``"<ModuleClass><i>"``).  task: "classify" (default) or "detect" (outputs in the
        runner's detector format).
    rungs: measured rungs, one per model in order (what profiling and ``ladder.json`` carry).
    """

    def __init__(self, models: Sequence[Any], *, preprocess: dict[str, Any] | None = None,
                 class_names: Sequence[str] | None = None, names: Sequence[str] | None = None,
                 task: str = "classify", ordered: bool = True, rungs: Sequence[Rung | dict] | None = None,
                 meta: dict[str, Any] | None = None):
        super().__init__()
        if isinstance(models, (str, os.PathLike, nn.Module)) or not isinstance(models, Sequence):
            raise ValueError("models must be a list of torch modules and/or ONNX / TorchScript paths, "
                             f"got {type(models).__name__}")
        if not models:
            raise ValueError("a ModelLadder needs at least one model")
        if task not in ("classify", "detect"):
            raise ValueError(f"task must be 'classify' or 'detect', got {task!r}")
        read = [_read_member(m, i) for i, m in enumerate(models)]
        self._check_unique(read)
        names = _check_names(names, len(read), "names")
        self.nets = nn.ModuleList([m for _, m, _ in read if m is not None])
        self.kinds: tuple[str, ...] = tuple(k for k, _, _ in read)
        self.files: tuple[Path | None, ...] = tuple(f for _, _, f in read)
        slots, j = [], 0
        for _, m, _ in read:
            slots.append(j if m is not None else None)
            j += m is not None
        self._slots = tuple(slots)
        self.names: tuple[str, ...] = tuple(names or [self._default_name(i) for i in range(len(read))])
        for net in self.nets:
            net.eval()
        self.ordered = bool(ordered)
        self.meta: dict[str, Any] = {**(meta or {}), "task": task}
        cn = _check_names(class_names, 0, "class_names")
        if cn is not None:
            self.meta["class_names"] = cn
        if preprocess is not None:
            self.meta["preprocess"] = merge_spec(None, dict(preprocess))  # validated: a bad key is named
        self.cfg = ModelLadderCfg(members=tuple(
            MemberCfg(kind=k, name=n, file=None if f is None else str(f),
                      digest=_sha256(f) if f is not None else _module_digest(self.nets[s]))
            for k, n, f, s in zip(self.kinds, self.names, self.files, self._slots)))
        self._levels = self._ladder(rungs)

    @staticmethod
    def _check_unique(read: list[tuple[str, Any, Path | None]]) -> None:
        seen: dict[Any, int] = {}
        for i, (_, m, f) in enumerate(read):
            key = f if f is not None else id(m)
            if key in seen:
                raise ValueError(f"model {i} is the same model as model {seen[key]}: a ladder must not repeat one")
            seen[key] = i

    def _default_name(self, i: int) -> str:
        f = self.files[i]
        return f.stem if f is not None else f"{type(self.nets[self._slots[i]]).__name__}{i}"

    def _ladder(self, rungs: Sequence[Rung | dict] | None) -> LevelLadder:
        n = len(self.kinds)
        if rungs is not None and len(rungs) != n:
            raise ValueError(f"rungs: {len(rungs)} given for {n} models")
        out = []
        for i in range(n):
            r = rungs[i] if rungs is not None else None
            r = Rung.from_dict({"level": [[1.0, i]], **r}) if isinstance(r, dict) else r
            extra = {**(r.extra if r is not None else {}), "model": self.names[i], "kind": self.kinds[i]}
            if self.files[i] is not None:
                extra["file"] = str(self.files[i])
            s = self._slots[i]
            params = (sum(p.numel() for p in self.nets[s].parameters()) if s is not None
                      else _onnx_params(self.files[i]) if r is None or r.params is None else None)
            out.append(Rung(level=Level([(1.0, i)]), params=params if r is None or r.params is None else r.params,
                            macs=None if r is None else r.macs,
                            latency_ms=None if r is None else r.latency_ms,
                            latency_ms_b32=None if r is None else r.latency_ms_b32,
                            accuracy=None if r is None else r.accuracy, extra=extra,
                            latency={} if r is None else dict(r.latency)))
        return LevelLadder(out)

    # what engines and the runner read ---------------------------------------------------------------
    @property
    def levels(self) -> LevelLadder:
        return self._levels

    @property
    def needs_onnxruntime(self) -> bool:
        """True when some level is an ONNX file (only the onnxruntime engine runs it)."""
        return "onnx" in self.kinds

    def onnx_file(self, level: int) -> Path | None:
        """The ONNX file of ``level`` (None: a torch model, which engines export themselves)."""
        i = self._levels.index(level)
        return self.files[i] if self.kinds[i] == "onnx" else None

    def module(self, level: int) -> nn.Module:
        """The torch model of ``level``; ValueError for an ONNX file."""
        i = self._levels.index(level)
        s = self._slots[i]
        if s is None:
            raise ValueError(f"level {i} ({self.names[i]}) is an ONNX file, not a torch module: it runs on "
                             "engine='onnxruntime' (or 'auto')")
        return self.nets[s]

    def prepared(self, level: int | None = None) -> nn.Module:
        """The module the torch engine runs for ``level`` (an elastic member: its full level's)."""
        m = self.module(self._levels.full if level is None else level)
        inner = getattr(m, "levels", None)
        return m.prepared(inner.full) if isinstance(inner, LevelLadder) and hasattr(m, "prepared") else m

    def export(self, level: int | None = None) -> nn.Module:
        """A static copy of ``level``'s torch model (for the ONNX Runtime and CUDA engines; never the model)."""
        m = self.module(self._levels.full if level is None else level)
        inner = getattr(m, "levels", None)
        if isinstance(inner, LevelLadder) and hasattr(m, "export"):
            return m.export(inner.full)
        return copy.deepcopy(m).eval()

    def forward(self, x: torch.Tensor, level: int | None = None) -> torch.Tensor:
        return self.prepared(level)(x)

    def invalidate(self) -> None:
        """Nothing is cached here (engines keep their own copies: call ``engine.refresh()``)."""

    # measured copies --------------------------------------------------------------------------------
    def reordered(self, order: Sequence[int], rungs: Sequence[Rung] | None = None, *,
                  preprocess: dict[str, Any] | None = None, class_names: Sequence[str] | None = None,
                  **meta: Any) -> ModelLadder:
        """A new ladder with the models in ``order`` (indices of this one), carrying ``rungs`` (in the new
        order; default: this ladder's, moved along), ``preprocess`` keys merged over this one's spec,
        ``class_names`` (default: this one's) and ``meta`` merged over this one's; ``ordered``."""
        n = len(self.kinds)
        if sorted(order) != list(range(n)):
            raise ValueError(f"order must be a permutation of 0..{n - 1}, got {list(order)}")
        members = [self.files[i] if self._slots[i] is None else
                   self.nets[self._slots[i]] if self.files[i] is None else (self.nets[self._slots[i]], self.files[i])
                   for i in order]
        kept = {k: v for k, v in self.meta.items() if k not in ("task", "class_names", "preprocess")}
        spec = self.meta.get("preprocess")
        if preprocess is not None:
            spec = merge_spec(spec, dict(preprocess))
        return ModelLadder(members, preprocess=spec, names=[self.names[i] for i in order], task=self.meta["task"],
                           class_names=class_names if class_names is not None else self.meta.get("class_names"),
                           ordered=True, rungs=list(rungs) if rungs is not None else [self._levels.rungs[i] for i in order],
                           meta={**kept, **meta})

    def with_spec(self, preprocess: dict[str, Any] | None = None,
                  class_names: Sequence[str] | None = None) -> ModelLadder:
        """A copy (same models, order and measurements) with ``preprocess`` keys merged over the spec and
        ``class_names`` replaced (None: kept)."""
        out = self.reordered(range(len(self.kinds)), preprocess=preprocess, class_names=class_names)
        out.ordered = self.ordered
        return out

    # files ------------------------------------------------------------------------------------------
    def to_dict(self, root: str | Path) -> dict[str, Any]:
        """The ``ladder.json`` document, file names relative to ``root``; ValueError for a torch module
        that has no file (export it first, e.g. to ONNX)."""
        root = Path(root).resolve()
        models = []
        for i, f in enumerate(self.files):
            if f is None:
                raise ValueError(f"model {i} ({self.names[i]}) is a torch module with no file: export it "
                                 "(torch.onnx.export or torch.jit.save) before saving the ladder")
            rel = os.path.relpath(f, root)
            models.append(rel if self.names[i] == f.stem else {"file": rel, "name": self.names[i]})
        rungs = [{k: v for k, v in r.to_dict().items() if k not in ("level", "width")} for r in self._levels.rungs]
        doc = {"format": FORMAT, "models": models, "ordered": self.ordered, "task": self.meta["task"],
               "class_names": self.meta.get("class_names"), "preprocess": self.meta.get("preprocess"),
               "rungs": rungs}
        for k in ("switch_cost", "profile"):
            if self.meta.get(k) is not None:
                doc[k] = self.meta[k]
        return doc

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/ladder.json`` (see :meth:`to_dict`); returns its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LADDER_FILE
        path.write_text(json.dumps(self.to_dict(folder), indent=1))
        return path

    @classmethod
    def from_folder(cls, folder: str | Path, *, preprocess: dict[str, Any] | None = None,
                    class_names: Sequence[str] | None = None) -> ModelLadder:
        """The ladder of ``folder/ladder.json``, else of every ``*.onnx`` file in ``folder`` (unordered).
        ``preprocess`` keys are merged over the file's; ``class_names`` replace its."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"{folder}: not a folder")
        path = folder / LADDER_FILE
        if not path.is_file():
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in ONNX_SUFFIXES)
            if not files:
                raise ValueError(f"{folder}: no {LADDER_FILE} and no .onnx files")
            return cls(files, preprocess=preprocess, class_names=class_names, ordered=False)
        return cls.from_file(path, preprocess=preprocess, class_names=class_names)

    @classmethod
    def from_file(cls, path: str | Path, *, preprocess: dict[str, Any] | None = None,
                  class_names: Sequence[str] | None = None) -> ModelLadder:
        """The ladder a ``ladder.json`` describes (model files relative to its folder)."""
        path = Path(path)
        try:
            doc = _LadderDoc.model_validate(json.loads(path.read_text()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValidationError) as e:
            raise ValueError(f"{path}: not a readable {FORMAT} file: {e}") from None
        entries = [e if isinstance(e, _Entry) else _Entry(file=e) for e in doc.models]
        names = [e.name or Path(e.file).stem for e in entries]
        spec = merge_spec(doc.preprocess, preprocess) if (doc.preprocess or preprocess) else None
        meta = {k: v for k, v in (("switch_cost", doc.switch_cost), ("profile", doc.profile)) if v is not None}
        try:
            return cls([path.parent / e.file for e in entries], preprocess=spec, names=names, task=doc.task,
                       class_names=class_names if class_names is not None else doc.class_names,
                       ordered=doc.ordered, rungs=doc.rungs, meta=meta)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    # reading it -------------------------------------------------------------------------------------
    def measured(self, key: str) -> bool:
        """True when every level has latency ``key`` (e.g. ``"ort:b1"``)."""
        return all(key in r.latency for r in self._levels.rungs)

    def report(self) -> str:
        """A markdown table of the levels (model, kind, params, measured latencies, accuracy), then the
        measured switch cost per engine key."""
        keys = sorted({k for r in self._levels.rungs for k in r.latency})
        head = ["level", "model", "kind", "params"] + [f"{k} ms" for k in keys] + ["accuracy"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, r in enumerate(self._levels.rungs):
            cells = [str(i), self.names[i], self.kinds[i], "–" if r.params is None else f"{r.params:,}"]
            cells += [f"{r.latency[k]:.3f}" if k in r.latency else "–" for k in keys]
            cells.append("–" if r.accuracy is None else f"{100 * r.accuracy:.1f} %")
            lines.append("| " + " | ".join(cells) + " |")
        for key, sw in sorted((self.meta.get("switch_cost") or {}).items()):
            lines.append(f"switch ({key}): {sw['switched_ms']:.3f} ms right after a level change vs "
                         f"{sw['held_ms']:.3f} ms held, median ratio {sw['ratio']:.3f} ({sw['pairs']} pairs)")
        return "\n".join(lines)

    def extra_repr(self) -> str:
        return f"levels={list(self.names)}, kinds={list(self.kinds)}, ordered={self.ordered}"
