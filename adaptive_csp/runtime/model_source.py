"""What ``AdaptiveRunner(model)`` runs for what it is given.

* a ``torch.nn.Module`` — an :class:`~adaptive_csp.models.net.ElasticNet`, a wrapper with ``levels`` (a
  LevelLadder), ``meta`` and ``prepared(i)`` or ``forward(x, level)``, or a plain module (one level): as is;
* a :class:`~adaptive_csp.models.ladder.ModelLadder`, a list of torch modules and/or ONNX / TorchScript
  files (taken as cheapest → full), a folder (its ``ladder.json``, else its ``*.onnx`` files, unordered),
  a ``ladder.json`` file or one ONNX file: a ModelLadder, with the runner's ``preprocess=`` keys merged
  over its spec.

A ModelLadder whose levels have no batch-1 latency on the runner's engine yet is measured there first
(:func:`adaptive_csp.runtime.model_profile.profile_ladder` at batch 1, 3 timing rounds of 10 calls per
model, no data, no switch cost: well under a second for small models), so policies see real costs: in
the given order when it is ``ordered``, cheapest → full by that measurement when not.  The ladder passed in is not changed; ``runner.model`` is
the measured copy.  An :class:`~adaptive_csp.engines.Engine` passed as ``engine=`` is used as is
(nothing is measured).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from adaptive_csp.engines import Engine, choose_engine
from adaptive_csp.levels import latency_key
from adaptive_csp.models.ladder import ModelLadder
from adaptive_csp.runtime.model_profile import as_ladder, profile_ladder

__all__ = ["resolve_model"]

log = logging.getLogger("adaptive_csp.runtime")


def resolve_model(model: Any, *, preprocess: dict | None = None, engine: str | Engine = "auto",
                  device: Any = None, engine_options: dict | None = None) -> torch.nn.Module:
    """The module the runner runs for ``model`` (see the module docstring); ValueError for anything else."""
    if isinstance(model, torch.nn.Module) and not isinstance(model, ModelLadder):
        return model
    if isinstance(model, (ModelLadder, list, tuple, str, os.PathLike)):
        ladder = as_ladder(model, preprocess)
    else:
        raise ValueError(f"model must be a torch.nn.Module, a ModelLadder, a list of torch modules / ONNX files "
                         f"or a folder of them, got {type(model).__name__}")
    if isinstance(engine, Engine) or "preprocess" not in ladder.meta:
        return ladder  # the runner says what is missing from the spec
    name = choose_engine(ladder, device) if engine == "auto" else str(engine)
    if ladder.measured(latency_key(name, 1)):
        return ladder
    out = profile_ladder(ladder, engine=engine, device=device, engine_options=engine_options, batches=(1,),
                         keep_order=ladder.ordered, switch_pairs=0, rounds=3)
    log.info("measured %d models on %s at batch 1 in %.1f s: %s", len(out.levels), name,
             out.meta["profile"]["seconds"],
             ", ".join(f"{n} {r.latency_ms:.3f} ms" for n, r in zip(out.names, out.levels.rungs)))
    return out
