"""`adaptive-csp train` and `adaptive-csp profile`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["train_main", "profile_main"]


def fashion_mnist_meta() -> dict:
    """Metadata every model trained here carries: classes, preprocessing, data licence."""
    from adaptive_csp.data import fashion_mnist as fm

    return {
        "class_names": list(fm.CLASS_NAMES),
        "preprocess": {"input_size": [28, 28], "in_chans": 1, "color": "grey", "mean": [fm.MEAN],
                       "std": [fm.STD], "scale": 1 / 255,
                       "note": "light object on a dark background, as in Fashion-MNIST"},
        "data": {"name": "Fashion-MNIST", "source": "Debian package dataset-fashion-mnist",
                 "license": fm.LICENSE},
    }


def train_main(argv: list[str]) -> int:
    from adaptive_csp.train.sandwich import TrainCfg, train

    p = argparse.ArgumentParser(prog="adaptive-csp train", description="Train an elastic model (sandwich rule).")
    p.add_argument("--out", default="runs/csp_small", help="run folder (checkpoints, final model)")
    p.add_argument("--model", default="csp_small")
    p.add_argument("--epochs", type=int, default=TrainCfg().epochs)
    p.add_argument("--batch-size", type=int, default=TrainCfg().batch_size)
    p.add_argument("--lr", type=float, default=TrainCfg().lr)
    p.add_argument("--full-only-epochs", type=int, default=TrainCfg().full_only_epochs)
    p.add_argument("--n-random", type=int, default=TrainCfg().n_random)
    p.add_argument("--static-level", default=None,
                   help="train only this level (JSON list of [ratio, blocks]); for baselines")
    p.add_argument("--subset", type=int, default=None, help="train on the first N images (smoke test)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    p.add_argument("--data-dir", default=None)
    a = p.parse_args(argv)
    cfg = TrainCfg(model=a.model, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                   full_only_epochs=a.full_only_epochs, n_random=a.n_random,
                   static_level=json.loads(a.static_level) if a.static_level else None,
                   subset=a.subset, threads=a.threads, seed=a.seed, data_dir=a.data_dir)
    model = train(cfg, a.out, resume=not a.no_resume)
    from adaptive_csp.models.pretrained import save_model

    path = save_model(model, Path(a.out) / "model", **fashion_mnist_meta())
    print(f"saved {path}")
    return 0


def profile_main(argv: list[str]) -> int:
    from adaptive_csp.train.profile import main

    return main(argv)
