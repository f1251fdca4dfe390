"""Detection: the shipped detector at every ladder level on synthetic TEST scenes of every kind (test-split
items only; frames 64–320 px of any aspect, items 16–112 px, every background family but the held-out
one, which is reported apart), through ``AdaptiveRunner`` — camera frames of their own sizes in as BGR
arrays, letterboxed by the runner, detections out in frame pixels: COCO mAP@.5 and mAP@[.5:.95]
(pycocotools, multi-label at score 0.05), class-agnostic mAP (localisation alone), precision and recall at
each rung's own threshold (the runner's default decoding), next to the engine's batch-1 latency per level
(warm, interleaved, medians; 1 thread) and MACs; a scale sweep (recall@0.5 with the right class at the
full and cheapest rungs, frames of 96 / 160 / 320 px, items 16–112 px); and, with ``--alone``, the shared
weights against the full level trained alone at equal training (the two runs' per-epoch validation mAP).

    python benchmarks/detect.py                                   # shipped detector, 500 + 500 test scenes
    python benchmarks/detect.py --alone runs/det_alone/model      # + the full level trained alone
    python benchmarks/detect.py --sizes                           # recall by frame side (issue #25) only

Targets (issue #21): full level mAP@.5 ≥ 0.88 and mAP@[.5:.95] ≥ 0.65; cheapest rung mAP@.5 ≥ 0.80 at
≤ 0.25× the full level's batch-1 latency; class-agnostic ≥ 0.97 at full; the held-out family within 5
points of in-family mAP@.5; shared weights within 2 points of the full level trained alone; precision
≥ 0.80 at every rung at its own threshold.  ``--sizes`` (issue #25): class-agnostic recall@0.5 at the full
level on dark-belt frames of 96–320 px with 1–4 test items at 18–35 % of the frame side (40 frames per
size), through ``runner.infer`` (the whole frame, stretched), beside the old integer-factor centre crop and
a frame resized to 96 px by ``cv2.resize(INTER_AREA)`` first; target: within 2 points of the 96 px value
at every size.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np


def _opts(engine: str, threads: int) -> dict:
    return {"threads": threads} if engine == "onnxruntime" else {}


def engine_latency(model, engine: str, threads: int, rounds: int, namer="auto", crops: int = 3
                   ) -> tuple[list[float], list[float] | None]:
    """Batch-1 ms of each ladder level on ``engine`` (the runner's engine, fed preprocessed input), and with
    the runner's namer (None without one): the same, plus naming ``crops`` boxes (cutting the crops and the
    namer's matched rung at batch ``crops``; a test scene holds 2.9 items on average)."""
    from adaptive_csp.engines import create_engine
    from adaptive_csp.runtime.namer import resolve_namer
    from adaptive_csp.util.timing import interleaved_medians

    h, w = model.meta["preprocess"]["input_size"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, h, w)).astype(np.float32)
    eng = create_engine(model, engine, **_opts(engine, threads))
    nm, _ = resolve_namer(namer, model.meta, eng, None, _opts(engine, threads))
    grey = rng.random((h, w)).astype(np.float32)
    side = np.array([[10, 12, 40, 50], [50, 20, 100, 90], [70, 60, 90, 120]], np.float32)
    boxes = np.concatenate([side] * (crops // 3 + 1))[:crops]
    n = len(model.levels)
    try:
        eng.prepare()
        fns = [lambda i=i: eng.run(x, i) for i in range(n)]
        if nm is not None:
            nm.engine.prepare()
            fns += [lambda i=i: (eng.run(x, i), nm.probs(grey, boxes, i)) for i in range(n)]
        ms = interleaved_medians(fns, rounds, 20, 10)
        return ms[:n], (ms[n:] if nm is not None else None)
    finally:
        eng.close()
        if nm is not None:
            nm.close()


def _recall(preds, gts, thresh: float = 0.5) -> float:
    """Class-agnostic recall: ground-truth boxes matched (greedy by score) by a prediction at IoU ≥ thresh."""
    hit = total = 0
    for (boxes, scores), gt in zip(preds, gts):
        gt = np.asarray(gt, np.float64).reshape(-1, 4)
        total += len(gt)
        free = np.ones(len(gt), bool)
        for b in np.asarray(boxes, np.float64)[np.argsort(-np.asarray(scores))]:
            if not free.any():
                break
            iw = np.clip(np.minimum(b[2], gt[:, 2]) - np.maximum(b[0], gt[:, 0]), 0, None)
            ih = np.clip(np.minimum(b[3], gt[:, 3]) - np.maximum(b[1], gt[:, 1]), 0, None)
            inter = iw * ih
            iou = inter / ((b[2] - b[0]) * (b[3] - b[1]) + (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]) - inter)
            iou[~free] = 0
            j = int(np.argmax(iou))
            if iou[j] >= thresh:
                free[j] = False
                hit += 1
    return hit / max(total, 1)


def _old_crop(frame: np.ndarray, h: int, w: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The resize before issue #25: centre crop to integer multiples of the input, area by those factors."""
    import cv2

    H, W = frame.shape[:2]
    kh, kw = H // h, W // w
    y0, x0 = (H - kh * h) // 2, (W - kw * w) // 2
    crop = np.ascontiguousarray(frame[y0:y0 + kh * h, x0:x0 + kw * w])
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA), (x0, y0, kw, kh)


def size_recall(model, engine: str, threads: int, sides=(96, 128, 144, 160, 176, 192, 320), n: int = 40,
                seed: int = 2026) -> list[dict[str, float]]:
    """Recall@0.5 (class-agnostic, full level) per frame side: runner, old crop, cv2 resize to input first."""
    import cv2

    from adaptive_csp import AdaptiveRunner
    from adaptive_csp.control.baselines import StaticPolicy
    from adaptive_csp.detect.scenes import SceneCfg, fashion_mnist_scenes

    h, w = model.meta["preprocess"]["input_size"]
    rows = []
    with AdaptiveRunner(model, policy=StaticPolicy(-1), sensors=None, engine=engine, policy_tick_ms=0,
                        engine_options=_opts(engine, threads)) as runner:
        for side in sides:
            cfg = SceneCfg(size=side, item_scale=(0.18 * side / 28, 0.35 * side / 28), backgrounds={"belt": 1.0})
            gt = fashion_mnist_scenes("test", n, seed + side, cfg)
            frames = np.ascontiguousarray(gt.images.numpy()[:, ::-1].transpose(0, 2, 3, 1))  # BGR H×W×3
            gts = [b.numpy() for b in gt.boxes]
            got = {"runner": [], "old_crop": [], "cv2_first": []}
            for f in frames:
                d = runner.infer(f)
                got["runner"].append((d.boxes, d.scores))
                for key, (small, (ox, oy, sx, sy)) in (
                        ("old_crop", _old_crop(f, h, w)),
                        ("cv2_first", (cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA),
                                       (0.0, 0.0, side / w, side / h)))):
                    d = runner.infer(small)  # already at the input size: boxes in input pixels
                    b = d.boxes.astype(np.float64) * [sx, sy, sx, sy] + [ox, oy, ox, oy]
                    got[key].append((b, d.scores))
            rows.append({"side": side, **{k: _recall(v, gts) for k, v in got.items()},
                         "items": sum(len(g) for g in gts)})
    return rows


