"""COCO-format detection data (an image folder + an annotations JSON) read into a :class:`DetSet`, and
any DetSet written back out the same way.

COCO boxes are ``[x, y, w, h]`` in pixels; a DetSet holds ``x1, y1, x2 = x + w, y2 = y + h``.  Category
ids may be any integers: they map to labels ``0 … K-1`` in sorted id order, with the categories' names
as class names.  Crowd annotations (``iscrowd: 1``) are skipped; images without annotations are kept.
Every problem — a missing or unreadable image, a JSON that is not COCO, a box outside its image (beyond
1 px) or empty, an unknown category or image id — raises a ValueError naming the file or annotation.

Images are read with OpenCV (the ``video`` extra), imported when a function runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptive_csp.data.detset import DetSet

__all__ = ["load_coco", "write_coco"]

_TOLERANCE = 1.0  # px a box may stick out of its image before it is an error (then it is clipped)


def _cv2():
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading and writing COCO images needs OpenCV: pip install 'adaptive-csp[video]'") from e
    return cv2


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the annotations JSON ({e})") from e
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a COCO annotations file (top level is {type(doc).__name__}, not an object)")
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(doc.get(k), list)]
    if missing:
        raise ValueError(f"{path}: not a COCO annotations file (no {', '.join(missing)} list)")
    return doc


def _entry_id(entry: Any, where: str, keys: tuple[str, ...]) -> int:
    if not isinstance(entry, dict) or any(k not in entry for k in keys):
        raise ValueError(f"{where}: needs the keys {', '.join(keys)}")
    if not isinstance(entry["id"], int) or isinstance(entry["id"], bool):
        raise ValueError(f"{where}: id {entry['id']!r} is not an integer")
    return entry["id"]


def _categories(doc: dict, path: Path) -> tuple[dict[int, int], list[str]]:
    """category id → label (sorted id order), and the class names."""
    names: dict[int, str] = {}
    for j, c in enumerate(doc["categories"]):
        cid = _entry_id(c, f"{path}: category {j}", ("id", "name"))
        if cid in names:
            raise ValueError(f"{path}: category id {cid} appears twice")
        names[cid] = str(c["name"])
    if not names:
        raise ValueError(f"{path}: no categories")
    ids = sorted(names)
    return {cid: k for k, cid in enumerate(ids)}, [names[cid] for cid in ids]


def _annotations(doc: dict, path: Path, image_ids: set[int], cat: dict[int, int]
                 ) -> dict[int, list[tuple[list[float], int, str]]]:
    """image id → [(xyxy box, label, where)] from the annotations, checked against images and categories."""
    out: dict[int, list[tuple[list[float], int, str]]] = {i: [] for i in image_ids}
    for j, a in enumerate(doc["annotations"]):
        where = f"{path}: annotation {j}" + (f" (id {a['id']})" if isinstance(a, dict) and "id" in a else "")
        if not isinstance(a, dict) or any(k not in a for k in ("image_id", "category_id", "bbox")):
            raise ValueError(f"{where}: needs the keys image_id, category_id, bbox")
        if a.get("iscrowd", 0):
            continue
        if a["image_id"] not in image_ids:
            raise ValueError(f"{where}: unknown image id {a['image_id']!r}")
        if a["category_id"] not in cat:
            raise ValueError(f"{where}: unknown category id {a['category_id']!r} (known: {sorted(cat)})")
        b = a["bbox"]
        if not isinstance(b, list) or len(b) != 4 or not all(isinstance(v, (int, float)) for v in b) \
                or not all(np.isfinite(b)):
            raise ValueError(f"{where}: bbox must be [x, y, w, h] numbers, got {b!r}")
        x, y, w, h = (float(v) for v in b)
        if w <= 0 or h <= 0:
            raise ValueError(f"{where}: bbox {b} has width or height ≤ 0")
        out[a["image_id"]].append(([x, y, x + w, y + h], cat[a["category_id"]], where))
    return out


def _read_image(file: Path, where: str) -> np.ndarray:
    cv2 = _cv2()
    if not file.is_file():
        raise ValueError(f"{where}: image file {file} is missing")
    img = cv2.imread(str(file), cv2.IMREAD_COLOR)  # grey and 16-bit become 8-bit BGR; alpha is dropped
    if img is None:
        raise ValueError(f"{where}: image file {file} cannot be read as an image")
    return np.ascontiguousarray(img[:, :, ::-1])  # RGB


def _fit_boxes(anns: list[tuple[list[float], int, str]], file: Path, hw: tuple[int, int]) -> torch.Tensor:
    h, w = hw
    boxes = torch.tensor([b for b, _, _ in anns], dtype=torch.float32).reshape(-1, 4)
    for (b, _, where) in anns:
        if b[0] < -_TOLERANCE or b[1] < -_TOLERANCE or b[2] > w + _TOLERANCE or b[3] > h + _TOLERANCE:
            raise ValueError(f"{where}: box [x, y, w, h] = [{b[0]:g}, {b[1]:g}, {b[2] - b[0]:g}, "
                             f"{b[3] - b[1]:g}] lies outside {file.name} ({w}×{h})")
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    for box, (_, _, where) in zip(boxes, anns):
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"{where}: box lies on the edge of {file.name} ({w}×{h}) with no area inside it")
    return boxes


def _size(input_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if input_size is None:
        return None
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(hw) != 2 or any(int(v) < 1 for v in hw):
        raise ValueError(f"input_size must be a positive int or (height, width), got {input_size!r}")
    return int(hw[0]), int(hw[1])


def load_coco(images_dir: str | Path, annotations_json: str | Path,
              input_size: int | tuple[int, int] | None = None) -> DetSet:
    """Read a COCO detection dataset; every image is resized to ``input_size`` (int or (height, width),
    boxes scaled with it), or all images must already share one size."""
    cv2 = _cv2()
    images_dir, path = Path(images_dir), Path(annotations_json)
    size = _size(input_size)
    doc = _read_json(path)
    cat, names = _categories(doc, path)
    entries: dict[int, dict] = {}
    for j, im in enumerate(doc["images"]):
        iid = _entry_id(im, f"{path}: image {j}", ("id", "file_name"))
        if iid in entries:
            raise ValueError(f"{path}: image id {iid} appears twice")
        entries[iid] = im
    if not entries:
        raise ValueError(f"{path}: no images")
    anns = _annotations(doc, path, set(entries), cat)
    images, boxes, labels = [], [], []
    for iid, im in entries.items():
        file = images_dir / str(im["file_name"])
        img = _read_image(file, f"{path}: image id {iid}")
        hw = img.shape[:2]
        b = _fit_boxes(anns[iid], file, hw)
        if size is not None and size != hw:
            interp = cv2.INTER_AREA if size[0] < hw[0] and size[1] < hw[1] else cv2.INTER_LINEAR
            img = cv2.resize(img, (size[1], size[0]), interpolation=interp)
            b = b * torch.tensor([size[1] / hw[1], size[0] / hw[0]] * 2, dtype=torch.float32)
            b[:, 0::2], b[:, 1::2] = b[:, 0::2].clamp(0, size[1]), b[:, 1::2].clamp(0, size[0])  # float32 rounding
        elif images and img.shape != images[0].shape:
            raise ValueError(f"{file}: {hw[1]}×{hw[0]} px, but {images[0].shape[1]}×{images[0].shape[0]} px "
                             "before it; pass input_size to resize every image to one size")
        images.append(img)
        boxes.append(b)
        labels.append(torch.tensor([lab for _, lab, _ in anns[iid]], dtype=torch.int64))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return DetSet(x, boxes, labels, names, {"name": path.stem, "source": str(path)})


def write_coco(detset: DetSet, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``detset`` as ``out_dir/images/000000.png …`` + ``out_dir/annotations.json`` (category ids
    1 … K in class order); returns (images folder, JSON path)."""
    cv2 = _cv2()
    out = Path(out_dir)
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    h, w = detset.input_size
    images, annotations = [], []
    for i in range(len(detset)):
        name = f"{i:06d}.png"
        bgr = detset.images[i].permute(1, 2, 0).numpy()[:, :, ::-1]
        if not cv2.imwrite(str(img_dir / name), np.ascontiguousarray(bgr)):
            raise ValueError(f"cannot write {img_dir / name}")
        images.append({"id": i, "file_name": name, "width": w, "height": h})
        for b, lab in zip(detset.boxes[i].tolist(), detset.labels[i].tolist()):
            bw, bh = b[2] - b[0], b[3] - b[1]
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(lab) + 1,
                                "bbox": [b[0], b[1], bw, bh], "area": bw * bh, "iscrowd": 0})
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(detset.class_names)]
    json_path = out / "annotations.json"
    json_path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": cats}))
    return img_dir, json_path
