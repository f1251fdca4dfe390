"""A level that takes the frame as the camera gives it: preprocessing and post-processing inside the graph.

:func:`frame_model` wraps a level's float ONNX graph (any of them: the engine's cached export, an int8 QDQ
model, a bundle's file, your own) so that its input is the frame **after the resize** — ``uint8``,
``N×H×W×C`` at the model's input size, channels in the camera's order (``color``: ``"bgr"`` as OpenCV
gives them, or ``"rgb"``; ``C = 1`` for a grey camera) — and does in the graph what
:class:`~adaptive_csp.runtime.preprocess.Preprocessor` does in numpy after its resize: cast to float,
channel order and colour conversion (luma ``0.299 R + 0.587 G + 0.114 B`` for a grey model, replication
for a colour model fed grey), scale, mean/std, and the layout change to ``N×C×H×W``.  A classifier's
output is its class probabilities (softmax); a detector's is its decoded ``N×A×(4+K)`` (NMS stays
outside, it is data-dependent).

Three nodes go in front: ``Cast`` → ``Transpose`` (a ``Reshape`` for one channel) → one 1×1 ``Conv`` whose weights and bias are the
composition of the linear maps (channel mix, scale, ``1/std``, ``-mean/std``), so the numbers equal the
Python path's up to float rounding (``tests/test_frame_graph.py``: within 1e-5), at the price of three
small kernels instead of several numpy passes.  The composition needs the ``onnx`` package, not torch.

:func:`adaptive_csp.engines.export.export_frame_onnx` writes one file (input ``frame``, output ``probs`` or
``detections``, dynamic batch); ``adaptive-csp export --format onnx-frame`` writes one per level.  The
float ``N×C×H×W`` export (:func:`adaptive_csp.engines.export.export_onnx`) stays, for compatibility.
Whoever runs the frame graph resizes the frame first (the sidecar's ``preprocessing`` says how).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adaptive_csp.runtime.preprocess import LUMA_RGB, Preprocessor

__all__ = ["channel_matrix", "frame_affine", "frame_model", "have_onnx", "FRAME_INPUT"]

FRAME_INPUT = "frame"


def have_onnx() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


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


def frame_affine(spec: dict[str, Any], frame_chans: int, color: str) -> tuple[np.ndarray, np.ndarray]:
    """``(weight C×F×1×1, bias C)`` of the one 1×1 convolution that turns a float frame (0..255, ``color``
    order, F channels) into the model's normalised input: ``mix · scale / std`` and ``-mean / std``."""
    pre = Preprocessor(spec, color=color)
    mix = channel_matrix(frame_chans, color, pre.mode).astype(np.float64)
    weight = mix * pre._mul_u8.reshape(-1, 1).astype(np.float64)
    return weight[:, :, None, None].astype(np.float32), pre._add.reshape(-1).astype(np.float32)


def frame_model(src: Any, spec: dict[str, Any], frame_chans: int = 3, color: str = "bgr",
                softmax: bool = True, dtype: Any = np.uint8) -> Any:
    """The ``onnx.ModelProto`` of ``src`` (a float N×C×H×W level: a path, bytes or a ModelProto) with the
    frame preprocessing in front and, when ``softmax``, a Softmax over axis 1 behind (output ``probs``).
    ``dtype``: the frame's, uint8 (the camera's) or float32 on the same 0..255 scale (a resize that
    averaged pixels without rounding them, a letterbox canvas)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if isinstance(src, (str, Path)):
        m = onnx.load(str(src))
    elif isinstance(src, (bytes, bytearray)):
        m = onnx.load_from_string(bytes(src))
    else:
        m = onnx.ModelProto()
        m.CopyFrom(src)
    g = m.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1 or inputs[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ValueError("a frame graph wraps a level with one float32 N×C×H×W input")
    old = inputs[0]
    dims = old.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ValueError(f"a frame graph wraps an N×C×H×W input; {old.name!r} has rank {len(dims)}")
    _, h, w = (int(d.dim_value) for d in dims[1:])
    batch = dims[0].dim_param or (int(dims[0].dim_value) if dims[0].dim_value else "batch")
    kinds = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.float32): TensorProto.FLOAT}
    if np.dtype(dtype) not in kinds:
        raise ValueError(f"a frame graph takes uint8 or float32 frames, got {np.dtype(dtype)}")
    weight, bias = frame_affine(spec, frame_chans, color)
    if weight.shape[0] != int(dims[1].dim_value):
        raise ValueError(f"the preprocessing makes {weight.shape[0]} channels; the graph takes {dims[1].dim_value}")
    g.initializer.extend([numpy_helper.from_array(weight, "frame/affine_w"),
                          numpy_helper.from_array(bias, "frame/affine_b")])
    if frame_chans == 1:  # N×H×W×1 -> N×1×H×W is a reshape (no copy), not a transpose
        g.initializer.append(numpy_helper.from_array(np.asarray([-1, 1, h, w], np.int64), "frame/nchw_shape"))
        layout = helper.make_node("Reshape", ["frame/f32", "frame/nchw_shape"], ["frame/nchw"])
    else:
        layout = helper.make_node("Transpose", ["frame/f32"], ["frame/nchw"], perm=[0, 3, 1, 2])
    front = [helper.make_node("Cast", [FRAME_INPUT], ["frame/f32"], to=TensorProto.FLOAT), layout,
             helper.make_node("Conv", ["frame/nchw", "frame/affine_w", "frame/affine_b"], [old.name])]
    nodes = front + list(g.node)
    g.ClearField("node")
    g.input.remove(old)
    g.input.insert(0, helper.make_tensor_value_info(FRAME_INPUT, kinds[np.dtype(dtype)],
                                                     [batch, h, w, frame_chans]))
    if softmax:
        out = g.output[0]
        nodes.append(helper.make_node("Softmax", [out.name], ["probs"], axis=1))
        probs = onnx.ValueInfoProto()
        probs.CopyFrom(out)
        probs.name = "probs"
        del g.output[:]
        g.output.append(probs)
    g.node.extend(nodes)
    return m
