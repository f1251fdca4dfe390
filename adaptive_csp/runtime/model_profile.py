"""Profile a ladder of separate models on this device: latency per engine and batch, accuracy on your
data, the cost of a switch, and the order cheapest → full.

>>> ladder = profile_ladder(["l.onnx", "s.onnx", "m.onnx"], "val/", preprocess={...})   # doctest: +SKIP
>>> print(ladder.report())                                                             # doctest: +SKIP

* Latency: every model on the engine the runner will use (``engine="auto"``: ONNX Runtime for ONNX files
  and, where installed, for torch models too), at each of ``batches`` (default 1 and 32), with the
  project's one timing loop (:func:`adaptive_csp.runtime.calibrate.measure`: warmed up, interleaved across
  the models, medians).  Written to each rung's ``latency`` as ``"ort:b1"``, ``"ort:b32"`` ...
  (:func:`adaptive_csp.levels.latency_key`) and, for the ladder's own costs, to ``latency_ms`` (batch 1)
  and ``latency_ms_b32`` (batch 32) — measured on that engine, which ``meta["profile"]["engine"]`` names.
* Accuracy (with ``data``: an image folder read by :func:`adaptive_csp.data.folder.load_folder`, or an
  :class:`~adaptive_csp.data.images.ImageSet`): top-1 of each model on those images, preprocessed exactly as
  the runner preprocesses frames (:class:`~adaptive_csp.runtime.preprocess.Preprocessor` with the ladder's
  spec).  A folder's images are read at their own size (at most ``max_side`` px) and resized by the spec.
* Order: cheapest → full by the measured batch-32 latency (the project's ladder order), else batch 1;
  ``keep_order=True`` keeps the given order (only measuring).  A cheaper model at least as accurate as a
  dearer one is logged: the dearer one buys nothing (the runner's view drops it from what a policy sees).
* Switch cost (``switch_pairs`` > 0, two or more models): a call right after a level change against the
  same level held, random levels, the order alternated, at batch 1 (the method of ``benchmarks/runner.py``);
  ``meta["switch_cost"][key]`` holds the switched and held medians (ms), their median ratio and
  ``switch_cost`` = max(0, ratio − 1), the fraction the simulator charges a switch
  (:data:`adaptive_csp.sim.device.SWITCH_COST`).
"""

from __future__ import annotations

import logging
import random
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_csp.engines import Engine, create_engine
from adaptive_csp.engines.export import input_shape
from adaptive_csp.levels import Rung, latency_key
from adaptive_csp.models.ladder import ModelLadder
from adaptive_csp.runtime.calibrate import measure
from adaptive_csp.runtime.preprocess import Preprocessor

__all__ = ["profile_ladder", "as_ladder", "ladder_accuracy", "switch_cost"]

log = logging.getLogger("adaptive_csp.runtime")


def as_ladder(models: Any, preprocess: dict | None = None, class_names: Sequence[str] | None = None,
              ordered: bool = True) -> ModelLadder:
    """A :class:`ModelLadder` from a ModelLadder (as is), a folder (``ladder.json`` or its ``*.onnx``), a
    ``ladder.json`` file, one ONNX file, or a list of models / files (``ordered``: taken as cheapest → full);
    ``preprocess`` keys merged over its spec, ``class_names`` replacing its."""
    if isinstance(models, ModelLadder):
        return models if preprocess is None and class_names is None else models.with_spec(preprocess, class_names)
    if isinstance(models, (str, Path)):
        p = Path(models)
        if p.is_dir():
            return ModelLadder.from_folder(p, preprocess=preprocess, class_names=class_names)
        if p.is_file() and p.suffix.lower() == ".json":
            return ModelLadder.from_file(p, preprocess=preprocess, class_names=class_names)
        models = [p]
    if isinstance(models, Sequence) and not isinstance(models, str):
        return ModelLadder(list(models), preprocess=preprocess, class_names=class_names, ordered=ordered)
    raise ValueError(f"cannot make a ladder of models from {type(models).__name__}: pass a ModelLadder, a list "
                     "of torch modules / ONNX files, or a folder")


