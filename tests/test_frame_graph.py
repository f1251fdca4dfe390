"""The frame graph (issue #22, item 1, the export half): a level whose ONNX input is the resized uint8 camera
frame gives the Python path's numbers within 1e-5, for a grey classifier (grey and BGR cameras) and an RGB
detector, on random frames at each model's input size."""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

import adaptive_csp as ac  # noqa: E402
from adaptive_csp.engines.export import export_frame_onnx  # noqa: E402
from adaptive_csp.engines.frame_graph import channel_matrix  # noqa: E402
from adaptive_csp.engines.ort_engine import OrtEngine  # noqa: E402
from adaptive_csp.runtime.preprocess import Preprocessor  # noqa: E402


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("which,chans", [("classifier", 1), ("classifier", 3), ("detector", 3)])
def test_frame_graph_equals_the_python_path(tmp_path, which, chans):
    model = ac.pretrained() if which == "classifier" else ac.pretrained_detector()
    spec = model.meta["preprocess"]
    pre, eng = Preprocessor(spec, color="bgr"), OrtEngine(model, threads=1, int8=())  # export_frame_onnx: float
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


# the runner's frame path: resize -> the frame graph (IOBinding) instead of numpy arithmetic -> softmax

def _steer(level: int):
    from adaptive_csp.control.policy import Decision, Policy

    class Steer(Policy):
        name = "steer"

        def decide(self, readings, stats, ladder):  # ``level`` in engine-ladder indices, mapped into the view
            return Decision(ladder.view_index(level), "test")

    return Steer()


def _pair(model, level: int, **kw):
    """A runner on the frame path and one forced onto the float path, same engine settings and level; float32
    levels (an int8 rung quantises its input: a 1e-7 difference that lands on a rounding boundary moves one
    input value by a whole quantisation step, so int8 rungs agree within int8 rounding, tested below)."""
    from adaptive_csp.runtime import AdaptiveRunner

    opts = {"threads": 1, "int8": ()}
    fast = AdaptiveRunner(model, policy=_steer(level), sensors=None, engine="onnxruntime", engine_options=opts, **kw)
    slow = AdaptiveRunner(model, policy=_steer(level), sensors=None, engine="onnxruntime", engine_options=opts, **kw)
    assert fast._frames
    slow._frames = False
    calls = []
    inner = fast._frame_fn
    fast._frame_fn = lambda x: calls.append(x.shape) or inner(x)
    return fast, slow, calls


FRAMES = {"28x28 grey": (28, 28), "28x28x3": (28, 28, 3), "480x640x3": (480, 640, 3), "37x53x4": (37, 53, 4),
          "61x29x1": (61, 29, 1)}


@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center_crop"])
def test_runner_frame_path_equals_the_float_path(resize):
    model = ac.pretrained()
    rng = np.random.default_rng(7)
    for level in (0, len(model.levels) - 1):
        fast, slow, calls = _pair(model, level, resize=resize)
        with fast, slow:
            for name, shape in FRAMES.items():
                f = rng.integers(0, 256, shape, dtype=np.uint8)
                a, b = fast.infer(f), slow.infer(f)
                np.testing.assert_allclose(a.probs, b.probs, atol=1e-5, rtol=0, err_msg=f"{name} level {level}")
                assert a.label == b.label and a.level == b.level == level
            batch = rng.integers(0, 256, (3, 90, 120, 3), dtype=np.uint8)
            for a, b in zip(fast.infer(batch), slow.infer(batch), strict=True):
                np.testing.assert_allclose(a.probs, b.probs, atol=1e-5, rtol=0)
        assert len(calls) == len(FRAMES) + 1  # every numpy uint8 frame took the frame path


def test_runner_frame_path_keeps_roi_and_float_frames_right():
    model = ac.pretrained()
    rng = np.random.default_rng(3)
    fast, slow, calls = _pair(model, 0, roi=(10, 20, 200, 150))
    with fast, slow:
        f = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        np.testing.assert_allclose(fast.infer(f).probs, slow.infer(f).probs, atol=1e-5, rtol=0)
        g = rng.random((240, 320, 3), dtype=np.float32)  # a float frame takes the float path
        np.testing.assert_allclose(fast.infer(g).probs, slow.infer(g).probs, atol=1e-6, rtol=0)
        with pytest.raises(ValueError, match="channels"):
            fast.infer(np.zeros((28, 28, 2), np.uint8))
    assert len(calls) == 1


def test_runner_frame_path_detector_letterboxed_16_9():
    model = ac.pretrained_detector()
    rng = np.random.default_rng(5)
    fast, slow, calls = _pair(model, len(model.levels) - 1, resize="letterbox", score_thresh=0.01)
    with fast, slow:
        f = rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)
        a, b = fast.infer(f), slow.infer(f)
    assert len(calls) == 1
    assert len(a.boxes) > 0  # a low threshold, so there are boxes to compare
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    assert list(a.labels) == list(b.labels)


def test_an_int8_rung_runs_through_the_runner_on_the_frame_path(tmp_path):
    import onnx

    from adaptive_csp.data.fashion_mnist import load_sample
    from adaptive_csp.runtime import AdaptiveRunner

    model = ac.pretrained()
    s = load_sample()
    calib = s.normalized(slice(0, 64))
    eng = OrtEngine(model, threads=1, cache=tmp_path, calib=[calib], int8=[0])
    frames = s.images[64:96, 0].numpy()
    with AdaptiveRunner(model, policy=_steer(0), sensors=None, engine=eng) as r:
        preds = [r.infer(f) for f in frames]
        assert r._frames
    assert eng.precision(0) == "int8"
    ops = {n.op_type for n in onnx.load(str(eng.paths[0])).graph.node}
    assert "QuantizeLinear" in ops  # the session behind level 0 is the QDQ model
    want = _softmax(eng.run(Preprocessor(model.meta["preprocess"]).array(list(frames))[0], 0))
    got = np.stack([p.probs for p in preds])
    np.testing.assert_allclose(got, want, atol=2e-3)
    fp32 = _softmax(OrtEngine(model, threads=1, cache=tmp_path).run(
        Preprocessor(model.meta["preprocess"]).array(list(frames))[0], 0))
    assert np.abs(got - fp32).max() > 1e-4  # int8 ran, not the float level


def test_runner_frame_path_follows_an_engine_refresh():
    """After the weights change and ``engine.refresh()``, the frame path runs the new weights."""
    import torch

    model = ac.pretrained()
    fast, slow, _ = _pair(model, 0)
    f = np.random.default_rng(2).integers(0, 256, (28, 28), dtype=np.uint8)
    with fast, slow:
        before = fast.infer(f).probs
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.05)
        fast.engine.refresh()
        slow.engine.refresh()
        after, want = fast.infer(f).probs, slow.infer(f).probs
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, want, atol=1e-5, rtol=0)
