"""``adaptive-csp train``: one flag per :class:`~adaptive_csp.train.sandwich.TrainCfg` field, generated
from the pydantic model (:func:`adaptive_csp.commands.common.add_cfg_flags`).

``--data DIR`` trains on your own images (one sub-folder per class); without it the model learns
Fashion-MNIST.  ``--init pretrained`` (or a checkpoint path) starts from trained weights
(:mod:`adaptive_csp.train.transfer`).
"""

from __future__ import annotations

import argparse
import sys

from adaptive_csp.commands.common import add_trainer_flags, invocation, parse_cfg, report_trained
from adaptive_csp.train.sandwich import TrainCfg

__all__ = ["configure", "run", "train_main"]


def configure(p: argparse.ArgumentParser) -> None:
    add_trainer_flags(p, TrainCfg, "runs/train", "no progress bars", _data_flags)


def _data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, metavar="DIR",
                   help="your images: one sub-folder per class (PNG/JPEG, any size, grey or colour)")
    p.add_argument("--val", default=None, metavar="DIR",
                   help="validation images in the same layout (default: a seeded split of --data)")
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="resize --data images to H W (default: the first image's size, ≤ 64 px)")


def run(args: argparse.Namespace) -> int:
    from adaptive_csp.train.api import train

    cfg = parse_cfg(args, TrainCfg, "train")
    if cfg is None:
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
    model = train(cfg, args.out, dataset, val_dataset=val, resume=not args.no_resume, progress=not args.quiet,
                  command=invocation("train", args))
    return report_trained(model, args.out)  # SIGTERM: the checkpoint is written, no model yet


def train_main(argv: list[str]) -> int:
    """The ``main(argv)`` form."""
    p = argparse.ArgumentParser(prog="adaptive-csp train", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    configure(p)
    args = p.parse_args(argv)
    args._argv = argv
    return run(args)
