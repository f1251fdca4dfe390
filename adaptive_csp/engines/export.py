"""One ladder level as a file another runtime can load: ONNX (float32) or TorchScript, plus a JSON sidecar.

``export_onnx`` writes a float32 CPU copy of the level's static module (sliced, BN folded) with a dynamic
batch axis, input ``input`` (N×C×H×W, normalised as the sidecar's ``preprocess`` says) and output
``logits`` (N×classes) — for a detector (``meta["task"] == "detect"``) ``detections`` (N×anchors×(4+classes):
boxes xyxy in input pixels, then class scores in [0, 1]; :func:`output_spec`); the model itself is not touched (any device or dtype).  ``export_torchscript`` traces the
static module on the weights' own device and dtype.  :func:`export_levels` writes one or every level with
a sidecar ``<stem>.json`` holding the level, its ladder index, class names and preprocessing.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import torch

from adaptive_csp.data.preprocess_spec import describe
from adaptive_csp.engines.base import OPSET
from adaptive_csp.models.static import AtLevel, input_shape, model_device_dtype, output_spec, static_module

__all__ = ["OPSET", "AtLevel", "input_shape", "output_spec", "static_module", "export_onnx", "export_frame_onnx",
           "export_torchscript",
           "export_levels", "sidecar"]


def export_onnx(model: torch.nn.Module, level: int, path: str | Path, opset: int = OPSET) -> Path:
    """Level ``level`` as a float32 ONNX file with a dynamic batch axis."""
    net = static_module(model, level, float32_cpu=True)
    c, h, w = input_shape(model)
    dummy = torch.zeros(1, c, h, w)
    path = Path(path)
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        out = output_spec(model)["name"]
        torch.onnx.export(net, (dummy,), str(path), input_names=["input"], output_names=[out],
                          dynamic_axes={"input": {0: "batch"}, out: {0: "batch"}},
                          opset_version=opset, dynamo=False)
    return path


def export_frame_onnx(model: torch.nn.Module, level: int, path: str | Path, *, frame_chans: int = 3,
                      color: str = "bgr", opset: int = OPSET) -> Path:
    """Level ``level`` as an ONNX file that takes the resized camera frame (uint8 N×H×W×C, ``color``
    order): the float export wrapped by :func:`adaptive_csp.engines.frame_graph.frame_model` (cast,
    colour, scale, mean/std and layout in front; softmax behind for a classifier)."""
    import tempfile

    import onnx

    from adaptive_csp.engines.frame_graph import frame_model

    meta = getattr(model, "meta", None) or {}
    spec = meta.get("preprocess")
    if not spec:
        raise ValueError("the model has no meta['preprocess']: the frame graph needs its size, colour, mean and std")
    path = Path(path)
    with tempfile.TemporaryDirectory() as d:
        src = export_onnx(model, level, Path(d) / "level.onnx", opset)
        m = frame_model(src, spec, frame_chans, color, softmax=str(meta.get("task", "classify")) != "detect")
    onnx.save(m, str(path))
    return path


def export_torchscript(model: torch.nn.Module, level: int, path: str | Path) -> Path:
    """Level ``level`` traced to TorchScript on the weights' device and dtype."""
    net = static_module(model, level)
    dev, dt = model_device_dtype(net)
    c, h, w = input_shape(model)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, torch.zeros(1, c, h, w, device=dev, dtype=dt))
    path = Path(path)
    traced.save(str(path))
    return path


def sidecar(model: torch.nn.Module, level: int, files: dict[str, str], dtype: dict[str, str]) -> dict[str, Any]:
    """What a user's own runtime needs next to the file: level, classes, preprocessing, I/O names."""
    meta = getattr(model, "meta", None) or {}
    ladder = getattr(model, "levels", None)
    lv = ladder[level] if ladder is not None else None
    rung = ladder.rungs[ladder.index(level)] if ladder is not None else None
    c, h, w = input_shape(model)
    return {
        "format": "adaptive-csp-export-1",
        "level_index": int(level) if ladder is None else ladder.index(level),
        "levels": len(ladder) if ladder is not None else 1,
        "level": lv.to_list() if lv is not None else None,
        "level_key": lv.key if lv is not None else None,
        "rung": rung.to_dict() if rung is not None else None,
        "class_names": list(meta.get("class_names") or []),
        "preprocess": meta.get("preprocess"),
        "preprocessing": describe(meta["preprocess"]) if meta.get("preprocess") else None,
        "input": {"name": "input", "shape": ["batch", c, h, w], "layout": "NCHW"},
        "task": str(meta.get("task", "classify")),
        "output": output_spec(model),
        "files": files,
        "dtype": dtype,
    }


def export_levels(model: torch.nn.Module, out_dir: str | Path, levels: Iterable[int] | None = None,
                  formats: Iterable[str] = ("onnx", "torchscript"), stem: str = "level") -> list[Path]:
    """Export ``levels`` (default: every ladder level) to ``out_dir``; returns the sidecar paths.
    ``"onnx-frame"``: also ``NAME.frame.onnx``, preprocessing and softmax in the graph
    (:mod:`adaptive_csp.engines.frame_graph`)."""
    formats = list(formats)
    bad = [f for f in formats if f not in ("onnx", "torchscript", "onnx-frame")]
    if bad or not formats:
        raise ValueError(f"formats must be 'onnx', 'torchscript' and/or 'onnx-frame', got {formats}")
    ladder = getattr(model, "levels", None)
    n = len(ladder) if ladder is not None else 1
    idx = list(range(n)) if levels is None else [ladder.index(i) if ladder is not None else int(i) for i in levels]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _, dt = model_device_dtype(model)
    written = []
    for i in idx:
        name = f"{stem}{i:02d}"
        files, dtypes = {}, {}
        if "onnx" in formats:
            files["onnx"] = export_onnx(model, i, out / f"{name}.onnx").name
            dtypes["onnx"] = "float32"
        if "torchscript" in formats:
            files["torchscript"] = export_torchscript(model, i, out / f"{name}.pt").name
            dtypes["torchscript"] = str(dt).replace("torch.", "")
        if "onnx-frame" in formats:  # the resized uint8 BGR frame in, probabilities / detections out
            files["onnx-frame"] = export_frame_onnx(model, i, out / f"{name}.frame.onnx").name
            dtypes["onnx-frame"] = "uint8 frame N×H×W×3 (BGR, after the resize)"
        side = out / f"{name}.json"
        side.write_text(json.dumps(sidecar(model, i, files, dtypes), indent=1))
        written.append(side)
    return written
