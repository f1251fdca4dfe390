"""Camera augmentation and the fixed corruptions of the robustness benchmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptive_csp.data.camera import CORRUPTIONS, CameraAug, camera_augment, corrupt


def _items(n: int = 64) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 8:20, 10:18] = 0.8  # a light item on an exactly black background, as in Fashion-MNIST
    return x


def test_camera_augment_is_seeded_bounded_and_lifts_the_black_background():
    x = _items()
    a = camera_augment(x, torch.Generator().manual_seed(3))
    b = camera_augment(x, torch.Generator().manual_seed(3))
    c = camera_augment(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    only_offset = CameraAug(shift=0, scale=(1, 1), flip=False, p_photometric=1, black_level=0.15, gain=(1, 1), p_blur=0,
                            p_noise=0, p_jpeg=0, p_erase=0)
    y = camera_augment(x, torch.Generator().manual_seed(0), only_offset)
    corner = y[:, 0, :4, :4].mean((1, 2))  # background pixels: 0 + the drawn black level
    assert (corner > 0).float().mean() > 0.9 and corner.max() <= only_offset.black_level
    torch.testing.assert_close(y[:, :, 8:20, 10:18] - y[:, :, :1, :1], x[:, :, 8:20, 10:18])


def test_camera_augment_follows_the_batch_dtype():
    y = camera_augment(_items(8).double(), torch.Generator().manual_seed(0), CameraAug(p_jpeg=0))
    assert y.dtype == torch.float64


def test_corruptions_are_fixed_and_named():
    frames = (np.random.default_rng(0).random((4, 32, 32, 3)) * 255).astype(np.uint8)
    for name in CORRUPTIONS:
        out = corrupt(frames, name)
        assert out.shape == frames.shape and out.dtype == np.uint8
        assert np.array_equal(out, corrupt(frames, name)), name
    assert corrupt(frames, "clean") is frames
    dark = corrupt(np.zeros_like(frames), "black level +40")
    assert np.all(dark == 40)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(frames, "fog")