def print_sizes(model, engine: str, threads: int, n: int) -> None:
    rows = size_recall(model, engine, threads, n=n)
    print(f"Class-agnostic recall@0.5, full level, {n} dark-belt frames per side, 1-4 test items at 18-35 % of the "
          f"side, engine {engine}")
    print("| frame side | items | recall, `runner.infer` | old integer-factor crop | `cv2.resize` to input first |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['side']} | {r['items']} | {r['runner']:.3f} | {r['old_crop']:.3f} | {r['cv2_first']:.3f} |")
    ref = rows[0]["runner"]
    worst = min(rows, key=lambda r: r["runner"])
    ok = all(r["runner"] >= ref - 0.02 for r in rows)
    print(f"\n- runner recall within 2 points of the {rows[0]['side']} px value ({ref:.3f}) at every size: "
          f"{'met' if ok else 'MISSED'} (lowest {worst['runner']:.3f} at {worst['side']} px)")


def scene_frames(n: int, seed: int, cfg) -> tuple[list[np.ndarray], object, list]:
    """``n`` test scenes of ``cfg`` as the camera saw them: BGR frames of their own sizes, the letterboxed
    ground truth (a DetSet in model-input pixels, what the metrics read) and each frame's letterbox."""
    from adaptive_csp.data.detset import DetSet
    from adaptive_csp.data.fashion_mnist import as_imageset, load_split
    from adaptive_csp.detect.scenes import SceneDataset, letterbox_geometry

    ds = SceneDataset(as_imageset(load_split("test")), n, seed, cfg)
    frames, images, boxes, labels, geo = [], [], [], [], []
    for i in range(n):
        f, _, _ = ds.frame(i)
        img, b, lab = ds[i]
        frames.append(np.ascontiguousarray(f.numpy()[::-1].transpose(1, 2, 0)))  # RGB C×H×W → BGR H×W×C
        images.append(img)
        boxes.append(b)
        labels.append(lab)
        geo.append(letterbox_geometry(f.shape[1], f.shape[2], cfg.size))
    import torch

    return frames, DetSet(torch.stack(images), boxes, labels, ds.class_names, {"name": "test scenes"}), geo


