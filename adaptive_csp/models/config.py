"""Architecture as data: validated configs for elastic CSP / plain networks (timm ``cspnet`` style)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["StemCfg", "StageCfg", "ModelCfg"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StemCfg(_Frozen):
    out_chs: int = Field(gt=0)
    kernel_size: int = Field(3, gt=0)
    stride: int = Field(1, gt=0)
    pool: bool = False  # 3×3 stride-2 max pool after the conv


class StageCfg(_Frozen):
    out_chs: int = Field(gt=0)
    depth: int = Field(ge=0)
    stride: int = Field(2, gt=0)
    exp_ratio: float = Field(1.0, gt=0)  # CSP: expanded channels = out_chs * exp_ratio
    bottle_ratio: float = Field(1.0, gt=0)  # block mid channels / block channels
    groups: int = Field(1, gt=0)
    block: Literal["dark", "bottle"] = "dark"
    down: Literal["conv", "resnet", "none"] = "conv"
    down_growth: bool = False  # CSP: the strided conv goes straight to out_chs (else keeps cin)
    down_groups: int | None = Field(None, gt=0)  # groups of the strided 3×3 (default: ``groups``)


class ModelCfg(_Frozen):
    """A network family member.  ``cross=True`` builds CSP stages, ``False`` the plain counterpart.

    ``ratios``: allowed split ratios (fraction of a stage's expanded channels through its blocks); the
    largest is the static architecture's split (0.5 for CSP, 1.0 for plain nets).
    ``widths``: allowed network width multipliers (every layer's channels, first-k sliced), ascending,
    ending at 1.0 (the full network).  Grouped convs need widths that keep whole groups.
    """

    name: str
    cross: bool = True
    stem: StemCfg
    stages: tuple[StageCfg, ...] = Field(min_length=1)
    ratios: tuple[float, ...] = (0.125, 0.25, 0.375, 0.5)
    widths: tuple[float, ...] = (1.0,)
    act: Literal["relu", "leaky"] = "relu"
    num_classes: int = Field(1000, gt=0)
    in_chans: int = Field(3, gt=0)
    input_size: tuple[int, int] = (224, 224)

    @model_validator(mode="after")
    def _check(self) -> ModelCfg:
        if not self.ratios or any(not 0 < r <= 1 for r in self.ratios):
            raise ValueError("ratios must be non-empty and each in (0, 1]")
        if tuple(sorted(self.ratios)) != self.ratios:
            raise ValueError("ratios must be ascending")
        if not self.widths or any(not 0 < w <= 1 for w in self.widths):
            raise ValueError("widths must be non-empty and each in (0, 1]")
        if tuple(sorted(set(self.widths))) != self.widths or self.widths[-1] != 1.0:
            raise ValueError(f"widths must be ascending, without repeats, and end at 1.0; got {self.widths}")
        if not self.cross and self.ratios != (1.0,):
            raise ValueError("a plain (cross=False) model has ratios (1.0,)")
        return self

    @property
    def split_ratio(self) -> float:
        return self.ratios[-1]

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.stages)
