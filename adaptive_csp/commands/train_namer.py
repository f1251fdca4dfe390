"""``adaptive-csp train-namer``: train the second-stage namer that names the boxes a detector finds.

One flag per :class:`~adaptive_csp.train.namer.NamerCfg` field (the crops) and per
:class:`~adaptive_csp.train.sandwich.TrainCfg` field (the classifier's recipe; ``--init`` defaults to the
shipped ``pretrained:csp_wide_fmnist``, 8 epochs at rate 0.02).  Resumable like ``train``.
"""

from __future__ import annotations

import argparse

from adaptive_csp.commands.common import (
    add_cfg_flags,
    add_trainer_flags,
    invocation,
    parse_cfg,
    report_trained,
)
from adaptive_csp.train.namer import NamerCfg
from adaptive_csp.train.sandwich import TrainCfg

__all__ = ["configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    add_trainer_flags(p, TrainCfg, "runs/namer", "no progress bars", lambda q: add_cfg_flags(q, NamerCfg))


def run(args: argparse.Namespace) -> int:
    from adaptive_csp.train.namer import train_namer

    ncfg = parse_cfg(args, NamerCfg, "train-namer")
    cfg = parse_cfg(args, TrainCfg, "train-namer")
    if ncfg is None or cfg is None:
        return 2
    model = train_namer(ncfg, cfg, args.out, resume=not args.no_resume,
                        progress=not args.quiet, command=invocation("train-namer", args))
    return report_trained(model, args.out)

