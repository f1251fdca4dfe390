"""Resizing keeps what its mode promises: the whole frame (stretch, letterbox) or all but the aspect excess
(center_crop); the numbers are the exact area average; geometry maps boxes back exactly.

The references come from cv2 (``cv2.resize(..., INTER_AREA)`` of the whole frame) or from the modes'
definitions worked out here, never from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from adaptive_csp.runtime import AdaptiveRunner, Preprocessor
from adaptive_csp.runtime.preprocess import HAVE_CV2
from adaptive_csp.runtime.resize import MODES, fit, resize
from tests.conftest import Fixed
from tests.test_runner_detect import StandIn

cv2 = pytest.importorskip("cv2") if HAVE_CV2 else None
BACKENDS = ["cv2", "torch"] if HAVE_CV2 else ["torch"]
RAW = {"mean": [0.0], "std": [1.0], "scale": 1.0}  # model input = pixel value, so comparisons are in 0..255


def grey(h, w, **kw):
    return Preprocessor({"input_size": [h, w], "in_chans": 1, "color": "grey", **RAW}, **kw)


def rgb(h, w, **kw):
    return Preprocessor({"input_size": [h, w], "in_chans": 3, "color": "rgb", "mean": [0.0] * 3,
                         "std": [1.0] * 3, "scale": 1.0}, **kw)


STEPS = [round(1.0 + 0.05 * i, 2) for i in range(41)]  # 1.00× … 3.00× the input


@pytest.mark.skipif(not HAVE_CV2, reason="the reference is cv2.INTER_AREA")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inp", [(28, 28), (96, 96), (24, 40)])
def test_stretch_is_the_area_average_of_the_whole_frame(backend, inp):
    h, w = inp
    pre = grey(h, w, backend=backend)
    rng = np.random.default_rng(h + w)
    for f in STEPS:
        for H, W in ((round(h * f), round(w * f)), (round(h * f), round(w * (4 - f))), (round(h * (4 - f)), w)):
            frame = rng.integers(0, 256, (H, W), np.uint8)  # noise: every pixel counts
            got = pre.array(frame)[0][0, 0]
            want = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
            assert np.abs(got - want).max() <= 0.5 + 1e-3, (H, W)  # cv2 rounds to uint8


@pytest.mark.skipif(not HAVE_CV2, reason="the reference is cv2.INTER_AREA")
@pytest.mark.parametrize("backend", BACKENDS)
def test_colour_frames_and_letterbox_content(backend):
    h = w = 96
    rng = np.random.default_rng(1)
    for H, W in ((96, 96), (120, 160), (160, 120), (144, 144), (191, 250), (240, 320), (288, 96)):
        frame = rng.integers(0, 256, (H, W, 3), np.uint8)
        got = rgb(h, w, backend=backend).array(frame)[0][0].transpose(1, 2, 0)[:, :, ::-1]  # RGB → BGR
        want = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        assert np.abs(got - want).max() <= 0.5 + 1e-3, (H, W)
        # letterbox: one scale r = min(h/H, w/W); content = the whole frame at round(H·r) × round(W·r)
        r = min(h / H, w / W)
        nh, nw = round(H * r), round(W * r)
        top, left = (h - nh) // 2, (w - nw) // 2
        box = rgb(h, w, backend=backend, resize="letterbox", pad=7).array(frame)[0][0].transpose(1, 2, 0)
        content = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float32)
        assert np.abs(box[top:top + nh, left:left + nw] - content).max() <= 0.5 + 1e-3, (H, W)
        band = np.ones((h, w), bool)
        band[top:top + nh, left:left + nw] = False
        assert np.all(box[band] == 7.0)


@pytest.mark.skipif(not HAVE_CV2, reason="the reference is cv2.INTER_AREA")
@pytest.mark.parametrize("backend", BACKENDS)
def test_center_crop_drops_only_the_aspect_excess(backend):
    rng = np.random.default_rng(2)
    for H, W, keep in ((480, 640, (slice(0, 480), slice(80, 560))), (640, 480, (slice(80, 560), slice(0, 480))),
                       (150, 150, (slice(0, 150), slice(0, 150))), (100, 301, (slice(0, 100), slice(100, 200)))):
        frame = rng.integers(0, 256, (H, W), np.uint8)
        got = grey(96, 96, backend=backend, resize="center_crop").array(frame)[0][0, 0]
        want = cv2.resize(np.ascontiguousarray(frame[keep]), (96, 96), interpolation=cv2.INTER_AREA)
        assert np.abs(got - want).max() <= 0.5 + 1e-3, (H, W)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["stretch", "letterbox"])
def test_a_marker_at_every_corner_survives(backend, mode):
    for inp in ((28, 28), (96, 96)):
        pre = grey(*inp, backend=backend, resize=mode)
        for f in STEPS[::4] + [4.7, 7.3]:
            for H, W in ((round(inp[0] * f), round(inp[1] * f)), (round(inp[0] * f), round(inp[1] * f * 1.4))):
                for y, x in ((0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1)):
                    frame = np.zeros((H, W), np.uint8)
                    frame[y, x] = 255
                    out = pre.array(frame)[0][0, 0]
                    # the marker's light lands, undiminished beyond its area share, in the input pixel that
                    # the geometry says covers it
                    ox, oy, sx, sy = pre.geometry(H, W)
                    u, v = int((x + 0.5 - ox) / sx), int((y + 0.5 - oy) / sy)
                    assert out[v, u] >= 255 / (sx * sy) - 0.5 - 1e-3, (mode, inp, H, W, y, x)  # cv2 may round


def test_the_old_crop_is_gone_for_frames_between_one_and_two_inputs():
    """160×160 to 96×96 kept only the central 96×96 before: an item at the edge must now be seen."""
    frame = np.zeros((160, 160), np.uint8)
    frame[5:30, 5:30] = 255  # in the top-left corner, outside the old central window [32, 128)
    out = grey(96, 96).array(frame)[0][0, 0]
    assert out[:20, :20].max() == pytest.approx(255.0)


def test_modes_validate():
    with pytest.raises(ValueError, match="resize mode"):
        grey(28, 28, resize="fill")
    with pytest.raises(ValueError, match="pad"):
        grey(28, 28, resize="letterbox", pad=300)
    assert grey(28, 28, resize="Center-Crop").resize == "center_crop"
    spec = {"input_size": [28, 28], "in_chans": 1, "color": "grey", "resize": "letterbox"}
    assert Preprocessor(spec).resize == "letterbox"  # a model may ask for its mode in its metadata
    assert set(MODES) == {"stretch", "letterbox", "center_crop"}


def want_geometry(H: int, W: int, h: int, w: int, mode: str) -> tuple[float, float, float, float]:
    """``(ox, oy, sx, sy)`` from the modes' definitions (module docstring of runtime/resize.py)."""
    if mode == "stretch":
        return 0.0, 0.0, W / w, H / h
    if mode == "letterbox":
        r = min(h / H, w / W)
        nh, nw = round(H * r), round(W * r)
        return -((w - nw) // 2) * W / nw, -((h - nh) // 2) * H / nh, W / nw, H / nh
    if W / H > w / h:
        cw = round(H * w / h)
        return float((W - cw) // 2), 0.0, cw / w, H / h
    ch = round(W * h / w)
    return 0.0, float((H - ch) // 2), W / w, ch / h


@pytest.mark.parametrize("mode", MODES)
def test_geometry_is_exact_for_every_mode(mode):
    h, w = 96, 96
    pre = rgb(h, w, resize=mode)
    for H in range(96, 401, 23):
        for W in (96, 130, 257, 400, H):
            assert pre.geometry(H, W) == pytest.approx(want_geometry(H, W, h, w, mode)), (H, W)
            f = fit(H, W, h, w, mode)
            ox, oy, sx, sy = f.geometry()
            # the input window of the content maps onto the frame window the mode keeps
            assert ox + sx * f.left == pytest.approx(f.x0) and ox + sx * (f.left + f.nw) == pytest.approx(f.x0 + f.cw)
            assert oy + sy * f.top == pytest.approx(f.y0) and oy + sy * (f.top + f.nh) == pytest.approx(f.y0 + f.ch)
            if mode != "center_crop":
                assert (f.ch, f.cw) == (H, W)  # nothing dropped
            else:
                assert f.ch == H or f.cw == W  # only one axis cropped
                assert abs(f.cw / f.ch - w / h) <= max(1 / f.ch, 1 / f.cw) * 1.01


@pytest.mark.parametrize("mode", MODES)
def test_detector_boxes_land_within_one_frame_pixel(mode):
    """A red rectangle painted at arbitrary frame coordinates comes back from the stand-in detector (the
    box of input pixels more than half red) within one frame pixel, for frames of 96–400 px."""
    rng = np.random.default_rng(3)
    model = StandIn()
    with AdaptiveRunner(model, policy=Fixed(-1), sensors=None, engine="torch", resize=mode) as r:
        for H, W in [(96, 96), (97, 131), (144, 144), (160, 160), (176, 176), (240, 320), (320, 240),
                     (333, 400), (400, 400), (400, 150)]:
            ox, oy, sx, sy = want_geometry(H, W, 96, 96, mode)
            left, top = round(-ox / sx) if ox < 0 else 0, round(-oy / sy) if oy < 0 else 0  # letterbox bands
            # a box in whole input pixels, inside the left half of the content, drawn where it must map
            u1 = left + int(rng.integers(1, 8))
            u2 = min(u1 + int(rng.integers(8, 30)), 47)
            v1 = top + int(rng.integers(0, 10))
            v2 = min(v1 + int(rng.integers(8, 40)), 96 - top)
            x1, x2 = round(ox + sx * u1), round(ox + sx * u2)
            y1, y2 = round(oy + sy * v1), round(oy + sy * v2)
            frame = np.zeros((H, W, 3), np.uint8)
            frame[y1:y2, x1:x2] = (0, 0, 255)
            d = r.infer(frame)
            assert len(d) == 1, (mode, H, W)
            np.testing.assert_allclose(d.boxes[0], [x1, y1, x2, y2], atol=1.0, err_msg=f"{mode} {H}×{W}")


@pytest.mark.skipif(not HAVE_CV2, reason="compares the two backends")
def test_backends_agree_and_never_import_torch_for_resizing():
    rng = np.random.default_rng(4)
    for H, W in ((50, 70), (29, 100), (300, 20), (480, 640), (96, 96)):
        frame = rng.integers(0, 256, (H, W, 3), np.uint8)
        a = resize(frame, 28, 28, use_cv2=True).astype(np.float32)
        b = resize(frame, 28, 28, use_cv2=False)
        assert np.abs(a - b).max() <= 1.0, (H, W)  # cv2 rounds (area) and uses fixed-point weights (linear)
    import adaptive_csp.runtime.resize as mod
    assert "torch" not in mod.__dict__