def _to_input(d, g, fh: int, fw: int) -> np.ndarray:
    """Detections in frame pixels → model-input pixels (the scene's letterbox, inverted exactly)."""
    top, left, nh, nw = g
    b = np.asarray(d.boxes, np.float64).reshape(-1, 4).copy()
    b[:, 0::2] = b[:, 0::2] * (nw / fw) + left
    b[:, 1::2] = b[:, 1::2] * (nh / fh) + top
    return b


def run_frames(model, frames: list[np.ndarray], geo: list, level: int, engine: str, threads: int, **kw) -> list:
    """Per frame ``(boxes in input px, scores, labels)`` of ``level`` through ``AdaptiveRunner.infer``."""
    from adaptive_csp import AdaptiveRunner
    from adaptive_csp.control.baselines import StaticPolicy

    out = []
    with AdaptiveRunner(model, policy=StaticPolicy(level), sensors=None, engine=engine, policy_tick_ms=0,
                        engine_options=_opts(engine, threads), **kw) as runner:
        for f, g in zip(frames, geo):
            d = runner.infer(f)
            out.append((_to_input(d, g, *f.shape[:2]), np.asarray(d.scores), np.asarray(d.labels)))
    return out


def map_of(preds: list, gt, agnostic: bool = False) -> dict[str, float]:
    from adaptive_csp.data.detset import DetSet
    from adaptive_csp.detect.metrics import coco_map

    if agnostic:
        gt = DetSet(gt.images, gt.boxes, [lb * 0 for lb in gt.labels], ["item"])
        preds = [(b, s, lb * 0) for b, s, lb in preds]
    return coco_map(gt, [tuple(np.array(t) for t in p) for p in preds])


def pr_at_own_threshold(preds: list, gt) -> dict[str, float]:
    """Precision, recall (right class, IoU ≥ 0.5) and the share of located items (any class) that carry
    the wrong class, for detections at the rung's own threshold (the runner's default decoding)."""
    from adaptive_csp.detect.metrics import greedy_match

    tp = fp = loc = n = 0
    for (b, s, lb), gb, gl in zip(preds, gt.boxes, gt.labels):
        flags = greedy_match(b, s, lb, gb.numpy(), gl.numpy())
        anyc = greedy_match(b, s, lb, gb.numpy(), gl.numpy(), class_aware=False)
        tp, fp, n = tp + int(flags.sum()), fp + int((~flags).sum()), n + len(gb)
        loc += int(anyc.sum())
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(n, 1), "located": loc / max(n, 1),
            "wrong_class": (loc - tp) / max(loc, 1), "items": n}


