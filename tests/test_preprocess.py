"""Frame formats: every accepted form gives the same model input / prediction as the reference tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptive_csp.data.fashion_mnist import load_sample
from adaptive_csp.models.pretrained import pretrained
from adaptive_csp.runtime import AdaptiveRunner, Preprocessor
from adaptive_csp.runtime.preprocess import HAVE_CV2
from tests.conftest import Fixed

BACKENDS = ["cv2", "torch"] if HAVE_CV2 else ["torch"]


@pytest.fixture(scope="module")
def model():
    return pretrained()


@pytest.fixture(scope="module")
def images():
    s = load_sample()
    return s.images[:4, 0].numpy()


def up(g: np.ndarray, k: int) -> np.ndarray:
    return np.kron(g, np.ones((k, k), np.uint8))


def forms(g: np.ndarray) -> dict[str, object]:
    """Equivalent frames of the same 28×28 grey image ``g``."""
    big = up(g, 3)
    bgr = np.repeat(big[:, :, None], 3, axis=2)
    tint = np.stack([g, g, g, np.full_like(g, 9)], axis=2)  # BGRA, alpha ignored
    return {
        "grey": g,
        "grey_hw1": g[:, :, None],
        "bgr": np.repeat(g[:, :, None], 3, axis=2),
        "bgra": tint,
        "float32": g.astype(np.float32) / 255,
        "float64": g / 255.0,
        "big_grey": big,
        "big_bgr": bgr,
        "fortran": np.asfortranarray(big),
        "negative_strides": bgr[::-1, ::-1][::-1, ::-1],
        "channel_view": np.repeat(big[:, :, None], 4, axis=2)[:, :, 1:],
        "row_strided_crop": np.repeat(up(g, 2)[:, :, None], 3, axis=2)[:, :],  # 56×56
        # (a 58×58 frame is no longer equivalent: the whole frame is area-averaged, tests/test_resize.py)
        "tensor_chw": torch.from_numpy(g)[None],
        "tensor_3chw": torch.from_numpy(bgr).permute(2, 0, 1),
        "tensor_float": torch.from_numpy(big)[None].float() / 255,
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_form_matches_reference_tensor(model, images, backend):
    pre = Preprocessor(model.meta["preprocess"], backend=backend)
    with AdaptiveRunner(model, policy=Fixed(-1), sensors=None, backend=backend,
                        engine_options={"int8": ()}) as runner:  # float32 levels: compared with torch below
        for g in images:
            ref = pre.normalize_uint8(g[None])
            with torch.inference_mode():
                want = torch.softmax(model(ref, -1), 1)[0]
            for name, frame in forms(g).items():
                x, batched = pre(frame)
                assert not batched and x.shape == (1, 1, 28, 28), name
                torch.testing.assert_close(x, ref, atol=2e-5, rtol=0, msg=name)
                p = runner.infer(frame)
                assert p.label == int(want.argmax()), name
                np.testing.assert_allclose(p.probs, want.numpy(), atol=1e-4, err_msg=name)


def test_batches_list_array_tensor(model, images):
    pre = Preprocessor(model.meta["preprocess"])
    ref = pre.normalize_uint8(images)
    for frame in ([*images], tuple(images), images[:, :, :, None], torch.from_numpy(images)[:, None],
                  [up(images[0], 2), images[1], np.repeat(images[2][:, :, None], 3, 2), images[3] / 255.0]):
        x, batched = pre(frame)
        assert batched
        torch.testing.assert_close(x, ref, atol=2e-5, rtol=0)
    with AdaptiveRunner(model, policy=Fixed(0), sensors=None) as runner:
        preds = runner.infer(list(images))
        assert isinstance(preds, list) and len(preds) == len(images)
        with torch.inference_mode():
            want = torch.softmax(model(ref, 0), 1)
        assert [p.label for p in preds] == want.argmax(1).tolist()
        np.testing.assert_allclose(np.stack([p.probs for p in preds]), want.numpy(), atol=1e-4)
        assert [p.score for p in preds] == pytest.approx(want.max(1).values.tolist(), abs=1e-4)
        assert all(p.level == 0 for p in preds)


def test_rgb_switch_and_colour_model():
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (56, 84, 3), dtype=np.uint8)
    rgb = bgr[:, :, ::-1]
    grey_spec = {"input_size": [28, 28], "in_chans": 1, "color": "grey", "mean": [0.5], "std": [0.25]}
    a, _ = Preprocessor(grey_spec)(bgr)
    b, _ = Preprocessor(grey_spec, color="rgb")(rgb)
    torch.testing.assert_close(a, b)
    luma = (0.114 * bgr[..., 0] + 0.587 * bgr[..., 1] + 0.299 * bgr[..., 2]).reshape(28, 2, 28, 3).mean((1, 3))
    torch.testing.assert_close(a[0, 0], torch.tensor((luma / 255 - 0.5) / 0.25, dtype=torch.float32),
                               atol=0.02, rtol=0)  # uint8 rounding of the resized image
    col = {"input_size": [28, 28], "in_chans": 3, "color": "rgb", "mean": [0.0] * 3, "std": [1.0] * 3}
    x, _ = Preprocessor(col)(bgr)  # BGR frame into an RGB model: channels swapped
    y, _ = Preprocessor(col, color="rgb")(rgb)
    torch.testing.assert_close(x, y)
    small = bgr[::2, ::3]  # 28×28 exactly
    x, _ = Preprocessor(col)(np.ascontiguousarray(small))
    torch.testing.assert_close(x[0, 0], torch.from_numpy(small[..., 2] / 255.0).float())
    g = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    x, _ = Preprocessor(col)(g)  # grey frame into a colour model: repeated
    assert torch.equal(x[0, 0], x[0, 1]) and torch.equal(x[0, 1], x[0, 2])


def test_tensor_color_is_separate_from_numpy_color():
    """numpy frames follow ``color`` (BGR by default), tensors follow ``tensor_color`` (RGB by default)."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    col = {"input_size": [28, 28], "in_chans": 3, "color": "rgb", "mean": [0.0] * 3, "std": [1.0] * 3}
    want = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    t_rgb = torch.from_numpy(rgb).permute(2, 0, 1)
    t_bgr = torch.from_numpy(np.ascontiguousarray(rgb[:, :, ::-1])).permute(2, 0, 1)
    torch.testing.assert_close(Preprocessor(col)(t_rgb)[0], want)  # default: tensors are RGB ...
    torch.testing.assert_close(Preprocessor(col)(rgb[:, :, ::-1])[0], want)  # ... numpy frames BGR
    torch.testing.assert_close(Preprocessor(col, tensor_color="bgr")(t_bgr)[0], want)
    torch.testing.assert_close(Preprocessor(col, tensor_color="bgr")(t_bgr[None])[0], want)  # batched too
    torch.testing.assert_close(Preprocessor(col, color="rgb")(rgb)[0], want)
    assert not torch.equal(Preprocessor(col)(t_bgr)[0], want)
    with pytest.raises(ValueError, match="tensor_color"):
        Preprocessor(col, tensor_color="yuv")


