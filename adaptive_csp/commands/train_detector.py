"""``adaptive-csp train-detector``: one flag per :class:`~adaptive_csp.train.detect.DetTrainCfg` field
(generated, as for ``train``).

Without data options it trains on the synthetic Fashion-MNIST belt scenes; ``--coco-images DIR
--coco-json FILE`` trains on your own COCO-format data; ``--scenes varied`` on scenes of every kind and
``--init-backbone csp_wide_fmnist`` (with ``--model csp_det_wide``) from the shipped classifier.  Interrupted
runs (``kill PID`` writes a checkpoint first) resume from ``OUT/last``; ``--budget-minutes`` caps the wall
time over all resumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adaptive_csp.commands.common import add_trainer_flags, invocation, parse_cfg
from adaptive_csp.train.detect import DetTrainCfg, train_detector
from adaptive_csp.train.distributed import is_main

__all__ = ["configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    add_trainer_flags(p, DetTrainCfg, "runs/detect", "no progress lines")


def run(args: argparse.Namespace) -> int:
    cfg = parse_cfg(args, DetTrainCfg, "train-detector")
    if cfg is None:
        return 2
    train_detector(cfg, args.out, resume=not args.no_resume, progress=not args.quiet,
                   command=invocation("train-detector", args))
    last = Path(args.out) / "last.json"
    if last.exists() and "perm" in json.loads(last.read_text()):  # stopped inside an epoch (SIGTERM)
        print(f"checkpoint {last.with_suffix('.safetensors')}; run the same command to resume")
        return 0
    if is_main():
        print(f"saved {args.out}/model.safetensors")
    return 0
