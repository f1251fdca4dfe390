"""Detection: the shipped detector at every ladder level on the synthetic TEST scenes (test-split items
only), COCO mAP@.5 and mAP@[.5:.95] (pycocotools) through ``AdaptiveRunner`` — frames in as BGR numpy
arrays, detections out in frame pixels — next to the engine's batch-1 latency per level (warm,
interleaved, medians; 1 thread), MACs and parameters; and the same architecture trained at its full
level alone (``--alone``), for the shared-weights comparison.

    python benchmarks/detect.py                                   # shipped detector, 1000 test scenes
    python benchmarks/detect.py --alone runs/det_alone/model      # + the full level trained alone
    python benchmarks/detect.py --sizes                           # recall by frame side (issue #25) only

Targets (issue #13): full level mAP@.5 ≥ 0.90 and mAP@[.5:.95] ≥ 0.65; cheapest rung ≤ 0.25× the full
level's batch-1 latency at mAP@.5 ≥ 0.80; monotone in latency and mAP; shared weights within 2 points
mAP@.5 of the full level trained alone.  ``--sizes`` (issue #25): class-agnostic recall@0.5 at the full
level on dark-belt frames of 96–320 px with 1–4 test items at 18–35 % of the frame side (40 frames per
size), through ``runner.infer`` (the whole frame, stretched), beside the old integer-factor centre crop and
a frame resized to 96 px by ``cv2.resize(INTER_AREA)`` first; target: within 2 points of the 96 px value
at every size.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def runner_map(model, frames: np.ndarray, gt, level: int | None, engine: str, threads: int,
               agnostic: bool = False) -> dict[str, float]:
    """mAP of one level (None: the full level of a model with one rung, e.g. the alone-trained detector).

    ``agnostic``: every item counts as one class and each box keeps only its best class — localisation
    alone, without the Fashion-MNIST classification (the diagnostic column, cheapest and full rung)."""
    from adaptive_csp import AdaptiveRunner
    from adaptive_csp.control.baselines import StaticPolicy
    from adaptive_csp.data.detset import DetSet
    from adaptive_csp.detect.metrics import coco_map

    policy = StaticPolicy(-1 if level is None else level)
    with AdaptiveRunner(model, policy=policy, sensors=None, engine=engine, score_thresh=0.05, policy_tick_ms=0,
                        multi_label=not agnostic, engine_options={"threads": threads}) as runner:
        preds = []
        for i in range(0, len(frames), 50):
            for d in runner.infer(list(frames[i:i + 50])):
                preds.append((d.boxes, d.scores, d.labels * 0 if agnostic else d.labels))
    if agnostic:
        gt = DetSet(gt.images, gt.boxes, [lb * 0 for lb in gt.labels], ["item"])
    return coco_map(gt, preds)


def engine_latency(model, engine: str, threads: int, rounds: int) -> list[float]:
    """Batch-1 ms of each ladder level on ``engine`` (the runner's engine, fed preprocessed input)."""
    from adaptive_csp.engines import make_engine
    from adaptive_csp.util.timing import interleaved_medians

    h, w = model.meta["preprocess"]["input_size"]
    x = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
    eng = make_engine(model, engine, threads=threads)
    try:
        eng.prepare()
        return interleaved_medians([lambda i=i: eng.run(x, i) for i in range(len(model.levels))], rounds, 20, 10)
    finally:
        eng.close()


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
                        engine_options={"threads": threads}) as runner:
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


def main(argv: list[str] | None = None) -> int:
    from adaptive_csp.detect.checkpoint import load_detector, pretrained_detector
    from adaptive_csp.detect.scenes import fashion_mnist_scenes

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="detector checkpoint (default: the shipped detector)")
    p.add_argument("--alone", default=None, help="checkpoint of the full level trained alone")
    p.add_argument("--scenes", type=int, default=1000, help="synthetic test scenes")
    p.add_argument("--seed", type=int, default=2026, help="test-scene seed")
    p.add_argument("--engine", default="onnxruntime")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--sizes", action="store_true", help="only the recall-by-frame-size table (issue #25)")
    p.add_argument("--size-frames", type=int, default=40, help="frames per side for --sizes")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    model = load_detector(a.model) if a.model else pretrained_detector()
    if a.sizes:
        print_sizes(model, a.engine, a.threads, a.size_frames)
        return 0
    gt = fashion_mnist_scenes("test", a.scenes, a.seed)
    frames = np.ascontiguousarray(gt.images.numpy()[:, ::-1].transpose(0, 2, 3, 1))  # RGB N×3×H×W → BGR frames
    ladder = model.levels
    lat = engine_latency(model, a.engine, a.threads, a.rounds)
    maps = [runner_map(model, frames, gt, i, a.engine, a.threads) for i in range(len(ladder))]
    agn = {i: runner_map(model, frames, gt, i, a.engine, a.threads, agnostic=True) for i in (0, len(ladder) - 1)}
    print(f"{len(gt)} test scenes ({sum(len(b) for b in gt.boxes)} items), engine {a.engine}, {a.threads} thread(s)")
    print("| rung | width | level (backbone · neck blocks) | MMACs | params | batch-1 ms | × full | mAP@.5 | "
          "mAP@[.5:.95] | class-agnostic mAP@.5 / mAP |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for i, (r, ms, m) in enumerate(zip(ladder.rungs, lat, maps)):
        g = agn.get(i)
        agn_txt = f"{g['map50']:.3f} / {g['map']:.3f}" if g else "—"
        blocks = "".join(str(s.blocks) for s in r.level.stages)
        nb = len(model.cfg.backbone.stages)
        print(f"| {i} | {r.level.width:.2f} | r{r.level.stages[0].ratio:g} {blocks[:nb]}·{blocks[nb:]} | "
              f"{model.macs(i) / 1e6:.1f} | {model.params(i) / 1e6:.2f} M | {ms:.3f} | {ms / lat[-1]:.2f} | "
              f"{m['map50']:.3f} | {m['map']:.3f} | {agn_txt} |")
    full, cheap = maps[-1], maps[0]
    mono_lat = all(x < y for x, y in zip(lat, lat[1:]))
    mono_map = all(x["map50"] < y["map50"] for x, y in zip(maps, maps[1:]))
    print()
    print(f"- full level mAP@.5 {full['map50']:.3f} (target ≥ 0.90: {'met' if full['map50'] >= 0.90 else 'MISSED'}), "
          f"mAP@[.5:.95] {full['map']:.3f} (target ≥ 0.65: {'met' if full['map'] >= 0.65 else 'MISSED'})")
    ratio = lat[0] / lat[-1]
    ok = ratio <= 0.25 and cheap["map50"] >= 0.80
    print(f"- cheapest rung {ratio:.2f}× full latency at mAP@.5 {cheap['map50']:.3f} (target ≤ 0.25× at ≥ 0.80: "
          f"{'met' if ok else 'MISSED'})")
    print(f"- monotone on the test scenes: latency {'yes' if mono_lat else 'NO'}, mAP@.5 {'yes' if mono_map else 'NO'}")
    if a.alone:
        from adaptive_csp.levels import LevelLadder

        alone = load_detector(a.alone)
        alone.levels = LevelLadder([alone.full_level()])  # the one level it was trained (and calibrated) for
        am = runner_map(alone, frames, gt, None, a.engine, a.threads)
        gap = (am["map50"] - full["map50"]) * 100
        print(f"- full level trained alone: mAP@.5 {am['map50']:.3f}, mAP@[.5:.95] {am['map']:.3f}; shared weights "
              f"{gap:+.1f} points mAP@.5 behind (target ≤ 2: {'met' if gap <= 2 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
