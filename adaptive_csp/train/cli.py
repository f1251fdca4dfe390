"""``adaptive-csp train``: one flag per :class:`TrainCfg` field, generated from the pydantic model.

Values are read as JSON where they parse (numbers, ``true``/``false``, ``null``, lists) and validated by
pydantic, so a bad value is reported with the field's name.  ``--data DIR`` trains on your own images
(one sub-folder per class); without it the model learns Fashion-MNIST.  ``--init pretrained`` (or a
checkpoint path) starts from trained weights (:mod:`adaptive_csp.train.transfer`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import typing
from pathlib import Path

from pydantic import ValidationError

__all__ = ["configure", "run", "cfg_from_args", "add_cfg_flags", "train_main"]

_EXTRA = ("out", "no_resume", "data", "val", "input_size", "quiet")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_cfg_flags(parser: argparse.ArgumentParser, model) -> None:
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


def cfg_from_args(args: argparse.Namespace, model):
    """Build and validate ``model`` from the parsed flags (only the ones given; the rest default)."""
    given = {k: (_value(v) if isinstance(v, str) else v) for k, v in vars(args).items()
             if k in model.model_fields}
    for name, field in model.model_fields.items():  # str fields keep their text ("1" stays "1")
        if name in given and field.annotation in (str, str | None) and not isinstance(given[name], str):
            given[name] = getattr(args, name)
    return model.model_validate(given)


def configure(p: argparse.ArgumentParser) -> None:
    from adaptive_csp.train.sandwich import TrainCfg

    p.add_argument("--out", default="runs/train", help="run folder (checkpoints, final model)")
    p.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="your images: one sub-folder per class (PNG/JPEG, any size, grey or colour)")
    p.add_argument("--val", default=None, metavar="DIR",
                   help="validation images in the same layout (default: a seeded split of --data)")
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="resize --data images to H W (default: the first image's size, ≤ 64 px)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_cfg_flags(p, TrainCfg)


def run(args: argparse.Namespace) -> int:
    from adaptive_csp.train.api import train
    from adaptive_csp.train.sandwich import TrainCfg

    try:
        cfg = cfg_from_args(args, TrainCfg)
    except ValidationError as e:
        print(f"adaptive-csp train: invalid options:\n{e}", file=sys.stderr)
        return 2
    dataset = val = None
    if args.data:
        from adaptive_csp.data.folder import load_folder

        size = tuple(args.input_size) if args.input_size else None
        dataset = load_folder(args.data, input_size=size)
        if args.val:
            val = load_folder(args.val, input_size=dataset.input_size, color=dataset.in_chans == 3,
                              class_names=list(dataset.class_names))
    elif args.val:
        print("adaptive-csp train: --val needs --data", file=sys.stderr)
        return 2
    command = "adaptive-csp train " + shlex.join(getattr(args, "_argv", sys.argv[2:]))
    train(cfg, args.out, dataset, val_dataset=val, resume=not args.no_resume, progress=not args.quiet,
          command=command)
    from adaptive_csp.train.distributed import is_main

    if is_main():
        print(f"saved {Path(args.out) / 'model.safetensors'}")
    return 0


def train_main(argv: list[str]) -> int:
    """Legacy entry (``main(argv)`` form)."""
    p = argparse.ArgumentParser(prog="adaptive-csp train", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    configure(p)
    args = p.parse_args(argv)
    args._argv = argv
    return run(args)
