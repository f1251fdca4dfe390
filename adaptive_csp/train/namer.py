"""Train a second-stage namer: the shipped classifier fine-tuned on item crops of detection scenes.

``train_namer`` cuts every item of ``scenes`` training scenes (boxes jittered by ``jitter``)
and of ``val_scenes`` validation scenes (exact boxes) into 28 × 28 grey crops
(:func:`adaptive_csp.detect.namer_data.scene_crops`), trains an elastic classifier on them with the
classifier's own trainer (:func:`adaptive_csp.train.api.train`, resumable, ``budget_minutes``), and stores
how crops are cut in ``meta["namer"]`` so the runtime cuts them the same way
(:class:`adaptive_csp.runtime.namer.CropNamer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["NamerCfg", "train_namer"]


class NamerCfg(BaseModel):
    """The crops a namer learns from (the classifier's recipe is a :class:`TrainCfg` beside it)."""

    model_config = ConfigDict(extra="forbid")
    scenes: int = Field(8000, ge=1, description="training scenes (Fashion-MNIST train split, varied_cfg)")
    val_scenes: int = Field(400, ge=1, description="validation scenes (the val split's items)")
    scene_seed: int = Field(5, description="seed of the training scenes (validation: scene_seed + 72)")
    jitter: float = Field(0.1, ge=0, le=0.5, description="training boxes moved / rescaled by up to this "
                          "fraction of their size, as a detector's boxes are")


def train_namer(ncfg: NamerCfg, cfg: Any = None, out_dir: str | Path = "runs/namer", *, resume: bool = True,
                progress: bool = True, command: str | None = None, **fields: Any):
    """Train and save ``out_dir/model`` (a classifier with ``meta["namer"]``); return the model."""
    from adaptive_csp.detect.namer_data import CROP_SPEC, scene_crops
    from adaptive_csp.train.api import as_cfg, train

    defaults = {"init": "pretrained:csp_wide_fmnist", "epochs": 8, "lr": 0.02}
    tcfg = as_cfg({**defaults, **as_cfg(cfg).model_dump(exclude_unset=True)}, fields)
    data = scene_crops("train", ncfg.scenes, ncfg.scene_seed, jitter=ncfg.jitter, progress=progress)
    val = scene_crops("val", ncfg.val_scenes, ncfg.scene_seed + 72, progress=progress)
    return train(tcfg, out_dir, data, val_dataset=val, resume=resume, progress=progress, command=command,
                 meta={"namer": {**CROP_SPEC, "data": ncfg.model_dump()}})
