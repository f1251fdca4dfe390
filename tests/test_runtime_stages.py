"""The runner as stages: options objects and their flat keywords, one head interface, the preprocess stage's
geometry, per-stage times on results, in stats and in telemetry exports, and the old import paths."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from adaptive_csp.runtime import (
    AdaptiveRunner,
    ClassifyHead,
    DecideOptions,
    DetectHead,
    DetectOptions,
    PreprocessOptions,
    TelemetryOptions,
)
from adaptive_csp.runtime.heads import Head, make_head
from adaptive_csp.runtime.preprocess import FrameGeometry, Preprocessor
from adaptive_csp.runtime.results import STAGES, Prediction, prediction
from adaptive_csp.runtime.runner import FLAT_KEYWORDS, runner_options
from tests.conftest import Fixed

SPEC = {"input_size": [28, 28], "in_chans": 1, "color": "grey", "mean": [0.5], "std": [0.25]}


def test_every_flat_keyword_is_a_field_of_its_options_object():
    owners = {"preprocess": PreprocessOptions, "decide": DecideOptions, "detect": DetectOptions,
              "telemetry": TelemetryOptions}
    for kw, (group, field) in FLAT_KEYWORDS.items():
        assert field in {f.name for f in dataclasses.fields(owners[group])}, kw


def test_flat_keywords_land_on_the_objects_and_override_them():
    pre, dec, det, tel = runner_options(color="rgb", resize="letterbox", policy_tick_ms=0, content=True,
                                        score_thresh=0.5, max_det=7, telemetry_size=8, deadline_ms=20.0)
    assert (pre.color, pre.resize, pre.spec) == ("rgb", "letterbox", None)
    assert (dec.policy_tick_ms, dec.content, dec.deadline_ms) == (0, True, 20.0)
    assert (det.score_thresh, det.max_det, tel.size, tel.file) == (0.5, 7, 8, None)
    pre, dec, _, tel = runner_options({"resize": "center_crop"}, DecideOptions(latency_window=5), None,
                                      "run.jsonl", None, latency_window=9)
    assert pre.spec == {"resize": "center_crop"} and dec.latency_window == 9 and tel.file == "run.jsonl"
    pre, *_ = runner_options(PreprocessOptions(color="rgb", pad=3.0), pad=5.0)
    assert (pre.color, pre.pad) == ("rgb", 5.0)


def test_options_keep_the_validation_errors():
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        runner_options(colour="rgb")
    with pytest.raises(ValueError, match="deadline_ms must be > 0"):
        runner_options(deadline_ms=0)
    with pytest.raises(ValueError, match="policy_tick_ms must be >= 0"):
        DecideOptions(policy_tick_ms=-1)
    with pytest.raises(ValueError, match="telemetry capacity must be >= 1"):
        runner_options(telemetry_size=0)
    with pytest.raises(ValueError, match="score_thresh"):
        make_head({}, None, [], DetectOptions(score_thresh=2.0))  # validated for a classifier too


def test_one_head_interface_for_both_tasks():
    levels = ["a", "b"]
    cls, det = make_head({}, ["x", "y"], levels), make_head({"task": "detect"}, ["x"], levels)
    assert isinstance(cls, ClassifyHead) and isinstance(det, DetectHead)
    assert isinstance(cls, Head) and isinstance(det, Head)
    assert not cls.needs_geometry and det.needs_geometry
    logits = np.array([[0.0, 2.0], [3.0, 1.0]], np.float32)
    payload, batch, conf, count, summary = cls.decode(logits, None, 1, False)
    assert batch == 2 and count is None and summary[0] == "cls" and summary[1] == [1, 0]
    assert conf == pytest.approx(min(summary[2]))
    out = cls.results(payload, True, 1, 2.5, "why", (0.0, 1.0, 2.0, 3.0, 4.0))
    assert [p.class_name for p in out] == ["y", "x"] and out[0].speed == dict.fromkeys(STAGES, 1000.0)


def test_the_fast_prediction_equals_the_dataclass():
    probs = np.zeros(3, np.float32)
    want = Prediction(1, "b", 0.5, probs, 2, 1.5, "r", None, (1.0, 2.0, 3.0, 4.0, 5.0))
    got = prediction(1, "b", 0.5, probs, 2, 1.5, "r", (1.0, 2.0, 3.0, 4.0, 5.0))
    assert got == want and type(got) is Prediction
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.label = 3  # still frozen


def test_prepare_returns_the_input_with_each_frames_geometry():
    pre = PreprocessOptions(resize="letterbox").build({"preprocess": SPEC})
    frames = [np.zeros((56, 112), np.uint8), np.zeros((30, 20), np.uint8)]
    x, batched, on_frame_path, geometry = pre.prepare(frames, frame_path=True)
    assert x.shape == (2, 1, 28, 28) and batched and not on_frame_path and geometry is None  # lists: float path
    pre.with_geometry = True
    x, batched, on_frame_path, geometry = pre.prepare(frames[0], frame_path=True)
    assert x.shape == (1, 28, 28, 1) and not batched and on_frame_path  # resized only, channel-last: the graph does the rest
    assert geometry == [FrameGeometry(56, 112, *pre.geometry(56, 112))]
    _, _, _, geometry = pre.prepare(frames)
    assert [g.mapping for g in geometry] == [pre.geometry(56, 112), pre.geometry(30, 20)]
    assert isinstance(pre, Preprocessor)


@pytest.fixture(scope="module")
def model():
    from adaptive_csp.models.pretrained import pretrained

    return pretrained()


def test_results_stats_and_exports_carry_the_stage_times(model, tmp_path):
    frame = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    with AdaptiveRunner(model, policy=Fixed(0), sensors=None, engine="torch",
                        decide=DecideOptions(policy_tick_ms=0), telemetry=TelemetryOptions(size=4)) as r:
        preds = [r.infer(frame) for _ in range(3)] + r.infer([frame, frame])
        s = r.stats()
        rows = [json.loads(line) for line in r.export_jsonl(tmp_path / "t.jsonl").read_text().splitlines()]
    for p in preds:
        assert list(p.speed) == list(STAGES) and all(v >= 0 for v in p.speed.values())
        assert sum(p.speed.values()) == pytest.approx(p.latency_ms, rel=1e-6)
    assert preds[-1].times == preds[-2].times  # a batch's results share the call's stamps
    assert s["window"] == 4 and set(s["speed_ms"]) == set(STAGES)
    assert all(rows[-1][f"{st}_ms"] == pytest.approx(preds[-1].speed[st]) for st in STAGES)


def test_the_options_objects_mean_what_the_flat_keywords_mean(model):
    frame = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    flat = AdaptiveRunner(model, policy=Fixed(0), sensors=None, engine="torch", resize="letterbox", color="rgb",
                          policy_tick_ms=0, latency_window=3)
    objs = AdaptiveRunner(model, policy=Fixed(0), sensors=None, engine="torch",
                          preprocess=PreprocessOptions(resize="letterbox", color="rgb"),
                          decide=DecideOptions(policy_tick_ms=0, latency_window=3))
    with flat, objs:
        a, b = flat.infer(frame), objs.infer(frame)
        np.testing.assert_array_equal(a.probs, b.probs)
        assert flat.pre.resize == objs.pre.resize == "letterbox" and flat.pre.color == objs.pre.color == "rgb"
        assert flat.decider.latencies.maxlen == objs.decider.latencies.maxlen == 3


def test_the_old_import_paths_still_work():
    from adaptive_csp.runtime import detections, heads, results
    from adaptive_csp.runtime.runner import Detections, Prediction

    assert detections.Detections is results.Detections is Detections and Prediction is results.Prediction
    assert detections.DetectionDecoder is heads.DetectionDecoder and detections.to_frame is heads.to_frame
    assert detections.POSTPROCESS_DEFAULTS is heads.POSTPROCESS_DEFAULTS
    assert detections.Detection is results.Detection
