"""The preprocessing spec: how a frame becomes a model's input, as data (``meta["preprocess"]``).

A model's JSON carries it; ``AdaptiveRunner(model, preprocess={...})`` merges the given keys over it
(:func:`merge_spec`), and every key is validated here, so a typo or a bad value is an error that names it
instead of a silently ignored setting.  :func:`describe` writes out the recipe (order of operations,
interpolation, grey conversion) for export sidecars, so a user can reproduce it in another runtime.

Keys: ``input_size`` [H, W]; ``in_chans`` 1 or 3; ``color`` grey / rgb / bgr (the model's input);
``mean`` / ``std`` per channel, applied as ``(x · scale − mean) / std`` with x in 0..255; ``scale``;
``resize`` stretch / letterbox / center_crop; ``pad`` the letterbox fill (0..255); ``roi`` [x, y, w, h]
in frame pixels, cut out before anything else (None: the whole frame); ``note`` free text.

Plain data only: numpy-free, torch-free.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PreprocessSpec", "merge_spec", "describe", "RESIZE_MODES"]

RESIZE_MODES = ("stretch", "letterbox", "center_crop")
_COLOR_ALIASES = {"gray": "grey", "l": "grey"}


class PreprocessSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_size: tuple[int, int] = (28, 28)
    in_chans: Literal[1, 3] | None = None
    color: Literal["grey", "rgb", "bgr"] = "grey"
    mean: float | tuple[float, ...] | None = None
    std: float | tuple[float, ...] | None = None
    scale: float = Field(1.0 / 255.0, gt=0)
    resize: Literal["stretch", "letterbox", "center_crop"] = "stretch"
    pad: float = Field(0.0, ge=0, le=255)
    roi: tuple[int, int, int, int] | None = None
    note: str | None = None

    @field_validator("input_size")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 1:
            raise ValueError(f"input_size must be two positive ints [H, W], got {list(v)}")
        return v

    @field_validator("color", mode="before")
    @classmethod
    def _color(cls, v: Any) -> Any:
        return _COLOR_ALIASES.get(str(v).lower(), str(v).lower()) if isinstance(v, str) else v

    @field_validator("resize", mode="before")
    @classmethod
    def _resize(cls, v: Any) -> Any:
        return str(v).lower().replace("-", "_") if isinstance(v, str) else v

    @field_validator("roi")
    @classmethod
    def _roi(cls, v: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        if v is not None and (v[0] < 0 or v[1] < 0 or v[2] < 1 or v[3] < 1):
            raise ValueError(f"roi must be [x, y, w, h] with x, y ≥ 0 and w, h ≥ 1 (frame pixels), got {list(v)}")
        return v

    def to_meta(self) -> dict[str, Any]:
        """The JSON form (lists, no None entries)."""
        d = self.model_dump(mode="json", exclude_none=True)
        return d


def merge_spec(base: dict[str, Any] | None, override: dict[str, Any] | None) -> dict[str, Any]:
    """``override``'s keys over the model's ``base`` spec, the result validated (pydantic ValidationError,
    a ValueError naming the key, on an unknown key or a bad value)."""
    if override is not None and not isinstance(override, dict):
        raise ValueError(f"preprocess must be a dict of spec keys, got {type(override).__name__}")
    merged = {**(base or {}), **(override or {})}
    PreprocessSpec(**merged)  # validate; the caller keeps its own key order and values
    return merged


def describe(spec: dict[str, Any]) -> dict[str, Any]:
    """The recipe a user's own runtime must follow to feed an exported level (for export sidecars)."""
    s = PreprocessSpec(**spec)
    c = s.in_chans or (1 if s.color == "grey" else 3)
    h, w = s.input_size
    steps = []
    if s.roi is not None:
        steps.append(f"cut the region of interest x={s.roi[0]}, y={s.roi[1]}, w={s.roi[2]}, h={s.roi[3]} "
                     "(frame pixels, clipped to the frame)")
    steps.append({
        "stretch": f"resize the whole frame to {h}×{w} (aspect ratio not kept)",
        "letterbox": f"scale the whole frame by min({h}/H, {w}/W), centre it in {h}×{w}, fill the rest with "
                     f"{s.pad:g} (0..255 scale)",
        "center_crop": f"crop the largest centred window of aspect {w}:{h}, resize it to {h}×{w}",
    }[s.resize])
    steps.append("colour: " + ("grey = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, cv2.COLOR_BGR2GRAY)"
                               if s.color == "grey" else f"{s.color.upper()} channel order"))
    steps.append(f"x = (pixel · {s.scale:.10g} − mean) / std per channel, pixel in 0..255, layout N×{c}×{h}×{w} float32")
    return {
        "resize": s.resize,
        "interpolation": "exact area average when shrinking an axis (cv2.INTER_AREA's numbers, unrounded); "
                         "bilinear with half-pixel centres when enlarging (cv2.INTER_LINEAR)",
        "order": steps,
        "note": "resize and grey conversion are linear, so resizing before or after the grey conversion "
                "agrees to rounding",
    }
