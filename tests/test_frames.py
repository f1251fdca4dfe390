"""Frames kept in shape: the preprocessing spec merged over the model's and validated, a region of
interest, the recipe in export sidecars, and the aspect handling that training records."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from adaptive_csp.data.images import ImageSet
from adaptive_csp.data.preprocess_spec import PreprocessSpec, describe, merge_spec
from adaptive_csp.runtime import AdaptiveRunner, Preprocessor
from tests.conftest import Fixed
from tests.test_runner_detect import StandIn

SPEC = {"input_size": [28, 28], "in_chans": 1, "color": "grey", "mean": [0.3], "std": [0.4]}


def test_override_is_merged_over_the_models_spec_and_validated():
    merged = merge_spec(SPEC, {"resize": "letterbox"})
    assert merged["mean"] == [0.3] and merged["std"] == [0.4] and merged["resize"] == "letterbox"
    with pytest.raises(ValueError, match="resizee"):
        merge_spec(SPEC, {"resizee": "letterbox"})  # a typo is named, not ignored
    with pytest.raises(ValueError, match="resize"):
        merge_spec(SPEC, {"resize": "fill"})
    with pytest.raises(ValueError, match="roi"):
        merge_spec(SPEC, {"roi": [0, 0, 0, 5]})
    with pytest.raises(ValueError, match="preprocess must be a dict"):
        merge_spec(SPEC, ["letterbox"])


def test_runner_keeps_the_models_mean_and_std_under_an_override():
    model = StandIn()
    with AdaptiveRunner(model, policy=Fixed(0), sensors=None, engine="torch",
                        preprocess={"resize": "letterbox", "pad": 3}) as r:
        assert r.pre.resize == "letterbox" and r.pre.pad == 3.0
        np.testing.assert_array_equal(r.pre.std, [1.0, 1.0, 1.0])  # the model's own, not dropped
    with pytest.raises(ValueError, match="colour"):
        AdaptiveRunner(model, policy=Fixed(0), sensors=None, engine="torch", preprocess={"colour": "rgb"})


def test_roi_is_what_the_model_sees_and_boxes_map_back_through_it():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320), np.uint8)
    x, y, w, h = 200, 40, 84, 84
    with_roi = Preprocessor(SPEC, roi=(x, y, w, h)).array(frame)[0]
    alone = Preprocessor(SPEC).array(np.ascontiguousarray(frame[y:y + h, x:x + w]))[0]
    np.testing.assert_allclose(with_roi, alone, atol=1e-5)
    assert Preprocessor(SPEC, roi=(x, y, w, h)).geometry(240, 320) == (200.0, 40.0, 3.0, 3.0)
    clipped = Preprocessor(SPEC, roi=(300, 200, 100, 100))  # past the frame's edge: clipped to it
    assert clipped.geometry(240, 320) == (300.0, 200.0, 20 / 28, 40 / 28)
    with pytest.raises(ValueError, match="outside"):
        clipped.array(np.zeros((100, 100), np.uint8))
    # a detector's boxes come back in frame pixels: the stand-in finds the red square inside the roi
    big = np.zeros((300, 400, 3), np.uint8)
    big[130:160, 210:240] = (0, 0, 255)  # in the roi (200, 100, 96, 96), left half of the input
    big[10:40, 10:40] = (0, 0, 255)  # outside the roi: never seen
    with AdaptiveRunner(StandIn(), policy=Fixed(0), sensors=None, engine="torch", roi=(200, 100, 96, 96)) as r:
        d = r.infer(big)
    assert len(d) == 1
    np.testing.assert_allclose(d.boxes[0], [210, 130, 240, 160], atol=1e-4)


def test_export_sidecar_states_the_recipe(tmp_path):
    text = describe({**SPEC, "resize": "letterbox", "pad": 0})
    assert text["resize"] == "letterbox" and "area" in text["interpolation"]
    assert any("0.299" in s for s in text["order"]) and any("fill the rest" in s for s in text["order"])
    from adaptive_csp.engines.export import sidecar

    model = StandIn()
    side = sidecar(model, 0, {"onnx": "x.onnx"}, {"input": "float32"})
    assert side["preprocessing"]["resize"] == "stretch"
    json.dumps(side)  # plain JSON


def test_training_records_the_aspect_handling_of_its_data():
    imgs = ImageSet(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]), ["a", "b"])
    meta = imgs.preprocess_meta()
    assert meta["resize"] == "stretch"
    PreprocessSpec(**meta)  # what training writes reads back