def scale_sweep(model, engine: str, threads: int, n: int, seed: int, levels: list[int], namer="auto",
                sides=(96, 160, 320), bins=((16, 32), (32, 64), (64, 112))) -> list[dict]:
    """Recall@0.5 with the right class, at each rung's own threshold, per square frame side and item-size
    bin (items drawn 16–112 px in frame pixels, every in-family background)."""
    from adaptive_csp.detect.scenes import varied_cfg

    size = int(model.meta["preprocess"]["input_size"][0])
    rows = []
    for side in sides:
        for lo, hi in bins:
            if lo >= side:
                continue
            cfg = varied_cfg(size, frame=(side, side), item_px=(lo, min(hi, side)), aspect=(1.0, 1.0), max_items=3)
            frames, gt, geo = scene_frames(n, seed + side * 7 + lo, cfg)
            row = {"side": side, "items_px": f"{lo}–{min(hi, side)}", "items": sum(len(b) for b in gt.boxes)}
            for lv in levels:
                row[lv] = pr_at_own_threshold(run_frames(model, frames, geo, lv, engine, threads, namer=namer),
                                              gt)["recall"]
            rows.append(row)
    return rows


def alone_lines(model, alone_path: str | None) -> list[str]:
    """Shared vs alone at equal training: the two runs' validation mAP@.5 epoch by epoch (same val scenes)."""
    from adaptive_csp.detect.checkpoint import load_detector
    from adaptive_csp.train.loop import train_record

    if not alone_path:
        return []
    alone = load_detector(alone_path)
    ha = {r["epoch"]: r for r in train_record(alone.meta).get("history", [])}
    hs = {r["epoch"]: r for r in train_record(model.meta).get("history", [])}
    common = sorted(set(ha) & set(hs))
    out = ["", "Shared weights vs the full level trained alone, equal training (same command, scenes, seed; "
           "validation mAP@.5 after each epoch, BN re-estimated):", "",
           "| epoch | shared, full level | alone (`--static-level` full) | shared − alone |", "|---:|---:|---:|---:|"]
    for e in common:
        s, a = hs[e]["full_map50"], ha[e]["static_map50"]
        out.append(f"| {e} | {s:.3f} | {a:.3f} | {100 * (s - a):+.1f} points |")
    if common:
        e = common[-1]
        gap = 100 * (ha[e]["static_map50"] - hs[e]["full_map50"])
        out.append(f"\n- at epoch {e}: shared {gap:+.1f} points behind alone (target ≤ 2: "
                   f"{'met' if gap <= 2 else 'MISSED'})")
    return out


@dataclass
class DetectResult:
    """What the main table, the held-out line, the targets and the scale sweep print."""

    model: object
    engine: str
    threads: int
    size: int  # model input side
    gt: object  # in-family test scenes (DetSet)
    hgt: object  # held-out family test scenes
    lat: list[float]  # batch-1 ms per rung
    named_lat: list[float] | None  # the same plus naming 3 boxes with the runner's namer (None: no namer)
    namer: str  # what names the boxes: the namer model, or "the detector"
    rows: list[dict]  # per rung: map (multi-label, score 0.05), own (at its own threshold), agn (ends only)
    held: dict[int, dict]  # held-out mAP at the cheapest and full rung
    sweep: list[dict]
    sweep_scenes: int
    alone: list[str]  # the shared-vs-alone lines (empty without --alone)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="detector checkpoint (default: the shipped detector)")
    p.add_argument("--alone", default=None, help="checkpoint of the full level trained alone")
    p.add_argument("--scenes", type=int, default=500, help="synthetic test scenes (in-family, and held-out family)")
    p.add_argument("--seed", type=int, default=2026, help="test-scene seed")
    p.add_argument("--engine", default="onnxruntime")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--namer", default="auto", help="what names the boxes: auto (the namer the detector's file "
                   "names, if any), none (the detector's own classes), or a namer name / checkpoint")
    p.add_argument("--sweep-scenes", type=int, default=60, help="scenes per (frame side, item size) of the sweep")
    p.add_argument("--sizes", action="store_true", help="only the recall-by-frame-size table (issue #25)")
    p.add_argument("--size-frames", type=int, default=40, help="frames per side for --sizes")
    return p.parse_args(argv)


