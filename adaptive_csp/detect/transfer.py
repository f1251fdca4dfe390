"""A detector's backbone from a trained classifier of the same family (``train-detector --init-backbone``).

:func:`init_backbone` copies every backbone weight of an :class:`~adaptive_csp.models.net.ElasticNet`
classifier into a :class:`~adaptive_csp.detect.model.Detector` whose backbone has the classifier's stages
(``csp_det_wide`` has csp_wide's):

* **the stem** is fitted to the detector's input channels by
  :func:`~adaptive_csp.models.transfer.adapt_stem_weight` (grey → RGB: the kernel replicated over the
  channels and divided by their count, so a frame with R = G = B gives the grey activations).  Its
  stride and pooling may differ — they have no weights: the detector chooses them for its pyramid;
* **the stages** — convolutions, BN parameters and running statistics — are copied as they are.  Widths
  (every stage's channels, groups, depth, block kind) and levels (split ratios, network widths) must be
  the classifier's, or :class:`ValueError` names the first difference;
* the classifier's input normalisation becomes the detector's (replicated per channel,
  :func:`~adaptive_csp.models.transfer.adapt_norm`), so the copied stem sees the numbers it was trained on.

So right after :func:`init_backbone`, on grey-replicated input normalised this way, the detector's
backbone features equal the classifier's features computed at the detector's stem stride.  The
classifier's BN statistics were measured on 28 px garments on black; :func:`reestimate_backbone_bn`
then re-estimates the shared running statistics on the detector's own training images (the trainer does
this once at the start; per-level statistics are estimated as usual after every epoch).
"""

from __future__ import annotations

from typing import Any

import torch

from adaptive_csp.detect.model import Detector
from adaptive_csp.models.net import ElasticNet
from adaptive_csp.models.transfer import adapt_norm, adapt_stem_weight
from adaptive_csp.nn.calib import estimate_bn

__all__ = ["check_backbone_fits", "init_backbone", "reestimate_backbone_bn"]

_STAGE_KEYS = ("out_chs", "depth", "stride", "exp_ratio", "bottle_ratio", "groups", "block", "down",
               "down_growth", "down_groups")


def check_backbone_fits(detector: Detector, classifier: ElasticNet) -> None:
    """Raise ValueError naming the first way ``classifier``'s weights do not fit ``detector``'s backbone."""
    if not isinstance(classifier, ElasticNet) or classifier.features_only:
        raise ValueError("--init-backbone needs a classifier checkpoint (an ElasticNet with a head)")
    d, c = detector.cfg.backbone, classifier.cfg
    if len(d.stages) != len(c.stages):
        raise ValueError(f"the detector {detector.cfg.name!r} has {len(d.stages)} backbone stages, the classifier "
                         f"{c.name!r} {len(c.stages)}: use a detector config built on the classifier's stages "
                         "(e.g. csp_det_wide for csp_wide)")
    for i, (ds, cs) in enumerate(zip(d.stages, c.stages)):
        for k in _STAGE_KEYS:
            if getattr(ds, k) != getattr(cs, k):
                raise ValueError(f"backbone stage {i}: {k} is {getattr(ds, k)!r} in the detector but "
                                 f"{getattr(cs, k)!r} in the classifier {c.name!r}")
    for k in ("cross", "act", "ratios", "widths"):
        if getattr(d, k) != getattr(c, k):
            raise ValueError(f"backbone {k} is {getattr(d, k)!r} in the detector but {getattr(c, k)!r} in the "
                             f"classifier {c.name!r}")
    for k in ("out_chs", "kernel_size"):
        if getattr(d.stem, k) != getattr(c.stem, k):
            raise ValueError(f"stem {k} is {getattr(d.stem, k)!r} in the detector but {getattr(c.stem, k)!r} in "
                             f"the classifier {c.name!r}")


@torch.no_grad()
def init_backbone(detector: Detector, classifier: ElasticNet) -> dict[str, Any]:
    """Copy ``classifier``'s backbone into ``detector`` (in place, see the module docstring); set the
    detector's normalisation to the classifier's.  Returns what was copied, for the training record."""
    check_backbone_fits(detector, classifier)
    in_chans = detector.cfg.backbone.in_chans
    src = {k: v for k, v in classifier.state_dict().items() if not k.startswith("head.")}
    src["stem.conv.weight"] = adapt_stem_weight(src["stem.conv.weight"], in_chans)
    dst = {k: v for k, v in detector.backbone.state_dict().items() if not k.startswith("head.")}  # unused there
    if set(src) != set(dst):
        raise ValueError(f"classifier and detector backbone state differ: only in the classifier "
                         f"{sorted(set(src) - set(dst))[:5]}, only in the detector {sorted(set(dst) - set(src))[:5]}")
    for k, v in src.items():
        if dst[k].shape != v.shape:
            raise ValueError(f"{k}: shape {tuple(v.shape)} in the classifier, {tuple(dst[k].shape)} in the detector")
        dst[k].copy_(v.to(dst[k].device, dst[k].dtype))
    detector.invalidate()
    pre = classifier.meta.get("preprocess") or {}
    info: dict[str, Any] = {"tensors": len(src), "stem": f"{classifier.cfg.in_chans} → {in_chans} channels"}
    if "mean" in pre and "std" in pre:
        mean, std = adapt_norm(list(pre["mean"]), list(pre["std"]), in_chans)
        detector.meta.setdefault("preprocess", {}).update(mean=list(mean), std=list(std))
        info["normalisation"] = {"mean": list(mean), "std": list(std)}
    return info


def reestimate_backbone_bn(detector: Detector, batches: list[torch.Tensor]) -> None:
    """Replace the shared BN running statistics (backbone, neck and head) by those of the full level on
    ``batches`` (normalised detector inputs): the classifier's were measured on other images."""
    lv = detector.full_level()
    p = detector.backbone.stem.conv.weight
    stats = estimate_bn(detector, lambda xb: detector.raw(xb, lv), [xb.to(p.device, p.dtype) for xb in batches])
    convs = dict(detector.named_modules())
    with torch.no_grad():
        for name, (mean, var) in stats.items():
            bn = convs[name].bn
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
    detector.invalidate()
