import gzip

import numpy as np
import pytest
import torch

from adaptive_csp.data import fashion_mnist as fm


def _write_idx(path, magic, arr):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_missing_package_says_how_to_install(tmp_path):
    with pytest.raises(fm.DatasetNotFound, match="apt-get install -y dataset-fashion-mnist"):
        fm.load_split("test", tmp_path)


def test_idx_checks_magic_count_shape_and_truncation(tmp_path):
    good = np.zeros((3, 28, 28), np.uint8)
    p = tmp_path / "a.gz"
    _write_idx(p, 2051, good)
    assert fm.read_idx(p, 2051, 3, (28, 28)).shape == (3, 28, 28)
    with pytest.raises(ValueError, match="bad magic"):
        fm.read_idx(p, 2049, 3, (28, 28))
    with pytest.raises(ValueError, match="3 items, expected 5"):
        fm.read_idx(p, 2051, 5, (28, 28))
    with pytest.raises(ValueError, match="item shape"):
        fm.read_idx(p, 2051, 3, (32, 32))
    raw = gzip.decompress(p.read_bytes())
    t = tmp_path / "t.gz"
    with gzip.open(t, "wb") as f:
        f.write(raw[:-100])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        fm.read_idx(t, 2051, 3, (28, 28))


def test_shipped_sample_is_balanced_and_licensed():
    s = fm.load_sample()
    assert len(s) == 1000 and s.images.shape == (1000, 1, 28, 28) and s.images.dtype == torch.uint8
    assert torch.bincount(s.labels, minlength=10).tolist() == [100] * 10
    lic = fm.SAMPLE_PATH.with_name("fashion_mnist_sample.LICENSE.txt").read_text()
    assert "MIT" in lic and "Zalando" in lic


def test_augment_is_a_small_shift_with_optional_flip():
    x = torch.rand(16, 1, 28, 28)
    y = fm.augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(x, y)
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(16):  # every output is the input shifted by at most 2 px (zeros enter), maybe flipped
        crops = [xp[i, :, dy:dy + 28, dx:dx + 28] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(y[i], c) or torch.equal(y[i], c.flip(-1)) for c in crops), i


@pytest.mark.skipif(not (fm.DEFAULT_DIR / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_splits_disjoint_and_sized():
    train, val, test = fm.load_split("train"), fm.load_split("val"), fm.load_split("test")
    assert (len(train), len(val), len(test)) == (55000, 5000, 10000)
    full = fm.load_split("train_full")
    x = full.images.float() / 255
    assert abs(x.mean().item() - fm.MEAN) < 1e-3 and abs(x.std().item() - fm.STD) < 1e-3
    # the shipped sample really is test data
    s = fm.load_sample()
    with np.load(fm.SAMPLE_PATH) as z:
        idx = torch.from_numpy(z["test_index"].astype(np.int64))
    assert torch.equal(test.images[idx], s.images) and torch.equal(test.labels[idx], s.labels)