def compute(model, a: argparse.Namespace) -> DetectResult:
    """Every rung on the in-family scenes, the ends on the held-out family, the latencies and the sweep."""
    from adaptive_csp.detect.scenes import varied_cfg

    size = int(model.meta["preprocess"]["input_size"][0])
    frames, gt, geo = scene_frames(a.scenes, a.seed, varied_cfg(size))
    hframes, hgt, hgeo = scene_frames(a.scenes, a.seed + 1, varied_cfg(size, held_out=True))
    last = len(model.levels) - 1
    lat, named_lat = engine_latency(model, a.engine, a.threads, a.rounds, a.namer)
    nm = {"namer": a.namer}
    rows = []
    for i in range(len(model.levels)):
        low = run_frames(model, frames, geo, i, a.engine, a.threads, score_thresh=0.05, multi_label=True, **nm)
        own = run_frames(model, frames, geo, i, a.engine, a.threads, **nm)
        rows.append({"map": map_of(low, gt), "own": pr_at_own_threshold(own, gt),
                     "agn": map_of(run_frames(model, frames, geo, i, a.engine, a.threads, score_thresh=0.05, **nm), gt,
                                   agnostic=True) if i in (0, last) else None})
    held = {i: map_of(run_frames(model, hframes, hgeo, i, a.engine, a.threads, score_thresh=0.05, multi_label=True,
                                 **nm),
                      hgt) for i in (0, last)}
    sweep = scale_sweep(model, a.engine, a.threads, a.sweep_scenes, a.seed + 3, [last, 0], a.namer)
    named = named_lat is not None
    spec = model.meta.get("namer") if a.namer == "auto" else a.namer
    if isinstance(spec, dict):
        flip = ", mirror-averaged" if spec.get("flip") else ""
        spec = f"{spec.get('model')} (detector weight {spec.get('detector_weight', 0):g}{flip})"
    who = str(spec) if named else "the detector"
    return DetectResult(model=model, engine=a.engine, threads=a.threads, size=size, gt=gt, hgt=hgt, lat=lat,
                        named_lat=named_lat, namer=who,
                        rows=rows, held=held, sweep=sweep, sweep_scenes=a.sweep_scenes,
                        alone=alone_lines(model, a.alone))


def render(r: DetectResult) -> None:
    render_rungs(r)
    render_targets(r)
    last = len(r.rows) - 1
    print(f"\nScale sweep: recall@0.5 with the right class at each rung's own threshold, {r.sweep_scenes} square "
          "frames per row (1–3 items, in-family backgrounds), letterboxed by the runner")
    print("| frame px | item px | items | full | cheapest |\n|---:|---|---:|---:|---:|")
    for w in r.sweep:
        print(f"| {w['side']} | {w['items_px']} | {w['items']} | {w[last]:.3f} | {w[0]:.3f} |")
    for line in r.alone:
        print(line)


def render_rungs(r: DetectResult) -> None:
    """The per-rung table."""
    from adaptive_csp.detect.scenes import varied_cfg

    model, gt, lat = r.model, r.gt, r.lat
    per = (model.meta.get("postprocess") or {}).get("per_level", {})
    print(f"{len(gt)} test scenes ({sum(len(b) for b in gt.boxes)} items; frames 64–320 px of aspect 9:16–16:9, "
          f"items 16–112 px; backgrounds {', '.join(sorted(set(varied_cfg(r.size).backgrounds)))}), letterboxed by "
          f"the runner; engine {r.engine}, {r.threads} thread(s); boxes named by {r.namer}")
    named = r.named_lat is not None
    tot = r.named_lat if named else lat
    print("| rung | width | level (backbone · neck blocks) | MMACs | batch-1 ms |" + (" + naming 3 boxes, ms |" if named
          else "") + " × full | mAP@.5 | mAP@[.5:.95] | class-agnostic mAP@.5 / mAP | own threshold (score · NMS) | "
          "precision | recall |")
    print("|---:|---:|---|---:|---:|" + ("---:|" if named else "") + "---:|---:|---:|---:|---|---:|---:|")
    nb = len(model.cfg.backbone.stages)
    for i, (rung, ms, row, total) in enumerate(zip(model.levels.rungs, lat, r.rows, tot)):
        g = row["agn"]
        agn_txt = f"{g['map50']:.3f} / {g['map']:.3f}" if g else "—"
        blocks = "".join(str(s.blocks) for s in rung.level.stages)
        t = per.get(rung.level.key)
        t_txt = f"{t['score_thresh']:.3f} · {t['iou_thresh']:.1f}" if t else "default"
        print(f"| {i} | {rung.level.width:.2f} | r{rung.level.stages[0].ratio:g} {blocks[:nb]}·{blocks[nb:]} | "
              f"{model.macs(i) / 1e6:.1f} | {ms:.3f} | {f'{total:.3f} | ' if named else ''}{total / tot[-1]:.2f} | "
              f"{row['map']['map50']:.3f} | "
              f"{row['map']['map']:.3f} | {agn_txt} | {t_txt} | {row['own']['precision']:.3f} | "
              f"{row['own']['recall']:.3f} |")


