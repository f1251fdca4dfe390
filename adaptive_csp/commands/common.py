"""What the ``adaptive-csp`` subcommands share: flags generated from a pydantic recipe, the recipe read back
from them (a bad value: one message and exit status 2), the run-folder flags of the trainers, and the
command line recorded in what a command writes.

Values are read as JSON where they parse (numbers, ``true``/``false``, ``null``, lists) and validated by
pydantic, so a bad value is reported with the field's name.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["add_cfg_flags", "cfg_from_args", "parse_cfg", "add_trainer_flags", "invocation", "report_trained"]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_cfg_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    """One ``--field-name`` per field of the pydantic ``model`` (default: the model's default)."""
    group = parser.add_argument_group(f"{model.__name__} fields")
    for name, field in model.model_fields.items():
        ann = field.annotation
        shown = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
        args = typing.get_args(ann)
        if typing.get_origin(ann) is typing.Literal:
            shown = " | ".join(map(str, args))
        if ann is bool:
            note = f"{field.description}; " if field.description else ""
            group.add_argument(_flag(name), dest=name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=f"{note}(bool, default {field.default})")
            continue
        metavar = "JSON" if (list in args or dict in args or ann in (list, dict)) else name.upper()
        note = f"{field.description}; " if field.description else ""
        group.add_argument(_flag(name), dest=name, default=argparse.SUPPRESS, metavar=metavar,
                           help=f"{note}({shown}, default {field.default!r})")


def _value(text: str):
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def cfg_from_args(args: argparse.Namespace, model: type[BaseModel]) -> Any:
    """Build and validate ``model`` from the parsed flags (only the ones given; the rest default)."""
    given = {k: (_value(v) if isinstance(v, str) else v) for k, v in vars(args).items()
             if k in model.model_fields}
    for name, field in model.model_fields.items():  # str fields keep their text ("1" stays "1")
        if name in given and field.annotation in (str, str | None) and not isinstance(given[name], str):
            given[name] = getattr(args, name)
    return model.model_validate(given)


def parse_cfg(args: argparse.Namespace, model: type[BaseModel], command: str) -> Any | None:
    """:func:`cfg_from_args`, or None after printing pydantic's report (the caller exits with status 2)."""
    try:
        return cfg_from_args(args, model)
    except ValidationError as e:
        print(f"adaptive-csp {command}: invalid options:\n{e}", file=sys.stderr)
        return None


def add_trainer_flags(p: argparse.ArgumentParser, model: type[BaseModel], out: str, quiet_help: str,
                      data_flags: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """A trainer's flags: its run folder (checkpoints, final model), ``--no-resume``, its own data flags,
    ``--quiet``, then one flag per field of its recipe ``model``."""
    p.add_argument("--out", default=out, help="run folder (checkpoints, final model)")
    p.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    if data_flags is not None:
        data_flags(p)
    p.add_argument("--quiet", action="store_true", help=quiet_help)
    add_cfg_flags(p, model)


def invocation(command: str, args: argparse.Namespace) -> str:
    """The command line as the user typed it (``adaptive-csp COMMAND ...``), recorded in metadata."""
    return f"adaptive-csp {command} " + shlex.join(getattr(args, "_argv", sys.argv[2:]))


def report_trained(model: Any, out: str) -> int:
    """A classifier trainer's last line (rank 0 only): the checkpoint to resume from when a SIGTERM stopped
    the run (no model file yet), else the saved model; exit status 0."""
    from pathlib import Path

    from adaptive_csp.train.distributed import is_main

    if is_main():
        if "stopped_at_step" in model.meta["train"]:
            print(f"checkpoint {Path(out) / 'last.safetensors'}; run the same command to resume")
        else:
            print(f"saved {Path(out) / 'model.safetensors'}")
    return 0