def test_array_matches_tensor_and_is_contiguous(images):
    pre = Preprocessor({"input_size": [28, 28], "in_chans": 1, "color": "grey", "mean": [0.3], "std": [0.4]})
    for frame in (images[0], np.asfortranarray(images[0]), images[1][::-1], torch.from_numpy(images[2])[None],
                  list(images)):
        a, batched = pre.array(frame)
        t, batched_t = pre(frame)
        assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous
        assert batched == batched_t and np.array_equal(a, t.numpy())
        if isinstance(frame, np.ndarray):  # 28×28 uint8: the runner's fast path, against the reference
            ref = pre.normalize_uint8(np.ascontiguousarray(frame)[None]).numpy()
            np.testing.assert_allclose(a, ref, atol=2e-5, rtol=0)


@pytest.mark.skipif(not HAVE_CV2, reason="needs opencv")
def test_backends_agree_on_camera_sized_frames():
    rng = np.random.default_rng(2)
    spec = {"input_size": [28, 28], "in_chans": 1, "color": "grey", "mean": [0.286], "std": [0.353]}
    for shape in [(480, 640, 3), (20, 30), (720, 1280, 4)]:
        f = rng.integers(0, 256, shape, dtype=np.uint8)
        a, _ = Preprocessor(spec, backend="cv2")(f)
        b, _ = Preprocessor(spec, backend="torch")(f)
        assert a.shape == b.shape == (1, 1, 28, 28)
        torch.testing.assert_close(a, b, atol=0.02, rtol=0)  # cv2 rounds the resized uint8 image


