"""COCO-format detection data: round trip through write_coco / load_coco, resizing, and clear errors naming
the file or annotation for bad input.  Also the DetSet container's own checks."""

import json

import pytest
import torch

from adaptive_csp.data.detset import DetSet

cv2 = pytest.importorskip("cv2")

from adaptive_csp.data.coco import load_coco, write_coco  # noqa: E402


def _detset(n=4, h=40, w=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, h, w), generator=g).to(torch.uint8)
    boxes, labels = [], []
    for i in range(n):
        k = i % 3  # image 0 has no boxes
        xy = torch.rand(k, 2, generator=g) * torch.tensor([w - 10.0, h - 10.0])
        wh = 1 + torch.rand(k, 2, generator=g) * 9
        boxes.append(torch.cat([xy, xy + wh], 1).float())
        labels.append(torch.randint(0, 3, (k,), generator=g))
    return DetSet(images, boxes, labels, ["cat", "dog", "bird"])


def _same(a: DetSet, b: DetSet):
    assert torch.equal(a.images, b.images) and a.class_names == b.class_names
    assert all(torch.equal(x, y) for x, y in zip(a.boxes, b.boxes))
    assert all(torch.equal(x, y) for x, y in zip(a.labels, b.labels))


def test_round_trip(tmp_path):
    ds = _detset()
    img_dir, js = write_coco(ds, tmp_path / "out")
    _same(load_coco(img_dir, js), ds)


def test_any_category_ids_sorted_and_grey_images(tmp_path):
    ds = _detset()
    img_dir, js = write_coco(ds, tmp_path)
    doc = json.loads(js.read_text())
    remap = {1: 70, 2: -3, 3: 12}  # sorted ids: -3 (dog), 12 (bird), 70 (cat)
    for c in doc["categories"]:
        c["id"] = remap[c["id"]]
    for a in doc["annotations"]:
        a["category_id"] = remap[a["category_id"]]
    js.write_text(json.dumps(doc))
    cv2.imwrite(str(img_dir / "000001.png"), ds.images[1, 0].numpy())  # a grey file
    got = load_coco(img_dir, js)
    assert got.class_names == ["dog", "bird", "cat"]
    order = torch.tensor([2, 0, 1])  # old label → new label
    assert all(torch.equal(order[a], b) for a, b in zip(ds.labels, got.labels))
    assert torch.equal(got.images[1], ds.images[1, :1].expand(3, -1, -1))


def test_resize_scales_boxes(tmp_path):
    ds = _detset(h=40, w=56)
    got = load_coco(*write_coco(ds, tmp_path), input_size=(20, 112))
    assert got.images.shape == (4, 3, 20, 112)
    scale = torch.tensor([2.0, 0.5, 2.0, 0.5])
    assert all(torch.allclose(a * scale, b) for a, b in zip(ds.boxes, got.boxes))
    assert load_coco(*write_coco(ds, tmp_path / "sq"), input_size=32).images.shape[-2:] == (32, 32)


def test_resize_of_a_box_at_the_image_edge_stays_inside(tmp_path):
    # 75 px wide → 160: 75 · (160/75) is 160.00002 in float32, which DetSet would refuse as outside the image
    ds = DetSet(torch.zeros(1, 3, 75, 75, dtype=torch.uint8), [torch.tensor([[0.0, 0.0, 75.0, 75.0]])],
                [torch.tensor([1])], ["cat", "dog", "bird"])
    got = load_coco(*write_coco(ds, tmp_path), input_size=160)
    assert got.boxes[0].tolist() == [[0.0, 0.0, 160.0, 160.0]]


def test_mixed_sizes_need_input_size(tmp_path):
    img_dir, js = write_coco(_detset(), tmp_path)
    cv2.imwrite(str(img_dir / "000002.png"), torch.zeros(80, 80, 3, dtype=torch.uint8).numpy())
    with pytest.raises(ValueError, match="000002.png.*input_size"):
        load_coco(img_dir, js)


def _broken(tmp_path, edit):
    img_dir, js = write_coco(_detset(), tmp_path)
    doc = json.loads(js.read_text())
    edit(doc, img_dir)
    js.write_text(json.dumps(doc))
    return img_dir, js


