"""AdaptiveRunner with a detector: Detections in frame coordinates for frames of several sizes and colour
layouts, batches of mixed sizes, faults, stream(), telemetry, content demand, torch vs ONNX Runtime.

The stand-in detector's boxes are known exactly: each level reports, per half of the input (left / right),
the bounding box of the pixels whose RED channel is above 0.5, scored by that half's brightest red pixel,
as class ``level`` — so a red rectangle painted into a frame must come back where it was painted, through
the right colour conversion, with the label saying which level ran.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from adaptive_csp.engines import available_engines
from adaptive_csp.levels import LevelLadder
from adaptive_csp.runtime import AdaptiveRunner, ContentDemand, Detection, Detections, Preprocessor
from adaptive_csp.runtime.detections import to_frame
from adaptive_csp.runtime.preprocess import HAVE_CV2
from tests.conftest import Fixed
from tests.test_runner import Cycle

H, W = 96, 96
NAMES = ["shirt", "boot"]
BACKENDS = ["cv2", "torch"] if HAVE_CV2 else ["torch"]
ENGINES = [e for e in available_engines() if e in ("torch", "onnxruntime")]


class RedBoxes(nn.Module):
    """One static level: per input half, the box of the red pixels above 0.5, score = the half's max red."""

    def __init__(self, cls: int, k: int = len(NAMES)):
        super().__init__()
        self.register_buffer("xs", torch.arange(W, dtype=torch.float32))
        self.register_buffer("ys", torch.arange(H, dtype=torch.float32))
        self.register_buffer("onehot", torch.eye(k)[cls])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = x[:, 0]  # N×H×W, the model's RGB order
        out = []
        for lo, hi in ((0, W // 2), (W // 2, W)):
            g = red[:, :, lo:hi]
            m = (g > 0.5).float()
            col, row = m.amax(1), m.amax(2)  # N×w, N×H
            xs, ys = self.xs[lo:hi], self.ys
            x1 = (col * xs + (1 - col) * 1e4).amin(1)
            x2 = (col * (xs + 1)).amax(1)
            y1 = (row * ys + (1 - row) * 1e4).amin(1)
            y2 = (row * (ys + 1)).amax(1)
            score = g.amax((1, 2)).clamp(0, 1)
            out.append(torch.cat([torch.stack([x1, y1, x2, y2], 1), score[:, None] * self.onehot], 1))
        return torch.stack(out, 1)  # N×2×(4+K)


class StandIn(nn.Module):
    """The detector contract: ``levels``, ``meta`` (task detect), ``prepared(i)`` / ``export(i)``."""

    def __init__(self):
        super().__init__()
        self.levels = LevelLadder.from_costs([0.5, 1.0])
        self.meta = {"task": "detect", "class_names": NAMES,
                     "preprocess": {"input_size": [H, W], "in_chans": 3, "color": "rgb",
                                    "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}}
        self._prepared = {i: RedBoxes(i).eval() for i in range(len(self.levels))}

    def prepared(self, i: int) -> nn.Module:
        return self._prepared[self.levels.index(i)]

    def export(self, i: int) -> nn.Module:
        return RedBoxes(self.levels.index(i)).eval()

    def invalidate(self) -> None:
        pass


@pytest.fixture(scope="module")
def model():
    return StandIn()


@pytest.fixture(params=ENGINES)
def run_with(request, tmp_path_factory):
    engine = request.param
    opts = {"cache": tmp_path_factory.mktemp("onnx"), "threads": 1} if engine == "onnxruntime" else None

    def make(*args, **kw):
        return AdaptiveRunner(*args, engine=engine, engine_options=opts, **kw)

    return make


def paint(frame: np.ndarray, box: tuple[int, int, int, int], value) -> np.ndarray:
    x1, y1, x2, y2 = box
    frame[y1:y2, x1:x2] = value
    return frame


RED_BGR, RED_BGRA = (0, 0, 255), (0, 0, 255, 7)


def frames_with_known_boxes() -> dict[str, tuple[object, list[list[float]], float]]:
    """name → (frame, expected boxes in frame pixels (left half first), tolerance in frame pixels).

    The expected boxes are worked out by hand from the resize rule (the default ``stretch``: the whole
    frame becomes the input, x scale W/96, y scale H/96; a smaller frame is stretched bilinearly): they do
    not come from the code under test.  Boxes are painted on whole input pixels, so they come back exactly."""
    out = {}
    f = paint(np.zeros((96, 96, 3), np.uint8), (10, 20, 30, 50), RED_BGR)
    out["bgr_96x96"] = (f, [[10, 20, 30, 50]], 0.0)
    # 640×480: scales 20/3 (x), 5 (y).  Input boxes [0,20,6,50] (at the frame's left edge, which the old
    # integer-factor crop threw away) and [60,5,87,15] → frame x 20/3·x, y 5·y.
    f = np.zeros((480, 640, 3), np.uint8)
    paint(f, (0, 100, 40, 250), RED_BGR)
    paint(f, (400, 25, 580, 75), RED_BGR)
    out["bgr_640x480"] = (f, [[0, 100, 40, 250], [400, 25, 580, 75]], 1e-4)
    # 200×300 BGRA: scales 25/8 (x), 25/12 (y).  Input box [48,24,72,36] → frame [150,50,225,75].
    f = paint(np.zeros((200, 300, 4), np.uint8), (150, 50, 225, 75), RED_BGRA)
    out["bgra_300x200"] = (f, [[150, 50, 225, 75]], 1e-4)
    # grey 50×70 (H×W): upscaled, x scale 70/96, y scale 50/96; a 0.5 threshold on the bilinear image puts
    # each edge within one input pixel of the painted one.
    f = paint(np.zeros((50, 70), np.uint8), (10, 10, 25, 30), 255)
    out["grey_70x50"] = (f, [[10, 10, 25, 30]], 70 / 96)
    # RGB float tensor 3×192×288: factors 3 / 2, no crop.  Input box [60,10,80,40] → x 3·x, y 2·y.
    t = torch.zeros(3, 192, 288)
    t[0, 20:80, 180:240] = 1.0
    out["rgb_float_tensor"] = (t, [[180, 20, 240, 80]], 0.0)
    return out


KNOWN = frames_with_known_boxes()


@pytest.mark.parametrize("name", list(KNOWN))
def test_boxes_in_frame_coordinates(run_with, model, name):
    frame, expect, tol = KNOWN[name]
    with run_with(model, policy=Fixed(1), sensors=None) as r:
        d = r.infer(frame)
    assert isinstance(d, Detections)
    assert len(d) == len(expect) and d.level == 1 and d.reason == "fixed" and d.latency_ms > 0
    order = np.argsort(d.boxes[:, 0])
    np.testing.assert_allclose(d.boxes[order], np.asarray(expect, np.float32), atol=tol + 1e-4)
    assert d.boxes.dtype == np.float32 and d.scores.dtype == np.float32 and d.labels.dtype == np.int64
    assert d.labels.tolist() == [1] * len(expect) and d.class_names == ["boot"] * len(expect)
    assert np.all(d.scores > 0.5) and not d.boxes.flags.writeable
    items = list(d)
    assert all(isinstance(it, Detection) for it in items)
    assert items[0].box == tuple(d.boxes[0].tolist()) and items[0].class_name == "boot"


def test_colour_order_matters(model):
    """A red rectangle is red only when read in the right order: as RGB, the BGR frame's red sits in blue."""
    frame = KNOWN["bgr_96x96"][0]
    with AdaptiveRunner(model, policy=Fixed(0), sensors=None, engine="torch", color="rgb") as r:
        assert len(r.infer(frame)) == 0
    with AdaptiveRunner(model, policy=Fixed(0), sensors=None, engine="torch") as r:
        d = r.infer(frame)
    assert len(d) == 1 and d.labels.tolist() == [0] and d.class_names == ["shirt"]


def test_batch_of_mixed_sizes(run_with, model):
    names = ["bgr_96x96", "bgr_640x480", "grey_70x50", "rgb_float_tensor", "bgra_300x200"]
    with run_with(model, policy=Fixed(0), sensors=None) as r:
        single = [r.infer(KNOWN[n][0]) for n in names]
        batch = r.infer([KNOWN[n][0] for n in names])
        stats = r.stats()
    assert isinstance(batch, list) and len(batch) == len(names)
    for a, b in zip(single, batch, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    assert stats["frames"] == 2 * len(names) and stats["calls"] == len(names) + 1
    same = np.stack([KNOWN["bgr_640x480"][0]] * 3)  # an N×H×W×C array: one geometry for all
    with run_with(model, policy=Fixed(0), sensors=None) as r:
        ds = r.infer(same)
    assert len(ds) == 3 and all(np.array_equal(x.boxes, ds[0].boxes) for x in ds)
    np.testing.assert_allclose(ds[0].boxes[np.argsort(ds[0].boxes[:, 0])], KNOWN["bgr_640x480"][1], atol=1e-4)


def test_empty_frame_and_thresholds(model):
    frame = np.zeros((480, 640, 3), np.uint8)
    paint(frame, (92, 100, 212, 250), (0, 0, 150))  # red 150/255 = 0.59: one weak detection
    with AdaptiveRunner(model, policy=Fixed(1), sensors=None, engine="torch") as r:
        assert len(r.infer(np.zeros((480, 640, 3), np.uint8))) == 0
        d = r.infer(frame)
    assert len(d) == 1 and d.scores[0] == pytest.approx(150 / 255, abs=1e-6)
    with AdaptiveRunner(model, policy=Fixed(1), sensors=None, engine="torch", score_thresh=0.7) as r:
        assert len(r.infer(frame)) == 0
    with AdaptiveRunner(model, policy=Fixed(1), sensors=None, engine="torch", max_det=1) as r:
        assert len(r.infer(KNOWN["bgr_640x480"][0])) == 1
    for bad in ({"score_thresh": 1.5}, {"score_thresh": "x"}, {"iou_thresh": 0.0}, {"max_det": 0},
                {"max_det": 2.5}, {"max_det": True}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            AdaptiveRunner(model, sensors=None, engine="torch", **bad)


def test_bad_frame_raises_and_the_loop_goes_on(run_with, model, caplog):
    good = KNOWN["bgr_640x480"][0]
    with caplog.at_level(logging.INFO), run_with(model, policy=Fixed(1), sensors=None) as r:
        for bad in (np.zeros((10, 10, 5), np.uint8), np.full((8, 8), np.nan, np.float32), "frame"):
            with pytest.raises(ValueError):
                r.infer(bad)
        assert len(r.infer(good)) == 2
        out = list(r.stream([good, np.zeros((4, 4, 2), np.uint8), KNOWN["grey_70x50"][0]]))
        stats = r.stats()
    assert [d.frame_index for d in out] == [0, 2] and all(isinstance(d, Detections) for d in out)
    assert [len(d) for d in out] == [2, 1]
    assert stats["bad_frames"] == 4 and stats["calls"] == 3


def test_policy_levels_reach_labels_telemetry_and_confidence(run_with, model):
    pol = Cycle()
    with run_with(model, policy=pol, sensors=None, policy_tick_ms=0) as r:
        ds = [r.infer(KNOWN["bgr_640x480"][0]) for _ in range(4)]
        empty = r.infer(np.zeros((480, 640, 3), np.uint8))
        r.infer(KNOWN["bgr_96x96"][0])
        stats, rows = r.stats(), r.telemetry.rows()
    assert [d.level for d in ds] == [0, 1, 0, 1]
    assert [d.labels.tolist() for d in ds] == [[0, 0], [1, 1], [0, 0], [1, 1]]
    assert [d.class_names[0] for d in ds] == ["shirt", "boot", "shirt", "boot"]
    assert stats["per_level"] == {0: 3, 1: 3} and [row["level"] for row in rows] == [0, 1, 0, 1, 0, 1]
    assert [row["detections"] for row in rows[:5]] == [len(d) for d in ds] + [0]  # count and mean score
    assert rows[0]["score"] == pytest.approx(float(ds[0].scores.mean())) and rows[4]["score"] is None
    assert rows[0]["class"] is None
    assert pol.seen[0].confidence is None
    assert pol.seen[1].confidence == pytest.approx(float(ds[0].scores.mean()))  # mean detection score
    assert len(empty) == 0 and pol.seen[5].confidence == 1.0  # nothing detected: nothing uncertain


def test_content_demand_uses_detections(model):
    two = KNOWN["bgr_640x480"][0]
    one = KNOWN["bgr_96x96"][0]
    content = ContentDemand(crowd=2, steady_frames=2, empty_frames=3, hold_frames=1)
    with AdaptiveRunner(model, policy=Fixed(1), sensors=None, engine="torch", content=content) as r:
        levels = [r.infer(one).level for _ in range(6)]
        assert levels[-1] == 0 and content.why == "content: steady, confident"
        r.infer(two)  # scene change → full, and crowded (2 detections) → full, held
        assert content.demand == 1 and content.why == "content: crowded scene (2 detections)"
        assert r.infer(two).level == 1
        blank = np.zeros((480, 640, 3), np.uint8)
        blank[::2] = 60  # textured, empty belt: not an "empty scene" by pixel spread
        seen = [(r.infer(blank).level, content.demand) for _ in range(6)]
    assert seen[-1] == (0, 0) and "nothing detected" in content.why
    assert r.stats()["content_demand"] == 0


def test_content_detection_rules():
    c = ContentDemand(crowd=3, empty_frames=2, hold_frames=0, steady_frames=2)
    c.bind(4, [1.0])
    c.result_detections(3, 0.95, 4)
    assert c.demand == 4 and "crowded" in c.why
    c.demand = 1
    c.result_detections(1, 0.4, 1)  # uncertain: up by up_step
    assert c.demand == 3 and "low confidence" in c.why
    c.result_detections(0, 1.0, 3)
    assert c.demand == 3
    c.result_detections(0, 1.0, 3)
    assert c.demand == 0 and c.why == "content: nothing detected for 2 frames"
    for bad in ({"crowd": 0}, {"empty_frames": -1}, {"crowd": 2.5}):
        with pytest.raises(ValueError):
            ContentDemand(**bad)


# geometry ------------------------------------------------------------------------------------------------

SIZES = [(96, 96), (480, 640), (100, 150), (200, 300), (97, 200), (50, 70), (60, 200), (300, 40)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hw", SIZES)
def test_geometry_follows_a_bright_dot(backend, hw):
    fh, fw = hw
    pre = Preprocessor({"input_size": [H, W], "in_chans": 1, "color": "grey"}, backend=backend)
    ox, oy, sx, sy = pre.geometry(fh, fw)
    for u, v in ((17, 40), (0, 0), (W - 1, H - 1), (70, 5)):
        frame = np.zeros((fh, fw), np.uint8)
        if sx == int(sx) >= 1 and sy == int(sy) >= 1:  # integer factors: the block that becomes pixel (u, v)
            x0, y0 = ox + sx * u, oy + sy * v
            frame[int(y0):int(y0 + sy), int(x0):int(x0 + sx)] = 255
            x = pre.array(frame)[0][0, 0]
            assert x[v, u] == pytest.approx(1.0) and np.count_nonzero(x) == 1
        elif 0 < u < W - 1 and 0 < v < H - 1:  # other factors (area / bilinear; interior only):
            X = int(ox + sx * (u + 0.5))  # the frame pixel under input pixel (u, v)'s centre
            Y = int(oy + sy * (v + 0.5))
            frame[Y, X] = 255
            x = pre.array(frame)[0][0, 0]
            peak_v, peak_u = np.unravel_index(np.argmax(x), x.shape)
            # the peak is the input pixel whose centre is nearest the frame pixel's centre
            assert abs(peak_u - ((X + 0.5 - ox) / sx - 0.5)) <= 0.5 + 1e-6
            assert abs(peak_v - ((Y + 0.5 - oy) / sy - 0.5)) <= 0.5 + 1e-6


def test_geometry_values_and_sizes():
    pre = Preprocessor({"input_size": [H, W], "in_chans": 3, "color": "rgb"})
    assert pre.geometry(480, 640) == (0.0, 0.0, 640 / 96, 5.0)  # stretch: the whole frame
    assert pre.geometry(96, 96) == (0.0, 0.0, 1.0, 1.0)
    assert pre.geometry(50, 200) == (0.0, 0.0, 200 / 96, 50 / 96)  # one side smaller: stretched, uncropped
    box = Preprocessor({"input_size": [H, W], "in_chans": 3, "color": "rgb"}, resize="letterbox")
    assert box.geometry(480, 640) == pytest.approx((0.0, -80.0, 20 / 3, 20 / 3))  # content 72×96 at row 12
    crop = Preprocessor({"input_size": [H, W], "in_chans": 3, "color": "rgb"}, resize="center_crop")
    assert crop.geometry(480, 640) == (80.0, 0.0, 5.0, 5.0)  # the central 480×480
    for bad in ((0, 10), (10, -1), (True, 5)):
        with pytest.raises(ValueError, match="frame size"):
            pre.geometry(*bad)
    frames = [np.zeros((50, 70), np.uint8), torch.zeros(3, 20, 30), np.zeros((4, 5, 3))]
    assert pre.sizes(frames) == [(50, 70), (20, 30), (4, 5)]
    assert pre.sizes(np.zeros((2, 7, 9, 3))) == [(7, 9), (7, 9)]
    assert pre.sizes(torch.zeros(2, 3, 7, 9)) == [(7, 9), (7, 9)]
    assert pre.sizes(torch.zeros(3, 7, 9)) == [(7, 9)]
    boxes = np.array([[-3.0, 10.0, 100.0, 20.0]], np.float32)  # input pixels, partly outside the input
    np.testing.assert_allclose(to_frame(boxes, crop.geometry(480, 640), 480, 640), [[65, 50, 580, 100]])
    np.testing.assert_allclose(to_frame(boxes, pre.geometry(480, 640), 480, 640), [[0, 50, 640, 100]])  # clipped
    np.testing.assert_array_equal(to_frame(boxes, (0.0, 0.0, 1.0, 1.0), 96, 96), [[0, 10, 96, 20]])  # clipped


def test_engines_agree(model, tmp_path):
    if "onnxruntime" not in ENGINES:
        pytest.skip("onnxruntime not installed")
    frames = [KNOWN[n][0] for n in KNOWN]
    res = {}
    for engine in ENGINES:
        opts = {"cache": tmp_path, "threads": 1} if engine == "onnxruntime" else None
        with AdaptiveRunner(model, policy=Fixed(1), sensors=None, engine=engine, engine_options=opts) as r:
            res[engine] = r.infer(frames)
    for a, b in zip(res["torch"], res["onnxruntime"], strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
        assert a.labels.tolist() == b.labels.tolist()


def test_export_names_the_detector_output(model, tmp_path):
    pytest.importorskip("onnxruntime")
    import json

    import onnxruntime as ort

    from adaptive_csp.engines.export import export_levels

    side = export_levels(model, tmp_path, [1], formats=("onnx",))[0]
    meta = json.loads(side.read_text())
    assert meta["task"] == "detect" and meta["output"]["name"] == "detections"
    assert meta["output"]["shape"] == ["batch", "anchors", "4+classes"]
    s = ort.InferenceSession(str(tmp_path / meta["files"]["onnx"]), providers=["CPUExecutionProvider"])
    assert [o.name for o in s.get_outputs()] == ["detections"]
    y = s.run(None, {"input": np.zeros((3, 3, H, W), np.float32)})[0]
    assert y.shape == (3, 2, 4 + len(NAMES))  # dynamic batch


# a real (tiny, untrained) detector ----------------------------------------------------------------------

def make_tiny_detector(num_classes: int = 3, names: list[str] | None = None) -> nn.Module:
    """``csp_det_tiny`` (32 px input) with a two-rung ladder given explicitly (counting MACs for the default
    ladder takes long on a busy CPU), random BN and random class / centerness outputs so scores spread (an
    untrained head scores every anchor alike, which would leave NMS to break ties)."""
    from adaptive_csp.detect.model import Detector, get_detector_cfg
    from adaptive_csp.levels import Level
    from tests.conftest import randomize_bn

    cfg = get_detector_cfg("csp_det_tiny", num_classes=num_classes)
    ladder = LevelLadder([Level([(cfg.split_ratio, 0)] * len(cfg.depths), cfg.widths[0]),
                          Level([(cfg.split_ratio, d) for d in cfg.depths])])
    torch.manual_seed(0)
    m = randomize_bn(Detector(cfg, ladder=ladder)).eval()
    with torch.no_grad():
        for name, p in m.head.named_parameters():
            if ".cls." in name or ".ctr." in name:
                p.normal_(0.0, 1.0)
    m.meta.update(class_names=names or ["tee", "bag", "boot"][:num_classes],
                  preprocess={"input_size": [32, 32], "in_chans": 3, "color": "rgb", "mean": [0.5] * 3,
                              "std": [0.25] * 3})
    return m


@pytest.fixture(scope="module")
def tiny_detector():
    return make_tiny_detector()


def test_tiny_real_detector_through_the_runner(tiny_detector, tmp_path):
    """Detections = the engine's own output through postprocess, boxes scaled by hand into each frame.

    An untrained detector scores many anchors within 1e-7 of each other, so NMS's tie order follows the
    last bits of the numbers: each reference comes from the same engine on the same batch, and the
    engines are compared on their raw outputs."""
    from adaptive_csp.detect.boxes import postprocess

    m = tiny_detector
    frame = np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)  # BGR, factors 3 (x), 2 (y)
    small = frame[:32, :32]  # the input size: factors 1
    pre = Preprocessor(m.meta["preprocess"])
    x1, x2 = pre.array(frame)[0], pre.array([frame, small])[0]
    from adaptive_csp.engines import have_cuda
    from tests.test_engines import FakeGraph

    # the cuda engine: captured graphs (static N×A×(4+K) output buffers) on a GPU, else the same code on the
    # CPU with graphs replayed eagerly
    cuda = ({}, "cuda") if have_cuda() else ({"graph_factory": FakeGraph}, "cpu")
    raw = {}
    for engine, levels, opts, device in (("torch", (0, 1), None, None),
                                         ("onnxruntime", (1,), {"cache": tmp_path, "threads": 1}, None),
                                         ("cuda", (0, 1), *cuda)):
        if engine == "onnxruntime" and engine not in ENGINES:
            continue
        for lv in levels:
            with AdaptiveRunner(m, policy=Fixed(lv), sensors=None, engine=engine, engine_options=opts,
                                device=device, prepare=False, score_thresh=0.3) as r:
                got = [r.infer(frame), *r.infer([frame, small])]
                raw[engine, lv] = r.engine.run(x1, lv)
                outs = [*postprocess(raw[engine, lv], 0.3), *postprocess(r.engine.run(x2, lv), 0.3)]
            for d, (b, s, lb), (fw, fh) in zip(got, outs, ((96, 64), (96, 64), (32, 32)), strict=True):
                k = np.array([fw / 32, fh / 32] * 2, np.float32)
                ref = (b.numpy() * k).clip(0, [fw, fh, fw, fh])
                assert d.level == lv and len(d) == len(ref) > 0
                np.testing.assert_allclose(d.boxes, ref, atol=1e-4)
                np.testing.assert_allclose(d.scores, s.numpy(), atol=1e-6)
                assert d.labels.tolist() == lb.tolist()
                assert d.class_names == [m.meta["class_names"][i] for i in lb.tolist()]
    if ("onnxruntime", 1) in raw:
        np.testing.assert_allclose(raw["torch", 1], raw["onnxruntime", 1], atol=1e-4)
    for lv in (0, 1):
        np.testing.assert_allclose(raw["torch", lv], raw["cuda", lv], atol=1e-3)


def test_export_cli_takes_a_detector_checkpoint(tmp_path, capsys):
    import json

    from adaptive_csp.cli import main
    from adaptive_csp.detect import save_detector

    save_detector(make_tiny_detector(), tmp_path / "det")
    assert main(["export", "--model", str(tmp_path / "det"), "--out", str(tmp_path / "x"), "--level", "-1",
                 "--format", "torchscript"]) == 0
    meta = json.loads((tmp_path / "x" / "level01.json").read_text())
    assert meta["task"] == "detect" and meta["output"]["name"] == "detections"
    assert meta["class_names"] == ["tee", "bag", "boot"] and meta["levels"] == 2
    traced = torch.jit.load(str(tmp_path / "x" / "level01.pt"))
    assert traced(torch.zeros(2, 3, 32, 32)).shape[::2] == (2, 4 + 3)
    capsys.readouterr()
