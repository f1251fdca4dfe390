"""Transfer learning, the model side: a trained elastic network adapted to other channels and classes.

:func:`adapt_model` keeps every trained weight except two:

* **the stem** is fitted to the new channel count.  Grey → C channels: the grey kernel is replicated over
  the C input channels and divided by C, so a frame with every channel equal to the grey image (R = G = B)
  gives exactly the grey model's activations (:func:`adapt_stem_weight`).  C → grey: the kernels are summed
  over the channels (exact on grey frames when the source normalised every channel alike).  Same count:
  copied.
* **the head** is a new linear layer for the new classes (PyTorch's default initialisation; the trainer
  may replace it by a linear probe, :mod:`adaptive_csp.train.transfer`).

Everything else — stages, BN parameters and running statistics, per-level BN statistics — is copied, so
the adapted network's pre-head features on replicated grey input equal the source's.  The input size is
only recorded: the network is fully convolutional with global average pooling before the head, so any
size runs.  The adapted model gets the architecture's default (MAC-ordered) ladder: the source's ladder
was measured on other data and at another input size; ``adaptive-csp profile`` measures a new one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from adaptive_csp.models.config import ModelCfg
from adaptive_csp.models.net import ElasticNet

__all__ = ["adapt_model", "adapt_stem_weight", "adapt_norm", "load_init"]


def adapt_stem_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """The stem kernel (O×C_src×k×k) for ``in_chans`` input channels (see the module docstring)."""
    c_src = weight.shape[1]
    if in_chans == c_src:
        return weight.clone()
    if c_src == 1:
        return weight.repeat(1, in_chans, 1, 1) / in_chans
    if in_chans == 1:
        return weight.sum(1, keepdim=True)
    raise ValueError(f"cannot adapt a {c_src}-channel stem to {in_chans} channels (supported: the same "
                     "count, grey to any, any to grey)")


def adapt_norm(mean: list[float], std: list[float], in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The source's input normalisation for ``in_chans`` channels: replicated from grey, averaged to grey."""
    if len(mean) != len(std) or not mean:
        raise ValueError(f"normalisation needs one mean and one std per channel, got {mean} / {std}")
    if len(mean) == in_chans:
        return tuple(mean), tuple(std)
    if len(mean) == 1:
        return tuple(mean) * in_chans, tuple(std) * in_chans
    if in_chans == 1:
        return (sum(mean) / len(mean),), (sum(std) / len(std),)
    raise ValueError(f"cannot adapt a {len(mean)}-channel normalisation to {in_chans} channels")


def adapt_model(source: ElasticNet, num_classes: int, in_chans: int | None = None,
                input_size: tuple[int, int] | None = None) -> ElasticNet:
    """A new :class:`ElasticNet` with ``source``'s trained weights, its stem fitted to ``in_chans`` and a
    fresh head for ``num_classes`` (on ``source``'s device and dtype; ``meta`` left empty)."""
    if source.features_only:
        raise ValueError("adapt_model needs a classifier (features_only=False)")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int ≥ 2, got {num_classes!r}")
    in_chans = source.cfg.in_chans if in_chans is None else int(in_chans)
    over: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_chans}
    if input_size is not None:
        over["input_size"] = tuple(int(v) for v in input_size)
    cfg = ModelCfg.model_validate({**source.cfg.model_dump(), **over})
    p = source.stem.conv.weight
    net = ElasticNet(cfg).to(device=p.device, dtype=p.dtype)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("head.")}
    state["stem.conv.weight"] = adapt_stem_weight(state["stem.conv.weight"], in_chans)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or sorted(missing) != ["head.bias", "head.weight"]:
        raise ValueError(f"source and adapted model differ beyond stem and head (missing {missing}, "
                         f"unexpected {unexpected})")
    net.bn_stats = {k: {n: (m.clone(), v.clone()) for n, (m, v) in d.items()} for k, d in source.bn_stats.items()}
    return net.eval()


def load_init(spec: str) -> tuple[ElasticNet, dict[str, Any]]:
    """The model ``--init`` names and a record of where it came from.

    ``spec``: ``"pretrained"`` (the shipped default), ``"pretrained:NAME"`` or a shipped model's name, or
    the path of a checkpoint written by ``save_model`` / ``adaptive-csp train`` (``.safetensors`` or
    ``.json``, or the path without suffix).
    """
    from adaptive_csp.models.pretrained import DEFAULT_MODEL, _paths, _sha256, load_model, shipped_path

    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"init must be 'pretrained', 'pretrained:NAME' or a checkpoint path, got {spec!r}")
    tpath, _ = _paths(spec)
    if tpath.exists():
        path = tpath
    else:
        name = spec.split(":", 1)[1] if spec.startswith("pretrained:") else spec
        name = DEFAULT_MODEL if name == "pretrained" else name
        try:
            path = shipped_path(name)
        except ValueError as e:
            raise ValueError(f"init {spec!r}: no checkpoint at {tpath} and {e}") from None
    model = load_model(path)
    info = {"from": spec, "path": str(Path(path).resolve()), "sha256": _sha256(Path(path)),
            "model": model.cfg.name, "in_chans": model.cfg.in_chans, "num_classes": model.cfg.num_classes,
            "input_size": list(model.cfg.input_size), "data": model.meta.get("data", {}).get("name")}
    return model, info
