"""The frame graph (issue #22, item 1, the export half): a level whose ONNX input is the resized uint8 camera
frame gives the Python path's numbers within 1e-5, for a grey classifier (grey and BGR cameras) and an RGB
detector, on random frames at each model's input size."""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

import adaptive_csp as ac  # noqa: E402
from adaptive_csp.engines.frame_graph import channel_matrix, export_frame_onnx  # noqa: E402
from adaptive_csp.engines.ort_engine import OrtEngine  # noqa: E402
from adaptive_csp.runtime.preprocess import Preprocessor  # noqa: E402


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("which,chans", [("classifier", 1), ("classifier", 3), ("detector", 3)])
def test_frame_graph_equals_the_python_path(tmp_path, which, chans):
    model = ac.pretrained() if which == "classifier" else ac.pretrained_detector()
    spec = model.meta["preprocess"]
    pre, eng = Preprocessor(spec, color="bgr"), OrtEngine(model, threads=1)
    h, w = spec["input_size"]
    rng = np.random.default_rng(chans)
    for level in (0, len(model.levels) - 1):
        path = export_frame_onnx(model, level, tmp_path / f"{which}{level}.onnx", frame_chans=chans)
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        frames = rng.integers(0, 256, (3, h, w, chans), dtype=np.uint8)
        got = s.run(None, {"frame": frames})[0]
        x, _ = pre.array(list(frames if chans == 3 else frames[..., 0]))
        want = eng.run(x, level)
        want = _softmax(want) if which == "classifier" else want
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{which} level {level}")


def test_channel_matrix_matches_the_preprocessors_conversions():
    bgr_to_grey = channel_matrix(3, "bgr", "grey")
    np.testing.assert_allclose(bgr_to_grey, [[0.114, 0.587, 0.299]], atol=1e-7)
    np.testing.assert_array_equal(channel_matrix(3, "bgr", "rgb"), np.eye(3)[::-1])
    np.testing.assert_array_equal(channel_matrix(3, "bgr", "bgr"), np.eye(3))
    np.testing.assert_array_equal(channel_matrix(1, "bgr", "rgb"), np.ones((3, 1)))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        channel_matrix(4, "bgr", "rgb")


def test_cli_exports_the_frame_graph_beside_the_float_one(tmp_path):
    import json

    from adaptive_csp.cli import main

    assert main(["export", "--out", str(tmp_path), "--level", "0", "--format", "onnx-frame"]) == 0
    side = json.loads((tmp_path / "level00.json").read_text())
    assert side["files"] == {"onnx": "level00.onnx", "onnx-frame": "level00.frame.onnx"}
    s = ort.InferenceSession(str(tmp_path / "level00.frame.onnx"), providers=["CPUExecutionProvider"])
    probs = s.run(None, {"frame": np.zeros((2, 28, 28, 3), np.uint8)})[0]
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
