"""Synthetic detection scenes: deterministic per (seed, i), boxes that match the pasted items, counts,
overlap limits, labels of the items, and split hygiene."""

import itertools

import pytest
import torch
from pydantic import ValidationError

import adaptive_csp.data.fashion_mnist as fm
from adaptive_csp.data.camera import CameraAug
from adaptive_csp.detect.scenes import SceneCfg, SceneDataset, fashion_mnist_scenes, make_scenes


class Items:
    """Bars of 28 px height whose width codes the class: class c is 4 + 2c px wide (bright on black)."""

    def __init__(self, n: int = 40, classes: int = 6, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, classes, (n,), generator=g)
        self.images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
        for i, c in enumerate(self.labels.tolist()):
            w = 4 + 2 * c
            x0 = (28 - w) // 2
            self.images[i, 0, :, x0:x0 + w] = torch.randint(120, 256, (28, w), generator=g).to(torch.uint8)
        self.class_names = [f"bar{c}" for c in range(classes)]


PLAIN = dict(backgrounds={"black": 1.0}, camera=None)


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_deterministic_per_seed_and_index():
    items = Items()
    a = make_scenes(items, 12, seed=3)
    b = make_scenes(items, 12, seed=3)
    assert torch.equal(a.images, b.images)
    assert all(torch.equal(x, y) for x, y in zip(a.boxes, b.boxes))
    # scene i does not depend on how many scenes came before, nor on the order they are made in
    ds = SceneDataset(items, 12, seed=3)
    for i in (11, 5, 0, 7):
        img, boxes, labels = ds[i]
        assert torch.equal(img, a.images[i]) and torch.equal(boxes, a.boxes[i]) and torch.equal(labels, a.labels[i])
    assert torch.equal(make_scenes(items, 3, seed=3).images, a.images[:3])
    c = make_scenes(items, 12, seed=4)
    assert not torch.equal(c.images, a.images)


def test_single_item_box_is_the_tight_box_of_its_pixels():
    ds = make_scenes(Items(), 30, seed=1, cfg=SceneCfg(min_items=1, max_items=1, **PLAIN))
    for img, boxes in zip(ds.images, ds.boxes):
        ys, xs = torch.nonzero(img.amax(0) > 0, as_tuple=True)
        tight = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        assert boxes.tolist() == [tight]


def test_boxes_match_pasted_items_in_crowded_scenes():
    """Outside every box the frame is untouched background; each box's four edges hold item pixels."""
    ds = make_scenes(Items(), 40, seed=2, cfg=SceneCfg(min_items=2, max_items=5, max_iou=0.4, **PLAIN))
    for img, boxes in zip(ds.images, ds.boxes):
        lit = img.amax(0) > 0
        inside = torch.zeros_like(lit)
        for x1, y1, x2, y2 in boxes.int().tolist():
            inside[y1:y2, x1:x2] = True
            assert lit[y1, x1:x2].any() and lit[y2 - 1, x1:x2].any()
            assert lit[y1:y2, x1].any() and lit[y1:y2, x2 - 1].any()
        assert not (lit & ~inside).any()


def test_counts_overlaps_and_labels():
    cfg = SceneCfg(min_items=2, max_items=4, max_iou=0.2, item_scale=(1.0, 1.0), **PLAIN)
    ds = make_scenes(Items(), 60, seed=5, cfg=cfg)
    counts = [len(b) for b in ds.boxes]
    assert min(counts) >= 2 and max(counts) <= 4 and len(set(counts)) > 1
    for boxes, labels in zip(ds.boxes, ds.labels):
        for a, b in itertools.combinations(boxes.tolist(), 2):
            assert _iou(a, b) <= 0.2 + 1e-6
        # at scale 1 a bar of class c is exactly 4 + 2c px wide and 28 px high: the label is the item's
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        assert torch.equal(labels, ((w - 4) / 2).long()) and bool((h == 28).all())
    assert ds.class_names == Items().class_names


def test_camera_and_backgrounds_keep_boxes_inside_and_change_pixels():
    items = Items()
    plain = make_scenes(items, 8, seed=6, cfg=SceneCfg(**PLAIN))
    backs = make_scenes(items, 8, seed=6, cfg=SceneCfg(camera=None))
    busy = make_scenes(items, 8, seed=6)
    for other in (backs, busy):  # same layout, new look
        assert all(torch.equal(a, b) for a, b in zip(plain.boxes, other.boxes))
        assert all(torch.equal(a, b) for a, b in zip(plain.labels, other.labels))
    assert not torch.equal(plain.images, backs.images) and not torch.equal(backs.images, busy.images)
    assert int(backs.images.amin()) > 0  # belt and clutter are dark but never exactly black


def test_bad_config_and_items():
    with pytest.raises(ValidationError, match="must not move"):
        SceneCfg(camera=CameraAug())
    with pytest.raises(ValidationError, match="min_items"):
        SceneCfg(min_items=5, max_items=2)
    with pytest.raises(ValidationError, match="unknown backgrounds"):
        SceneCfg(backgrounds={"sky": 1.0})
    with pytest.raises(ValueError, match="uint8 N×1×H×W"):
        make_scenes(type("X", (), {"images": torch.zeros(3, 3, 28, 28), "labels": torch.zeros(3)})(), 2, 0)
    with pytest.raises(ValueError, match="could place only"):
        make_scenes(Items(), 2, 0, SceneCfg(min_items=10, max_items=10, size=40, item_scale=(1.4, 1.4), **PLAIN))


def test_splits_draw_their_own_items(monkeypatch):
    """train / val / test scenes take items only from the matching Fashion-MNIST split."""
    asked = []

    def fake_split(name, root=None):
        asked.append(name)
        code = {"train": 0, "val": 1, "test": 2}[name]
        return fm.Split(torch.full((20, 1, 28, 28), 200, dtype=torch.uint8), torch.full((20,), code))

    monkeypatch.setattr(fm, "load_split", fake_split)
    for code, split in enumerate(("train", "val", "test")):
        ds = fashion_mnist_scenes(split, 6, seed=0)
        assert asked[-1] == split
        assert all(bool((lab == code).all()) for lab in ds.labels)
        assert ds.class_names == list(fm.CLASS_NAMES) and ds.info["split"] == split
    with pytest.raises(ValueError, match="unknown split"):
        fashion_mnist_scenes("train_full", 2, 0)


@pytest.mark.skipif(not (fm.DEFAULT_DIR / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="Fashion-MNIST not installed")
def test_real_fashion_mnist_scenes():
    ds = fashion_mnist_scenes("val", 16, seed=0)
    assert ds.images.shape == (16, 3, 96, 96) and sum(len(b) for b in ds.boxes) >= 16
    assert ds.class_names == list(fm.CLASS_NAMES)
