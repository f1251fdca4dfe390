"""Architecture as data (configs, presets), the elastic-model base and the networks built on it.

The names load on first use (PEP 562): :mod:`adaptive_csp.models.static` — what engines over files read —
imports without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ModelCfg", "StageCfg", "StemCfg", "ElasticModel", "ElasticNet", "StaticNet", "default_ladder",
           "create_model", "get_model_cfg", "list_models", "register_model_cfg"]

_WHERE = {"ModelCfg": "config", "StageCfg": "config", "StemCfg": "config", "ElasticModel": "elastic",
          "ElasticNet": "net", "StaticNet": "net", "default_ladder": "net", "get_model_cfg": "registry",
          "list_models": "registry", "register_model_cfg": "registry", "create_model": "factory"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"adaptive_csp.models.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