def _images(data: Any, ladder: ModelLadder, max_side: int) -> Any:
    """The evaluation images (an ImageSet-like: uint8 N×C×H×W ``images``, ``labels``)."""
    if isinstance(data, (str, Path)):
        from adaptive_csp.data.folder import load_folder

        return load_folder(data, class_names=ladder.meta.get("class_names"), max_side=max_side)
    if not hasattr(data, "images") or not hasattr(data, "labels"):
        raise ValueError(f"data must be an image folder or an ImageSet (images, labels), got {type(data).__name__}")
    names = getattr(data, "class_names", None)
    want = ladder.meta.get("class_names")
    if names is not None and want is not None and list(names) != list(want):
        raise ValueError(f"the data's classes {list(names)} differ from the ladder's class_names {list(want)}")
    return data


def ladder_accuracy(engine: Engine, ladder: ModelLadder, data: Any, *, max_images: int | None = None,
                    max_side: int = 512, batch: int = 64) -> tuple[list[float], int, list[str] | None]:
    """Top-1 accuracy of every level on ``data`` (see the module docstring), the number of images and the
    data's class names (None when it has none)."""
    if "preprocess" not in ladder.meta:
        raise ValueError("the ladder has no preprocessing spec: ModelLadder(..., preprocess={...})")
    if ladder.meta.get("task", "classify") != "classify":
        raise ValueError(f"accuracy on labelled images is for classifiers; this ladder's task is {ladder.meta['task']!r}")
    ds = _images(data, ladder, max_side)
    images, labels = ds.images, np.asarray(ds.labels).reshape(-1)
    n = len(labels) if max_images is None else min(len(labels), int(max_images))
    if n < 1:
        raise ValueError("the data holds no images")
    pre = Preprocessor(ladder.meta["preprocess"], tensor_color="rgb")
    right = np.zeros(len(ladder.levels), np.int64)
    for i in range(0, n, batch):
        x, _ = pre.array(images[i:i + batch] if i + batch <= n else images[i:n])
        y = labels[i:i + len(x)]
        for lv in range(len(ladder.levels)):
            right[lv] += int((engine.run(x, lv).argmax(1) == y).sum())
    names = getattr(ds, "class_names", None)
    return [float(r) / n for r in right], n, [str(c) for c in names] if names else None


def switch_cost(engine: Engine, x: np.ndarray, pairs: int = 60, seed: int = 1) -> dict[str, float]:
    """A call right after a level change against the same level held (batch of ``x``; medians)."""
    n = len(engine.ladder)
    if n < 2 or pairs < 1:
        raise ValueError("a switch cost needs two or more levels and pairs >= 1")
    rng = random.Random(seed)
    clock = time.perf_counter

    def call(lv: int) -> float:
        t0 = clock()
        engine.run(x, lv)
        return clock() - t0

    for lv in range(n):  # warm every level
        for _ in range(3):
            call(lv)
    sw, held, ratios = [], [], []
    for k in range(pairs):
        lv = rng.randrange(n)
        other = rng.choice([i for i in range(n) if i != lv])
        if k % 2 == 0:  # M, L (switched), L, L (held)
            call(other)
            s_ = call(lv)
            call(lv)
            h_ = call(lv)
        else:  # L, L (held), M, L (switched)
            call(lv)
            h_ = call(lv)
            call(other)
            s_ = call(lv)
        sw.append(s_ * 1000.0)
        held.append(h_ * 1000.0)
        ratios.append(s_ / h_)
    ratio = statistics.median(ratios)
    return {"switched_ms": round(statistics.median(sw), 4), "held_ms": round(statistics.median(held), 4),
            "ratio": round(ratio, 4), "switch_cost": round(max(0.0, ratio - 1.0), 4), "pairs": int(pairs)}


def _order(lat: list[dict[str, float]], name: str, batches: list[int]) -> list[int]:
    key = latency_key(name, 32 if 32 in batches else batches[0])
    b1 = latency_key(name, batches[0])
    return sorted(range(len(lat)), key=lambda i: (lat[i][key], lat[i][b1], i))


