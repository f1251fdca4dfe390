"""``adaptive_csp.train(...)``: the Python form of ``adaptive-csp train`` (train, then save the model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adaptive_csp.models.net import ElasticNet

__all__ = ["train", "as_cfg"]


def as_cfg(cfg: Any = None, fields: dict[str, Any] | None = None):
    """A validated :class:`~adaptive_csp.train.sandwich.TrainCfg` from a TrainCfg, a dict or None, with
    ``fields`` laid over it (pydantic names a bad field)."""
    from adaptive_csp.train.sandwich import TrainCfg

    if cfg is None:
        base: dict[str, Any] = {}
    elif isinstance(cfg, TrainCfg):
        base = cfg.model_dump(exclude_unset=True)
    elif isinstance(cfg, dict):
        base = dict(cfg)
    else:
        raise ValueError(f"cfg must be a TrainCfg, a dict or None, got {type(cfg).__name__}")
    return TrainCfg.model_validate({**base, **(fields or {})})


def train(cfg: Any = None, out_dir: str | Path = "runs/train", dataset: Any = None, *, val_dataset: Any = None,
          resume: bool = True, progress: bool = True, command: str | None = None, meta: dict[str, Any] | None = None,
          **fields: Any) -> ElasticNet:
    """Train an elastic model and save it as ``out_dir/model.safetensors`` (+ ``.json``); return it.

    ``cfg``: a ``TrainCfg`` (``adaptive_csp.train.TrainCfg``), a dict of its fields, or None; keyword
    ``fields`` override it, e.g. ``init="pretrained"``, ``budget_minutes=2``.  ``dataset``: your data — an
    image folder (one sub-folder per class), a map-style ``Dataset`` of ``(image, label)`` or an
    ``ImageSet``; None trains on Fashion-MNIST.  ``val_dataset``: the same kinds (default: a seeded
    ``val_fraction`` split of ``dataset``).  ``out_dir`` also holds the resumable checkpoint
    (``last.safetensors``); ``resume=False`` starts over.

    >>> import adaptive_csp as ac
    >>> model = ac.train(out_dir="runs/mine", dataset="my_images/", init="pretrained",
    ...                  budget_minutes=2)                                     # doctest: +SKIP
    >>> runner = ac.AdaptiveRunner("runs/mine/model.safetensors")             # doctest: +SKIP

    With ``init`` the run starts from a trained model (stem adapted to the channels, new head, BN
    re-estimated on your data, then a sandwich fine-tune; :mod:`adaptive_csp.train.transfer`).  Epochs,
    batch size and learning rate left unset are planned from the data's size
    (:func:`adaptive_csp.train.sandwich.resolve_cfg`); ``model.meta["train"]`` records the resolved recipe,
    every run and what it was initialised from.  ``meta``: entries added to ``model.meta`` before it is
    saved (a namer's crop spec, :mod:`adaptive_csp.train.namer`).
    """
    from adaptive_csp.models.pretrained import save_model
    from adaptive_csp.train.sandwich import train as sandwich_train

    tcfg = as_cfg(cfg, fields)
    data, val = _read(dataset), None
    if val_dataset is not None:
        if data is None:
            raise ValueError("val_dataset needs dataset")
        val = _read(val_dataset, like=data)
    model = sandwich_train(tcfg, out_dir, resume=resume, progress=progress, dataset=data, val_dataset=val,
                           command=command)
    from adaptive_csp.train.distributed import is_main

    if "stopped_at_step" not in model.meta["train"]:  # stopped (SIGTERM): the checkpoint, no model file yet
        model.meta.update(meta or {})
        if is_main():  # under torchrun, rank 0 writes the model
            save_model(model, Path(out_dir) / "model", **({"command": command} if command else {}))
    return model


def _read(data: Any, like: Any = None):
    """A folder path → its ImageSet (a validation folder read like the training data); else as given."""
    if not isinstance(data, (str, Path)):
        return data
    from adaptive_csp.data.folder import load_folder

    if like is None:
        return load_folder(data)
    return load_folder(data, input_size=like.input_size, color=like.in_chans == 3, class_names=list(like.class_names))
