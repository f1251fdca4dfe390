"""Detection: the shipped detector at every ladder level on the synthetic TEST scenes (test-split items
only), COCO mAP@.5 and mAP@[.5:.95] (pycocotools) through ``AdaptiveRunner`` — frames in as BGR numpy
arrays, detections out in frame pixels — next to the engine's batch-1 latency per level (warm,
interleaved, medians; 1 thread), MACs and parameters; and the same architecture trained at its full
level alone (``--alone``), for the shared-weights comparison.

    python benchmarks/detect.py                                   # shipped detector, 1000 test scenes
    python benchmarks/detect.py --alone runs/det_alone/model      # + the full level trained alone

Targets (issue #13): full level mAP@.5 ≥ 0.90 and mAP@[.5:.95] ≥ 0.65; cheapest rung ≤ 0.25× the full
level's batch-1 latency at mAP@.5 ≥ 0.80; monotone in latency and mAP; shared weights within 2 points
mAP@.5 of the full level trained alone.
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
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    model = load_detector(a.model) if a.model else pretrained_detector()
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