def target_checks(r: DetectResult) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for issue #21's targets."""
    full, cheap, rows = r.rows[-1], r.rows[0], r.rows
    tot = r.named_lat or r.lat  # with a namer, its time counts
    ratio = tot[0] / tot[-1]
    hf = r.held[len(rows) - 1]["map50"]
    return [
        ("full level mAP@.5 ≥ 0.88", full["map"]["map50"] >= 0.88, f"{full['map']['map50']:.3f}"),
        ("full level mAP@[.5:.95] ≥ 0.65", full["map"]["map"] >= 0.65, f"{full['map']['map']:.3f}"),
        ("cheapest rung mAP@.5 ≥ 0.80", cheap["map"]["map50"] >= 0.80, f"{cheap['map']['map50']:.3f}"),
        ("cheapest rung ≤ 0.25× full batch-1 latency", ratio <= 0.25, f"{ratio:.2f}×"),
        ("class-agnostic mAP@.5 ≥ 0.97 at full", full["agn"]["map50"] >= 0.97, f"{full['agn']['map50']:.3f}"),
        ("held-out family within 5 points of in-family mAP@.5 (full)", full["map"]["map50"] - hf <= 0.05,
         f"{100 * (hf - full['map']['map50']):+.1f} points"),
        ("precision ≥ 0.80 at every rung at its own threshold", all(w["own"]["precision"] >= 0.80 for w in rows),
         f"lowest {min(w['own']['precision'] for w in rows):.3f}"),
    ]


def render_targets(r: DetectResult) -> None:
    """The held-out family line, the targets table and where the ends' misses come from."""
    from adaptive_csp.detect.scenes import HELD_OUT_BACKGROUND

    full, cheap, hgt = r.rows[-1], r.rows[0], r.hgt
    hf, hc = r.held[len(r.rows) - 1]["map50"], r.held[0]["map50"]
    print()
    print(f"held-out background family '{HELD_OUT_BACKGROUND}' ({len(hgt)} scenes, "
          f"{sum(len(b) for b in hgt.boxes)} items): mAP@.5 full {hf:.3f} (in-family {full['map']['map50']:.3f}, "
          f"{100 * (hf - full['map']['map50']):+.1f} points), cheapest {hc:.3f} (in-family "
          f"{cheap['map']['map50']:.3f}, {100 * (hc - cheap['map']['map50']):+.1f} points)")
    print()
    print("| target | measured | status |\n|---|---|---|")
    for name, ok, txt in target_checks(r):
        print(f"| {name} | {txt} | {'met' if ok else 'MISSED'} |")
    for name, row in (("full", full), ("cheapest", cheap)):
        o = row["own"]
        print(f"- {name} rung at its own threshold: {100 * o['located']:.1f} % of items located (IoU ≥ 0.5, any "
              f"class), {100 * o['recall']:.1f} % with the right class: {100 * o['wrong_class']:.1f} % of the "
              f"located items carry the wrong class (classification), {100 * (1 - o['located']):.1f} % of the "
              "items are not located (localisation)")


def main(argv: list[str] | None = None) -> int:
    from adaptive_csp.detect.checkpoint import load_detector, pretrained_detector

    a = parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    model = load_detector(a.model) if a.model else pretrained_detector()
    if a.namer.lower() == "none":
        a.namer = None
    if a.sizes:
        print_sizes(model, a.engine, a.threads, a.size_frames)
        return 0
    render(compute(model, a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
