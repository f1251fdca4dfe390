"""``adaptive-csp train-detector``: one flag per :class:`DetTrainCfg` field (generated, as for ``train``).

Without data options it trains on the synthetic Fashion-MNIST belt scenes; ``--coco-images DIR
--coco-json FILE`` trains on your own COCO-format data; ``--scenes varied`` on scenes of every kind and
``--init-backbone csp_wide_fmnist`` (with ``--model csp_det_wide``) from the shipped classifier.  Interrupted
runs (``kill PID`` writes a checkpoint first) resume from ``OUT/last``; ``--budget-minutes`` caps the wall
time over all resumes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from pydantic import ValidationError

__all__ = ["configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    from adaptive_csp.train.cli import add_cfg_flags
    from adaptive_csp.train.detect import DetTrainCfg

    p.add_argument("--out", default="runs/detect", help="run folder (checkpoints, final model)")
    p.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_cfg_flags(p, DetTrainCfg)


def run(args: argparse.Namespace) -> int:
    from adaptive_csp.train.cli import cfg_from_args
    from adaptive_csp.train.detect import DetTrainCfg, train_detector

    try:
        cfg = cfg_from_args(args, DetTrainCfg)
    except ValidationError as e:
        print(f"adaptive-csp train-detector: invalid options:\n{e}", file=sys.stderr)
        return 2
    command = "adaptive-csp train-detector " + shlex.join(getattr(args, "_argv", sys.argv[2:]))
    train_detector(cfg, args.out, resume=not args.no_resume, progress=not args.quiet, command=command)
    last = Path(args.out) / "last.json"
    if last.exists() and "perm" in json.loads(last.read_text()):  # stopped inside an epoch (SIGTERM)
        print(f"checkpoint {last.with_suffix('.safetensors')}; run the same command to resume")
        return 0
    from adaptive_csp.train.distributed import is_main

    if is_main():
        print(f"saved {args.out}/model.safetensors")
    return 0
