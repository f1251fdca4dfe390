"""Training elastic models: ``adaptive_csp.train(cfg, out_dir, dataset)`` trains and saves one.

This package is callable: ``adaptive_csp.train(...)`` is :func:`adaptive_csp.train.api.train` (see its
docstring), while ``adaptive_csp.train.sandwich``, ``.profile``, ``.transfer`` … stay importable as
modules.  ``adaptive_csp.train.TrainCfg`` is the recipe (one field per ``adaptive-csp train`` flag).

>>> import adaptive_csp as ac
>>> model = ac.train(out_dir="runs/mine", dataset="my_images/", init="pretrained",
...                  budget_minutes=2)                                         # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, cfg: Any = None, out_dir: str | Path = "runs/train", dataset: Any = None, *,
                 val_dataset: Any = None, resume: bool = True, progress: bool = True, command: str | None = None,
                 **fields: Any):
        """Train an elastic model and save it to ``out_dir/model``: :func:`adaptive_csp.train.api.train`."""
        from adaptive_csp.train.api import train

        return train(cfg, out_dir, dataset, val_dataset=val_dataset, resume=resume, progress=progress,
                     command=command, **fields)


def __getattr__(name: str):
    if name == "TrainCfg":
        from adaptive_csp.train.sandwich import TrainCfg

        return TrainCfg
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = _CallablePackage
