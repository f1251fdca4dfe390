"""The demo runs end to end in a short mode, on the simulated belt and on a real video file."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive_csp.cli import main as cli_main
from adaptive_csp.data.fashion_mnist import load_sample
from adaptive_csp.runtime.conveyor import Conveyor
from adaptive_csp.runtime.demo import main
from adaptive_csp.runtime.preprocess import HAVE_CV2


def test_demo_short_mode(tmp_path, capsys):
    png = tmp_path / "out" / "demo.png"
    tel = tmp_path / "tel.jsonl"
    assert cli_main(["demo", "--frames", "50", "--plot", str(png), "--telemetry", str(tel), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "demo summary: policy balanced, 50 frames" in out
    assert "accuracy on items under the camera" in out and "battery 100.0% ->" in out
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(tel.read_text().splitlines()) == 50


def test_demo_other_policy_no_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--frames", "20", "--policy", "battery", "--no-plot", "--no-content"]) == 0
    assert "policy battery, 20 frames" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())
    assert main(["--frames", "5", "--policy", "no-such-policy", "--no-plot"]) == 2


@pytest.mark.skipif(not HAVE_CV2, reason="needs opencv")
def test_demo_on_a_video_file(tmp_path, capsys):
    import cv2

    path = tmp_path / "belt.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (140, 140))
    for fr in Conveyor(load_sample().images.numpy()[:20], load_sample().labels.numpy()[:20]).frames(15):
        w.write(fr.image)
    w.release()
    png = tmp_path / "video.png"
    assert main(["--video", str(path), "--plot", str(png), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "15 frames" in out and png.exists()
    assert main(["--video", str(tmp_path / "missing.mp4"), "--no-plot"]) == 2


def test_conveyor_frames_and_truth():
    s = load_sample()
    belt = Conveyor(s.images.numpy()[:50], s.labels.numpy()[:50], seed=3)
    frames = list(belt.frames(120))
    assert len(frames) == 120
    assert all(f.image.shape == (140, 140, 3) and f.image.dtype == np.uint8 for f in frames)
    gaps = [f for f in frames if f.phase == "gap"]
    dwell = [f for f in frames if f.scored]
    assert gaps and dwell and all(f.label is None for f in gaps)
    assert all(f.phase == "dwell" and f.label == int(s.labels[belt.order[f.item]]) for f in dwell)
    # dark belt, light garment: the resting item is brighter than bare belt
    assert np.mean([f.image.mean() for f in dwell]) > 2 * np.mean([f.image.mean() for f in gaps])
