"""A level that takes the frame as the camera gives it: preprocessing and post-processing inside the graph.

:class:`FrameInput` wraps a level's static module so that its input is the frame **after the resize**
— ``uint8``, ``N×H×W×C`` at the model's input size, channels in the camera's order (``color``: ``"bgr"``
as OpenCV gives them, or ``"rgb"``; ``C = 1`` for a grey camera) — and does in the graph what
:class:`~adaptive_csp.runtime.preprocess.Preprocessor` does in numpy after its resize: cast to float,
channel order and colour conversion (luma ``0.299 R + 0.587 G + 0.114 B`` for a grey model, replication
for a colour model fed grey), scale, mean/std, and the layout change to ``N×C×H×W``.  A classifier's
output is its class probabilities (softmax); a detector's is its decoded ``N×A×(4+K)`` (NMS stays
outside, it is data-dependent).  The channel step is one 1×1 convolution whose weights are the
composition of those linear maps, so the numbers equal the Python path's up to float rounding
(``tests/test_frame_graph.py``: within 1e-5).

``export_frame_onnx(model, level, path)`` writes it (input ``frame``, output ``probs`` or ``detections``,
dynamic batch); ``adaptive-csp export --format onnx-frame`` writes one per level.  The float
``N×C×H×W`` export (:func:`adaptive_csp.engines.export.export_onnx`) stays, for compatibility and for the
engine.  Whoever runs the frame graph resizes the frame first (the sidecar's ``preprocessing`` says how).
"""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from adaptive_csp.engines.base import OPSET, input_shape, model_device_dtype
from adaptive_csp.engines.export import output_spec, static_module
from adaptive_csp.runtime.preprocess import LUMA_RGB, Preprocessor

__all__ = ["FrameInput", "channel_matrix", "export_frame_onnx"]


def channel_matrix(frame_chans: int, color: str, model_mode: str) -> np.ndarray:
    """The ``model channels × frame channels`` matrix that maps a frame's channels (``color`` order) to the
    model's (``model_mode``: grey, rgb or bgr), as the Preprocessor does: frame → RGB, then luma for grey,
    replication of a grey frame, or the flip to BGR."""
    if frame_chans not in (1, 3):
        raise ValueError(f"a frame graph takes 1 or 3 channels, got {frame_chans}")
    if color not in ("bgr", "rgb"):
        raise ValueError(f"color must be 'bgr' or 'rgb', got {color!r}")
    to_rgb = np.eye(3, dtype=np.float64)[::-1] if color == "bgr" and frame_chans == 3 else np.eye(frame_chans)
    if model_mode == "grey":
        m = np.asarray([LUMA_RGB], np.float64) @ to_rgb if frame_chans == 3 else np.ones((1, 1))
    elif frame_chans == 1:
        m = np.ones((3, 1))
    else:
        m = to_rgb if model_mode == "rgb" else np.eye(3)[::-1] @ to_rgb
    return m.astype(np.float32)


class FrameInput(torch.nn.Module):
    """``frame`` (uint8 N×H×W×C after the resize) → the level's probabilities or decoded detections."""

    def __init__(self, net: torch.nn.Module, spec: dict[str, Any], frame_chans: int = 3, color: str = "bgr",
                 softmax: bool = True):
        super().__init__()
        pre = Preprocessor(spec, color=color)
        m = channel_matrix(frame_chans, color, pre.mode)
        self.net, self.softmax = net, bool(softmax)
        dev, dt = model_device_dtype(net)  # the constants live where the level's weights do

        def const(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(dev, dt)
        self.register_buffer("mix", const(m[:, :, None, None]))
        self.register_buffer("mul", const(pre._mul_u8[None]))
        self.register_buffer("add", const(pre._add[None]))

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        x = frame.permute(0, 3, 1, 2).to(self.mix.dtype)
        x = F.conv2d(x, self.mix) * self.mul + self.add
        y = self.net(x)
        return torch.softmax(y, 1) if self.softmax else y


def export_frame_onnx(model: torch.nn.Module, level: int, path: str | Path, *, frame_chans: int = 3,
                      color: str = "bgr", opset: int = OPSET) -> Path:
    """Level ``level`` as an ONNX file that takes the resized camera frame (see the module docstring)."""
    spec = (getattr(model, "meta", None) or {}).get("preprocess")
    if not spec:
        raise ValueError("the model has no meta['preprocess']: the frame graph needs its size, colour, mean and std")
    task = str((getattr(model, "meta", None) or {}).get("task", "classify"))
    wrapped = FrameInput(static_module(model, level, float32_cpu=True), spec, frame_chans, color,
                         softmax=task != "detect").eval()
    _, h, w = input_shape(model)
    out = "probs" if task != "detect" else output_spec(model)["name"]
    path = Path(path)
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (torch.zeros(1, h, w, frame_chans, dtype=torch.uint8),), str(path),
                          input_names=["frame"], output_names=[out],
                          dynamic_axes={"frame": {0: "batch"}, out: {0: "batch"}}, opset_version=opset, dynamo=False)
    return path
