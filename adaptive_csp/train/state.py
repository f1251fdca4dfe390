"""Resumable training state on disk: safetensors for the tensors, JSON beside it for the rest (no pickle).

``last.safetensors`` holds the model's state dict (``model.*``), the optimizer's per-parameter tensors
(``opt.<index>.<name>``) and the torch generator's state; ``last.json`` holds the optimizer's
hyperparameters per group, Python's ``random`` state and whatever the trainer adds (epoch, config,
history, the runs that produced it).  Written to a temporary file first, so an interrupted save leaves
the previous checkpoint intact.  Shared by the classifier and detector trainers.
"""

from __future__ import annotations

import ast
import json
import random
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from adaptive_csp.util.files import as_user_file

__all__ = ["save_state", "load_state"]


def save_state(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
               rng: random.Random, meta: dict[str, Any]) -> None:
    """Write the tensors to ``path`` and ``meta`` (plus optimizer groups and ``random`` state) beside it."""
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    sd = opt.state_dict()
    for i, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{i}.{k}"] = v.contiguous()
    tensors["gen_state"] = gen.get_state()
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    as_user_file(tmp).replace(path)
    record = {**meta, "param_groups": [{k: v for k, v in g.items() if k != "params"} for g in sd["param_groups"]],
              "rng_state": repr(rng.getstate())}
    jtmp = path.with_suffix(".json.tmp")
    jtmp.write_text(json.dumps(record, indent=1))
    jtmp.replace(path.with_suffix(".json"))  # atomic too: a reader never sees half a record


def load_state(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
               rng: random.Random) -> dict[str, Any]:
    """Restore what :func:`save_state` wrote into the given objects; return the JSON record."""
    tensors = load_file(str(path))
    meta = json.loads(path.with_suffix(".json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    for g, saved in zip(sd["param_groups"], meta.get("param_groups", [])):  # older detector files have none
        g.update({k: v for k, v in saved.items() if k != "params"})
    opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
    gen.set_state(tensors["gen_state"])
    rng.setstate(ast.literal_eval(meta["rng_state"]))
    return meta