def test_missing_and_unreadable_image(tmp_path):
    img_dir, js = _broken(tmp_path, lambda d, p: (p / "000003.png").unlink())
    with pytest.raises(ValueError, match=r"image id 3: image file .*000003.png is missing"):
        load_coco(img_dir, js)
    img_dir, js = _broken(tmp_path / "b", lambda d, p: (p / "000001.png").write_bytes(b"not a png"))
    with pytest.raises(ValueError, match="000001.png cannot be read"):
        load_coco(img_dir, js)


def _set(key, value, which=0):
    def edit(doc, _):
        doc["annotations"][which][key] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set("bbox", [50.0, 5.0, 10.0, 4.0]), r"annotation 0 \(id 1\): box .* outside 000001.png \(56×40\)"),
    (_set("bbox", [-2.0, 5.0, 10.0, 4.0]), r"annotation 0 \(id 1\): box .* outside"),
    (_set("bbox", [5.0, 5.0, 0.0, 4.0]), r"annotation 0 \(id 1\): bbox .* width or height ≤ 0"),
    (_set("bbox", [5.0, 5.0, 4.0]), r"annotation 0 \(id 1\): bbox must be"),
    (_set("category_id", 99, 1), r"annotation 1 \(id 2\): unknown category id 99"),
    (_set("image_id", 42), r"annotation 0 \(id 1\): unknown image id 42"),
    (lambda d, _: d.pop("categories"), "not a COCO annotations file .*categories"),
    (lambda d, _: d["images"].append(dict(d["images"][0])), "image id 0 appears twice"),
])
def test_bad_annotations_name_the_problem(tmp_path, edit, message):
    img_dir, js = _broken(tmp_path, edit)
    with pytest.raises(ValueError, match=message) as e:
        load_coco(img_dir, js)
    assert str(js) in str(e.value)


def test_box_within_tolerance_is_clipped(tmp_path):
    img_dir, js = _broken(tmp_path, _set("bbox", [-0.5, 1.0, 56.9, 39.5]))
    got = load_coco(img_dir, js)
    assert got.boxes[1][0].tolist() == [0.0, 1.0, 56.0, 40.0]


def test_malformed_json(tmp_path):
    img_dir, js = write_coco(_detset(), tmp_path)
    js.write_text('{"images": [')
    with pytest.raises(ValueError, match=f"{js}: cannot read the annotations JSON"):
        load_coco(img_dir, js)
    js.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a COCO annotations file"):
        load_coco(img_dir, js)
    with pytest.raises(ValueError, match="cannot read"):
        load_coco(img_dir, tmp_path / "nope.json")


def test_detset_checks():
    ds = _detset()
    assert len(ds) == 4 and ds.take([2, 0]).boxes[0].shape == ds.boxes[2].shape
    img, boxes, labels = ds[1]
    assert img.shape == (3, 40, 56) and len(boxes) == len(labels) == 1
    def one(box, label=None):  # image 1 (one box) replaced
        out = dict(boxes=ds.boxes[:1] + [torch.tensor([box])] + ds.boxes[2:])
        if label is not None:
            out["labels"] = ds.labels[:1] + [torch.tensor([label])] + ds.labels[2:]
        return out

    bad = [(one([0.0, 0.0, 57.0, 5.0]), r"image 1: box 0 \[.*\] lies outside the 56×40 image"),
           (one([4.0, 0.0, 4.0, 5.0]), "image 1: box 0 .* empty"),
           (one([0.0, 0.0, 1.0, 1.0], 3), "image 1: label 3 of box 0 is outside 0..2"),
           (one([0.0, 0.0, 1.0, 1.0], -1), "label -1"),
           (one([0.0, -0.5, 1.0, 1.0]), "outside"),
           (dict(boxes=ds.boxes[:3]), "4 images but 3 box lists"),
           (dict(images=ds.images.float()), "uint8 N×3×H×W")]
    for change, message in bad:
        kw = dict(images=ds.images, boxes=ds.boxes, labels=ds.labels, class_names=ds.class_names) | change
        with pytest.raises(ValueError, match=message):
            DetSet(**kw)
