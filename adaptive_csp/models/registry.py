"""Preset registry: named :class:`ModelCfg` s.  ``register_model_cfg`` adds your own.

ImageNet presets follow timm's ``cspnet.py`` configs (depths, widths, expand / bottleneck ratios) in
this package's in-place split layout (no partial transition on the block path), so their MACs are
close to, not identical with, timm's; the plain counterparts are ResNet-50 / ResNeXt-50 (32×4d) with
projection first blocks, and Darknet-53.
"""

from __future__ import annotations

from collections.abc import Callable

from adaptive_csp.models.config import ModelCfg, StageCfg, StemCfg

__all__ = ["MODEL_CFGS", "register_model_cfg", "get_model_cfg", "list_models"]

MODEL_CFGS: dict[str, Callable[[], ModelCfg]] = {}


def register_model_cfg(name: str):
    def deco(fn: Callable[[], ModelCfg]) -> Callable[[], ModelCfg]:
        MODEL_CFGS[name] = fn
        return fn

    return deco


def list_models() -> list[str]:
    return sorted(MODEL_CFGS)


def get_model_cfg(name: str, **overrides) -> ModelCfg:
    if name not in MODEL_CFGS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    cfg = MODEL_CFGS[name]()
    return ModelCfg.model_validate({**cfg.model_dump(), **overrides}) if overrides else cfg


# --- small, for 28–32 px inputs (the shipped, trained architecture) -------------------------------
# Stages of width 64/128/256 at 14/7/4 px.  The strided 3×3 keeps its input width (no down growth)
# and is grouped (16 channels a group), so the fixed part (stem, downsampling, expand/transition
# 1×1s) stays small and the blocks carry most of the compute: switching blocks off must save time.
_SMALL_W = (64, 128, 256)


def _small_csp(name: str, stem: int, stage_widths: tuple[int, ...],
               widths: tuple[float, ...] = (1.0,)) -> ModelCfg:
    return ModelCfg(
        name=name, cross=True, stem=StemCfg(out_chs=stem, kernel_size=3, stride=1),
        stages=tuple(StageCfg(out_chs=w, depth=3, stride=2, exp_ratio=1.0, bottle_ratio=1.0, block="dark",
                              down_groups=max(1, cin // 16))
                     for w, cin in zip(stage_widths, (stem,) + stage_widths[:-1])),
        ratios=(0.125, 0.25, 0.375, 0.5), widths=widths, act="relu", num_classes=10, in_chans=1,
        input_size=(28, 28),
    )


@register_model_cfg("csp_small")
def _csp_small() -> ModelCfg:
    return _small_csp("csp_small", 16, _SMALL_W)


# The elastic-width family (the shipped default): csp_small at 1.5× width — stem 24, stages 96/192/384 —
# whose levels also slice the whole network to 1/3, 1/2 or 2/3 of its channels (×0.5, ×0.75, ×1.0 of
# csp_small): one set of weights spanning static nets from ×0.5 with blocks off to ×1.5 full, so the
# cheap end of the ladder costs a small fraction of the full level while staying near its accuracy.
# Every width keeps whole 16-channel groups in the grouped down-sampling convs.
@register_model_cfg("csp_wide")
def _csp_wide() -> ModelCfg:
    return _small_csp("csp_wide", 24, (96, 192, 384), widths=(1 / 3, 0.5, 2 / 3, 1.0))


@register_model_cfg("plain_small")
def _plain_small() -> ModelCfg:
    # The non-CSP counterpart: Darknet-style stages (strided 3×3 to the stage width, then residual
    # 1×1 (w→w/2) → 3×3 (w/2→w) blocks on ALL channels), as Darknet-53 is to CSPDarknet-53.
    return ModelCfg(
        name="plain_small", cross=False, stem=StemCfg(out_chs=16, kernel_size=3, stride=1),
        stages=tuple(StageCfg(out_chs=w, depth=3, stride=2, bottle_ratio=0.5, block="dark") for w in _SMALL_W),
        ratios=(1.0,), act="relu", num_classes=10, in_chans=1, input_size=(28, 28),
    )


# --- ImageNet scale (timm cspnet.py) -------------------------------------------------------------
_RES_STEM = StemCfg(out_chs=64, kernel_size=7, stride=2, pool=True)


@register_model_cfg("cspresnet50")
def _cspresnet50() -> ModelCfg:
    return ModelCfg(
        name="cspresnet50", stem=_RES_STEM,
        stages=tuple(StageCfg(out_chs=w, depth=d, stride=s, exp_ratio=2.0, bottle_ratio=0.5, block="bottle")
                     for w, d, s in zip((128, 256, 512, 1024), (3, 3, 5, 2), (1, 2, 2, 2))),
        ratios=(0.25, 0.375, 0.5), act="leaky",
    )


@register_model_cfg("resnet50")
def _resnet50() -> ModelCfg:
    return ModelCfg(
        name="resnet50", cross=False, stem=_RES_STEM,
        stages=tuple(StageCfg(out_chs=w, depth=d - 1, stride=s, bottle_ratio=0.25, block="bottle", down="resnet")
                     for w, d, s in zip((256, 512, 1024, 2048), (3, 4, 6, 3), (1, 2, 2, 2))),
        ratios=(1.0,), act="relu",
    )


@register_model_cfg("cspresnext50")
def _cspresnext50() -> ModelCfg:
    return ModelCfg(
        name="cspresnext50", stem=_RES_STEM,
        stages=tuple(StageCfg(out_chs=w, depth=d, stride=s, exp_ratio=1.0, bottle_ratio=1.0, groups=32,
                              block="bottle")
                     for w, d, s in zip((256, 512, 1024, 2048), (3, 3, 5, 2), (1, 2, 2, 2))),
        ratios=(0.25, 0.375, 0.5), act="leaky",
    )


@register_model_cfg("resnext50")
def _resnext50() -> ModelCfg:
    return ModelCfg(
        name="resnext50", cross=False, stem=_RES_STEM,
        stages=tuple(StageCfg(out_chs=w, depth=d - 1, stride=s, bottle_ratio=0.5, groups=32, block="bottle",
                              down="resnet")
                     for w, d, s in zip((256, 512, 1024, 2048), (3, 4, 6, 3), (1, 2, 2, 2))),
        ratios=(1.0,), act="relu",
    )


@register_model_cfg("cspdarknet53")
def _cspdarknet53() -> ModelCfg:
    return ModelCfg(
        name="cspdarknet53", stem=StemCfg(out_chs=32, kernel_size=3, stride=1),
        stages=tuple(StageCfg(out_chs=w, depth=d, stride=2, exp_ratio=2.0 if i == 0 else 1.0,
                              bottle_ratio=0.5 if i == 0 else 1.0, block="dark", down_growth=True)
                     for i, (w, d) in enumerate(zip((64, 128, 256, 512, 1024), (1, 2, 8, 8, 4)))),
        ratios=(0.25, 0.375, 0.5), act="leaky",
    )


@register_model_cfg("darknet53")
def _darknet53() -> ModelCfg:
    return ModelCfg(
        name="darknet53", cross=False, stem=StemCfg(out_chs=32, kernel_size=3, stride=1),
        stages=tuple(StageCfg(out_chs=w, depth=d, stride=2, bottle_ratio=0.5, block="dark", down_growth=True)
                     for w, d in zip((64, 128, 256, 512, 1024), (1, 2, 8, 8, 4))),
        ratios=(1.0,), act="leaky",
    )