def _warn_dominated(ladder: ModelLadder) -> None:
    rs = ladder.levels.rungs
    for i in range(len(rs)):
        for j in range(i + 1, len(rs)):
            if rs[i].accuracy is not None and rs[j].accuracy is not None and rs[i].accuracy >= rs[j].accuracy:
                log.warning("model %s (level %d) is cheaper and at least as accurate as %s (level %d: %.1f %% vs "
                            "%.1f %%): the dearer one buys nothing on this data", ladder.names[i], i,
                            ladder.names[j], j, 100 * rs[i].accuracy, 100 * rs[j].accuracy)


def profile_ladder(models: Any, data: Any = None, *, engine: str | Engine = "auto", device: Any = None,
                   engine_options: dict | None = None, batches: Iterable[int] = (1, 32), keep_order: bool = False,
                   switch_pairs: int = 60, rounds: int | None = None, max_images: int | None = None,
                   save: str | Path | None = None, preprocess: dict | None = None,
                   class_names: Sequence[str] | None = None) -> ModelLadder:
    """Measure every model of the ladder (see the module docstring); returns a new, measured ladder ordered
    cheapest → full (``keep_order=True``: in the given order).

    models: anything :func:`as_ladder` takes.  data: an image folder or an ImageSet (None: latency only).
    engine / device / engine_options: as for ``AdaptiveRunner`` (measure on the engine that will run).
    batches: batch sizes timed (1 always).  switch_pairs: 0 skips the switch cost.  rounds: timing rounds
    (default: :func:`~adaptive_csp.runtime.calibrate.measure`'s).  max_images: evaluate on the first N.
    save: a folder to write ``ladder.json`` into (every model must be a file)."""
    ladder = as_ladder(models, preprocess, class_names)
    batches = sorted({int(b) for b in batches} | {1})
    t0 = time.perf_counter()
    eng = create_engine(ladder, engine, device, **(engine_options or {}))
    try:
        eng.prepare()
        lat = measure([eng], batches, rounds=rounds)
        accs, n_img, data_names = (ladder_accuracy(eng, ladder, data, max_images=max_images) if data is not None
                                   else (None, 0, None))
        meta: dict[str, Any] = {}
        if switch_pairs and len(ladder.levels) > 1:
            x = np.random.default_rng(0).standard_normal((1, *input_shape(ladder)), dtype=np.float32)
            meta["switch_cost"] = {**(ladder.meta.get("switch_cost") or {}),
                                   latency_key(eng.name, 1): switch_cost(eng, x, switch_pairs)}
        name = eng.name
    finally:
        if not isinstance(engine, Engine):
            eng.close()
    order = list(range(len(lat))) if keep_order else _order(lat, name, batches)
    if order != sorted(order) and ladder.ordered:
        log.warning("profile: the models were given as %s but measure %s, cheapest first on %s",
                    list(ladder.names), [ladder.names[i] for i in order], name)
    rungs = [_rung(ladder.levels.rungs[i], lat[i], name, None if accs is None else accs[i]) for i in order]
    meta["profile"] = {"engine": name, "batches": batches, "images": n_img, "seconds": round(time.perf_counter() - t0, 2),
                       "data": str(data) if isinstance(data, (str, Path)) else type(data).__name__ if data is not None
                       else None}
    out = ladder.reordered(order, rungs, **meta)
    if data_names and "class_names" not in out.meta:
        out.meta["class_names"] = data_names
    _warn_dominated(out)
    if save is not None:
        out.save(save)
    return out


def _rung(r: Rung, lat: dict[str, float], engine: str, acc: float | None) -> Rung:
    b1, b32 = latency_key(engine, 1), latency_key(engine, 32)
    return Rung(level=r.level, macs=r.macs, params=r.params, latency_ms=lat.get(b1, r.latency_ms),
                latency_ms_b32=lat.get(b32, r.latency_ms_b32), accuracy=acc if acc is not None else r.accuracy,
                extra=dict(r.extra), latency={**r.latency, **lat})
