"""Scenes of every kind: the held-out background family stays out of training; letterboxed boxes map back."""

import numpy as np
import pytest
import torch

from adaptive_csp.detect.scenes import (
    HELD_OUT_BACKGROUND,
    VARIED_BACKGROUNDS,
    SceneDataset,
    fashion_mnist_scenes,
    letterbox_geometry,
    varied_cfg,
)
from adaptive_csp.runtime.detections import to_frame
from adaptive_csp.runtime.preprocess import Preprocessor
from adaptive_csp.train.detect import DetTrainCfg, detect_data


def test_the_held_out_family_never_appears_in_training_scenes():
    cfg = DetTrainCfg(model="csp_det_wide", scenes="varied", train_scenes=150, val_scenes=30)
    train, val = detect_data(cfg)  # exactly what train_detector trains and validates on
    seen = set(train.info["backgrounds"])
    assert HELD_OUT_BACKGROUND not in seen and HELD_OUT_BACKGROUND not in set(val.info["backgrounds"])
    assert seen == set(VARIED_BACKGROUNDS) - {HELD_OUT_BACKGROUND}  # every other family is trained on
    assert len(train.info["backgrounds"]) == len(train)
    held = fashion_mnist_scenes("test", 12, 3, varied_cfg(held_out=True))
    assert set(held.info["backgrounds"]) == {HELD_OUT_BACKGROUND}
    ds = SceneDataset(held_items(), 5, 0, varied_cfg())
    assert all(ds.background(i) != HELD_OUT_BACKGROUND for i in range(len(ds)))


def held_items():
    from adaptive_csp.data.fashion_mnist import as_imageset, load_split

    return as_imageset(load_split("val"))


@pytest.mark.parametrize("fh,fw", [(64, 64), (90, 160), (320, 180), (77, 301), (128, 128), (250, 251)])
def test_letterbox_boxes_round_trip_exactly_through_the_runners_geometry(fh, fw):
    size = 128
    pre = Preprocessor({"input_size": [size, size], "in_chans": 3, "color": "rgb"}, resize="letterbox")
    top, left, nh, nw = letterbox_geometry(fh, fw, size)
    g = torch.Generator().manual_seed(fh * 1000 + fw)
    xy = torch.rand(20, 2, generator=g) * torch.tensor([fw, fh]) * 0.8
    frame_boxes = torch.cat([xy, xy + 1 + torch.rand(20, 2, generator=g) * torch.tensor([fw, fh]) * 0.2], 1)
    frame_boxes = torch.minimum(frame_boxes, torch.tensor([fw, fh, fw, fh], dtype=torch.float32))
    inp = frame_boxes.clone().double()
    inp[:, 0::2] = inp[:, 0::2] * (nw / fw) + left  # how the scene generator maps its boxes
    inp[:, 1::2] = inp[:, 1::2] * (nh / fh) + top
    back = to_frame(inp.numpy(), pre.geometry(fh, fw), fh, fw)
    np.testing.assert_allclose(back, frame_boxes.numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("fh,fw,size", [(75, 75, 160), (42, 75, 160), (43, 78, 160), (117, 208, 192)])
def test_letterboxed_boxes_at_the_frame_edge_stay_inside_any_input_size(fh, fw, size):
    # nw / fw · fw is a hair above nw in float32 for these: a scene at input 160 was refused by DetSet
    from adaptive_csp.detect.scenes import _letterbox

    top, left, nh, nw = letterbox_geometry(fh, fw, size)
    _, b = _letterbox(torch.zeros(3, fh, fw), torch.tensor([[0.0, 0.0, fw, fh]]), size, 0.0)
    assert b.tolist() == [[left, top, left + nw, top + nh]]


def test_scene_boxes_are_the_frame_boxes_letterboxed():
    ds = SceneDataset(held_items(), 8, 5, varied_cfg())
    pre = Preprocessor({"input_size": [128, 128], "in_chans": 3, "color": "rgb"}, resize="letterbox",
                       backend="torch", color="rgb")
    shapes = set()
    for i in range(len(ds)):
        frame, fboxes, flabels = ds.frame(i)
        image, boxes, labels = ds[i]
        fh, fw = frame.shape[-2:]
        shapes.add((fh, fw))
        assert torch.equal(labels, flabels) and image.shape == (3, 128, 128)
        back = to_frame(boxes.numpy(), pre.geometry(fh, fw), fh, fw)
        np.testing.assert_allclose(back, fboxes.numpy(), rtol=0, atol=1e-3)
        # the same pixels where the runner puts them: the runner's letterbox of the frame ≈ the scene
        x = pre.array(np.ascontiguousarray(frame.permute(1, 2, 0).numpy()))[0][0]
        top, left, nh, nw = letterbox_geometry(fh, fw, 128)
        got = image.float().numpy() / 255.0
        inside = np.zeros((128, 128), bool)
        inside[top:top + nh, left:left + nw] = True
        assert np.abs(got[:, ~inside]).max() == 0 and np.abs(x[:, ~inside]).max() == 0  # the pad band
        assert np.abs(got[:, inside] - x[:, inside]).mean() < 0.03  # resamplers differ (area vs antialias)
    assert len(shapes) > 1  # frames of several sizes