BAD = {
    "rank 1": (np.zeros(28, np.uint8), "rank"),
    "rank 5": (np.zeros((1, 1, 28, 28, 1), np.uint8), "rank"),
    "zero size": (np.zeros((0, 28), np.uint8), "empty"),
    "zero width colour": (np.zeros((28, 0, 3), np.uint8), "empty"),
    "nan": (np.full((28, 28), np.nan, np.float32), "NaN"),
    "inf": (np.pad(np.full((1, 1), np.inf), ((0, 27), (0, 27))), "NaN or Inf"),
    "int32": (np.zeros((28, 28), np.int32), "dtype"),
    "bool": (np.zeros((28, 28), bool), "dtype"),
    "complex": (np.zeros((28, 28), np.complex64), "dtype"),
    "object": (np.empty((28, 28), object), "object"),
    "2 channels": (np.zeros((28, 28, 2), np.uint8), "channels"),
    "5 channels": (np.zeros((28, 28, 5), np.uint8), "channels"),
    "float 0..255": (np.full((28, 28), 200.0, np.float32), r"\[0, 1\]"),
    "tensor rank 2": (torch.zeros(28, 28), "C×H×W"),
    "tensor 2 channels": (torch.zeros(2, 28, 28), "channels"),
    "tensor int64": (torch.zeros(1, 28, 28, dtype=torch.int64), "dtype"),
    "tensor empty": (torch.zeros(1, 0, 28), "empty"),
    "tensor nan": (torch.full((1, 56, 56), float("nan")), "NaN"),
    "empty list": ([], "empty"),
    "list with junk": ([np.zeros((28, 28), np.uint8), "frame"], "frame 1"),
    "list with bad frame": ([np.zeros((28, 28), np.uint8), np.zeros((28, 28, 2), np.uint8)], "frame 1"),
    "string": ("frame.png", "unsupported frame type"),
    "none": (None, "unsupported frame type"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_frames_raise_and_runner_stays_healthy(model, images, name):
    frame, match = BAD[name]
    with AdaptiveRunner(model, policy=Fixed(2), sensors=None) as runner:
        good = runner.infer(images[0])
        with pytest.raises(ValueError, match=match):
            runner.infer(frame)
        again = runner.infer(images[0])
        assert again.label == good.label and again.level == good.level == 2
        np.testing.assert_array_equal(again.probs, good.probs)
        s = runner.stats()
        assert s["bad_frames"] == 1 and s["calls"] == 2


def test_bad_spec_rejected():
    with pytest.raises(ValueError, match="color"):
        Preprocessor({"input_size": [28, 28]}, color="yuv")
    with pytest.raises(ValueError, match="in_chans"):
        Preprocessor({"input_size": [28, 28], "in_chans": 3, "color": "grey"})
    with pytest.raises(ValueError, match="mean/std"):
        Preprocessor({"input_size": [28, 28], "in_chans": 1, "std": [0.0]})
