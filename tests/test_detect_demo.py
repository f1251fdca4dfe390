"""``adaptive-csp demo --task detect``: the scene belt, the detection judge, the CLI end to end with a tiny
untrained detector (boxes drawn into a video and a strip), and the message when no detector is shipped."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive_csp.apps.detect_demo import HUD_H, DetArm, DetFrame, SceneBelt, draw, label_layout, match
from adaptive_csp.cli import main
from adaptive_csp.runtime import Detections

cv2 = pytest.importorskip("cv2")


def test_scene_belt_frames_match_the_scenes():
    belt = SceneBelt(size=48, zoom=2, seed=3, noise=2.0, dwell=(3, 3), gap=(1, 2))
    frames = list(belt.frames(20))
    assert all(isinstance(f, DetFrame) and f.image.shape == (96, 96, 3) and f.image.dtype == np.uint8
               for f in frames)
    dwell = [f for f in frames if f.phase == "dwell"]
    assert dwell and all(f.scored and len(f.boxes) >= 2 for f in dwell)
    assert all(not f.scored and len(f.boxes) == 0 for f in frames if f.phase == "gap")
    assert belt.scored_items == sum(len(f.boxes) for f in dwell)
    first = dwell[0]
    image, boxes, labels = belt.scenes[first.item]
    np.testing.assert_array_equal(first.boxes, boxes.numpy() * 2)
    assert first.labels.tolist() == labels.tolist()
    want = np.repeat(np.repeat(image.permute(1, 2, 0).numpy()[:, :, ::-1], 2, 0), 2, 1).astype(int)
    err = np.abs(first.image.astype(int) - want)
    assert err.mean() < 3 and err.max() <= 12  # the scene, zoomed, as BGR, plus sensor noise
    again = list(SceneBelt(size=48, zoom=2, seed=3, noise=2.0, dwell=(3, 3), gap=(1, 2)).frames(20))
    assert all(np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes) for a, b in zip(frames, again))
    idle = list(SceneBelt(size=48, seed=3).frames(5, busy=lambda i: i >= 3))
    assert [f.phase for f in idle[:3]] == ["idle"] * 3 and not any(f.scored for f in idle[:3])


def _dets(boxes, labels, scores=None):
    k = len(labels)
    scores = np.linspace(0.9, 0.5, k) if scores is None else scores
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                      np.asarray(labels, np.int64), [str(x) for x in labels], 0, 1.0, "test")


def test_match_counts_hits_false_alarms_and_misses():
    truth = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32)
    lab = np.array([1, 2])
    assert match(_dets(truth, [1, 2]), truth, lab) == (2, 0, 0)
    assert match(_dets(truth, [2, 1]), truth, lab) == (0, 2, 2)  # right places, wrong classes
    assert match(_dets([[5, 0, 15, 10]], [1]), truth, lab) == (0, 1, 2)  # IoU 1/3 < 0.5
    assert match(_dets([[1, 0, 11, 10]], [1]), truth, lab) == (1, 0, 1)  # IoU 9/11
    assert match(_dets([truth[0], truth[0] + 1], [1, 1]), truth, lab) == (1, 1, 1)  # a duplicate is a false alarm
    assert match(_dets(np.zeros((0, 4)), []), truth, lab) == (0, 0, 2)
    assert match(_dets(truth, [1, 2]), np.zeros((0, 4)), np.zeros(0)) == (0, 2, 0)


def test_det_arm_judges_scene_frames_only():
    arm = DetArm("adaptive", None, None)
    truth, lab = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32), np.array([1, 2])
    scene = DetFrame(np.zeros((40, 40, 3), np.uint8), truth, lab, True, 0, "dwell")
    bare = DetFrame(np.zeros((40, 40, 3), np.uint8), truth[:0], lab[:0], False, 0, "gap")
    assert arm.judge(scene, _dets(truth, [1, 2])) == (2, True)
    assert arm.judge(scene, _dets(truth[:1], [1])) == (1, False)  # one item missed
    assert arm.judge(scene, _dets([*truth, [50, 50, 60, 60]], [1, 2, 3])) == (3, False)  # a false alarm
    assert arm.judge(bare, _dets(truth, [1, 2])) == (2, False)  # not scored: not counted
    assert (arm.tp, arm.fp, arm.fn, arm.detections) == (5, 1, 1, 8)
    assert (arm.frames_judged, arm.frames_right) == (3, 1)
    assert arm.last[0] is bare and len(arm.latencies) == 4


def test_draw_keeps_labels_apart_and_the_hud_off_the_frame():
    image = np.full((120, 160, 3), 40, np.uint8)
    boxes = [[2, 0, 60, 50], [4, 1, 62, 52], [3, 2, 58, 49], [90, 60, 150, 118]]  # three piled at the top edge
    d = _dets(boxes, [0, 0, 0, 1], np.array([0.9, 0.8, 0.7, 0.6]))
    tags = label_layout(d, 160, 120)
    assert len(tags) == 4
    for i, (x, y, w, h, _) in enumerate(tags):
        assert 0 <= x and x + w <= 160 and 0 <= y and y + h <= 120  # inside the frame
        for (x2, y2, w2, h2, _) in tags[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y  # no two labels overlap
    out = draw(image, d, "hud text")
    assert out.shape == (120 + HUD_H, 160, 3)
    band = out[:HUD_H].astype(int)
    assert np.all(band[..., 0] == band[..., 2]) and np.all(band[..., 1] == band[..., 2])  # grey text only
    assert not np.array_equal(out[HUD_H:], image)  # the boxes and tags are on the frame itself


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from adaptive_csp.data.fashion_mnist import CLASS_NAMES
    from adaptive_csp.detect import save_detector
    from tests.test_runner_detect import make_tiny_detector

    path = tmp_path_factory.mktemp("det") / "tiny"
    save_detector(make_tiny_detector(len(CLASS_NAMES), list(CLASS_NAMES)), path)
    return path


def test_demo_detect_draws_boxes(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--task", "detect", "--model", str(tiny_checkpoint), "--frames", "12", "--engine", "torch",
               "--out", str(out), "--quiet", "--telemetry", str(tmp_path / "t.jsonl")])
    text = capsys.readouterr().out
    assert rc == 0
    assert "adaptive: levels used " in text and "static-max: levels used 1 of 2 (L1 100%)" in text
    assert "detections on 12 frames" in text and "less energy" in text
    assert "frames fully right" in text and "items right (found with their class)" in text
    strip = cv2.imread(str(out / "strip.png"))
    assert strip is not None and strip.shape[0] == 96 + HUD_H  # 32 px detector, camera zoom 3, the HUD band above
    cap = cv2.VideoCapture(str(out / "detections.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 12
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 12


def test_demo_detect_without_a_detector_says_what_to_do(tmp_path, capsys, monkeypatch):
    import adaptive_csp.models.pretrained as ckpt

    monkeypatch.setattr(ckpt, "ASSETS", tmp_path)  # an install without a shipped detector
    assert main(["demo", "--task", "detect", "--frames", "4", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no shipped detector" in err and "--model" in err and "train-detector" in err
    assert main(["demo", "--task", "detect", "--source", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--source is not supported with --task detect" in capsys.readouterr().err
