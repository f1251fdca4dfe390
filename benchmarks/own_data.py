"""The README's "Your own data" walkthrough, timed: make a folder, train from the shipped model and from
scratch with the same budget, profile, run the held-out images through ``AdaptiveRunner``.

    python benchmarks/own_data.py --out runs/own_data            # the whole walkthrough (≈ 6–8 min)
    python benchmarks/own_data.py --out runs/own_data --make-only  # only write the image folders
    python benchmarks/own_data.py --input-size 32                  # train at 32×32 (4× less compute)

The data (seeded, procedural, not Fashion-MNIST): 64×64 RGB images of four shapes — circle, cross,
square, triangle — 150 training and 50 held-out test images per class.  ``--scene belt`` (the default):
one item as a fixed camera over a belt or a table sees it — a plain low-saturation ground of random
brightness under uneven light, a soft shadow, specks of dirt, lens blur and sensor noise; the item of
random colour (its brightness > 50 of 255 from the ground's), size and rotation.  ``--scene stripes``: a
harder set — smaller items on random two-colour gradients with a strong stripe texture and 1–3 distractor
blobs and strokes.  Every step is a command a user would type (``adaptive-csp train`` / ``profile``),
run as a subprocess and timed by wall clock; the printed table is what the README shows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CLASSES = ("circle", "cross", "square", "triangle")


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    if kind == "square":
        pts = [(math.cos(angle + k * math.pi / 2 + math.pi / 4), math.sin(angle + k * math.pi / 2 + math.pi / 4))
               for k in range(4)]
    elif kind == "triangle":
        pts = [(math.cos(angle + k * 2 * math.pi / 3), math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
    else:  # cross: 12 corners of a plus sign with arms 1/3 of its size wide
        a, b = 1.0, 1 / 3
        base = [(b, a), (b, b), (a, b), (a, -b), (b, -b), (b, -a), (-b, -a), (-b, -b), (-a, -b), (-a, b),
                (-b, b), (-b, a)]
        c, s = math.cos(angle), math.sin(angle)
        pts = [(x * c - y * s, x * s + y * c) for x, y in base]
    return np.array([(cx + r * x, cy + r * y) for x, y in pts], np.int32)


def _draw_stripes(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """The hard scene: a random two-colour gradient with a stripe texture, 1–3 distractors (see
    :func:`draw`)."""
    import cv2

    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, size)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, size)[:, None, None]
    img = (c0 * (1 - t) + c1 * t) * np.ones((size, size, 1))
    period = rng.uniform(4, 12)
    yy, xx = np.mgrid[:size, :size]
    theta = rng.uniform(0, math.pi)
    img += 18 * np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period)[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    r = rng.uniform(0.16, 0.32) * size
    cx, cy = rng.uniform(r, size - r, 2)
    colour = _contrasting(img[int(cy), int(cx)].astype(float), rng)
    for _ in range(int(rng.integers(1, 4))):  # distractors: small blobs and strokes in random colours
        p = tuple(int(v) for v in rng.integers(0, size, 2))
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            cv2.circle(img, p, int(rng.integers(2, 5)), col, -1, cv2.LINE_AA)
        else:
            q = tuple(int(v) for v in np.clip(np.array(p) + rng.integers(-12, 13, 2), 0, size - 1))
            cv2.line(img, p, q, col, 1, cv2.LINE_AA)
    _item(img, kind, cx, cy, r, colour, rng.uniform(0, 2 * math.pi))
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def _contrasting(bg: np.ndarray, rng: np.random.Generator, min_luma: float = 50) -> np.ndarray:
    """A random colour whose brightness differs from ``bg``'s by more than ``min_luma`` (of 255)."""
    luma = np.array([0.299, 0.587, 0.114])
    while True:
        colour = rng.integers(0, 256, 3)
        if abs(float((colour - bg) @ luma)) > min_luma:
            return colour


def _item(img: np.ndarray, kind: str, cx: float, cy: float, r: float, colour: np.ndarray, angle: float) -> None:
    import cv2

    col = tuple(int(v) for v in colour)
    if kind == "circle":
        cv2.circle(img, (int(cx), int(cy)), int(r * 0.85), col, -1, cv2.LINE_AA)
    else:
        cv2.fillPoly(img, [_polygon(kind, cx, cy, r, angle)], col, cv2.LINE_AA)


def _draw_belt(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """The camera scene: one item on a plain surface (a belt, a table) as a fixed camera sees it — a
    low-saturation ground of random brightness under uneven light (a linear falloff and a vignette), a
    faint surface grain, the item (random colour, its brightness > 50 of 255 from the ground's, radius
    0.24–0.40 of the side, anywhere its whole body fits, any rotation), a soft shadow, 0–2 specks of
    dirt, lens blur (σ 0–1 px) and sensor noise (σ 3–8)."""
    import cv2

    grey = rng.uniform(40, 215)
    ground = np.clip(grey + rng.normal(0, 12, 3), 0, 255)  # low saturation
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    ang = rng.uniform(0, 2 * math.pi)
    fall = 1 + rng.uniform(0.0, 0.25) * ((xx - 0.5) * math.cos(ang) + (yy - 0.5) * math.sin(ang))
    vign = 1 - rng.uniform(0.0, 0.3) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * 2
    img = ground * (fall * vign)[..., None] + rng.normal(0, 4, (size, size, 1))
    img = np.clip(img, 0, 255).astype(np.uint8)
    r = rng.uniform(0.24, 0.40) * size
    cx, cy = rng.uniform(r, size - r, 2)
    colour = _contrasting(img[int(cy), int(cx)].astype(float), rng)
    angle = rng.uniform(0, 2 * math.pi)
    shadow = img.copy()
    dx, dy = rng.uniform(1, 3, 2)
    _item(shadow, kind, cx + dx, cy + dy, r, np.zeros(3), angle)
    img = cv2.addWeighted(img, 0.6, cv2.GaussianBlur(shadow, (0, 0), 1.5), 0.4, 0)  # soft, down-right
    _item(img, kind, cx, cy, r, colour, angle)
    for _ in range(int(rng.integers(0, 3))):  # specks of dirt
        p = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.circle(img, p, int(rng.integers(1, 3)), tuple(int(v) for v in rng.integers(0, 256, 3)), -1, cv2.LINE_AA)
    sigma = rng.uniform(0, 1.0)
    if sigma > 0.2:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return np.clip(img + rng.normal(0, rng.uniform(3, 8), img.shape), 0, 255).astype(np.uint8)


SCENES = {"belt": _draw_belt, "stripes": _draw_stripes}


def draw(kind: str, rng: np.random.Generator, size: int = 64, scene: str = "belt") -> np.ndarray:
    """One RGB image (H×W×3 uint8) of ``kind`` in ``scene``: ``belt`` (the default; one item on a plain
    surface under a fixed camera, :func:`_draw_belt`) or ``stripes`` (a hard scene: the item, radius
    0.16–0.32 of the side, on a random two-colour gradient with a stripe texture of period 4–12 px and 1–3
    distractor blobs and strokes, :func:`_draw_stripes`)."""
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}: choose from {', '.join(SCENES)}")
    return SCENES[scene](kind, rng, size)


def make_folders(root: Path, n_train: int = 150, n_test: int = 50, seed: int = 0,
                 scene: str = "belt") -> tuple[Path, Path]:
    """``root/train/<class>/*.png`` and ``root/test/<class>/*.png`` (PNG, RGB written as BGR by OpenCV)."""
    import cv2

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for kind in CLASSES:
            d = root / split / kind
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                cv2.imwrite(str(d / f"{i:04d}.png"), cv2.cvtColor(draw(kind, rng, scene=scene), cv2.COLOR_RGB2BGR))
    return root / "train", root / "test"


def _cli(args: list[str], log: Path, timeout: float | None = None) -> float | None:
    """Run ``adaptive-csp ARGS`` (output appended to ``log``); wall seconds, or None when it ran past
    ``timeout``.  Exits on failure."""
    t0 = time.perf_counter()
    print(f"$ adaptive-csp {' '.join(args)}", flush=True)
    with open(log, "a") as f:
        f.write(f"\n$ adaptive-csp {' '.join(args)}\n")
        f.flush()
        try:
            rc = subprocess.run([sys.executable, "-m", "adaptive_csp.cli", *args], stdout=f, stderr=subprocess.STDOUT,
                                timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            f.write(f"\n(stopped after {timeout} s)\n")
            return None
    if rc:
        sys.exit(f"adaptive-csp {args[0]} failed (exit {rc}); see {log}")
    return time.perf_counter() - t0


def _held_out(model_path: Path, test_dir: Path, policy: str) -> tuple[float, float, int]:
    """(accuracy, ms per frame, frames) of ``AdaptiveRunner(model, policy)`` on the held-out images (BGR
    frames read by OpenCV, as a camera gives them; one ``infer`` call each)."""
    import cv2

    from adaptive_csp import AdaptiveRunner, load_model

    items = [(p, k) for k, c in enumerate(CLASSES) for p in sorted((test_dir / c).glob("*.png"))]
    frames = [cv2.imread(str(p)) for p, _ in items]
    with AdaptiveRunner(load_model(model_path), policy=policy, sensors=None) as runner:
        if list(runner.class_names or []) != list(CLASSES):
            raise SystemExit(f"{model_path}: classes {runner.class_names}, expected {list(CLASSES)}")
        runner.infer(frames[0])  # warm
        t0 = time.perf_counter()
        preds = [runner.infer(f) for f in frames]
        ms = 1000 * (time.perf_counter() - t0) / len(frames)
    right = sum(int(p.label == k) for p, (_, k) in zip(preds, items))
    return right / len(items), ms, len(items)


def _ladder_lines(json_path: Path) -> list[str]:
    """One line per rung (MACs, every measured latency, validation accuracy) and each latency's span."""
    from adaptive_csp.levels import LevelLadder

    ladder = LevelLadder.from_dict(json.loads(json_path.read_text())["ladder"])
    keys = sorted(set().union(*(r.latency for r in ladder.rungs))) if hasattr(ladder.rungs[0], "latency") else []
    lines = [f"  {'rung':<38} {'MACs':>7} {'b1 ms':>7}" + "".join(f"{k:>10}" for k in keys) + f"{'val':>8}"]
    for r in ladder.rungs:
        lines.append(f"  {r.level.key:<38} {r.macs / 1e6:6.1f}M {r.latency_ms or float('nan'):7.3f}"
                     + "".join(f"{r.latency.get(k, float('nan')):10.3f}" for k in keys)
                     + f"{100 * (r.accuracy or 0):7.1f}%")
    spans = {"b1 ms": [r.latency_ms for r in ladder.rungs]}
    spans.update({k: [r.latency.get(k) for r in ladder.rungs] for k in keys})
    for k, v in spans.items():
        v = [x for x in v if x]
        if v:
            lines.append(f"  span {k}: {max(v) / min(v):.1f}× ({min(v):.3f} … {max(v):.3f} ms)")
    return lines


def _summary(run: Path) -> dict:
    meta = json.loads((run / "model.json").read_text())
    hist = meta["train"]["history"]
    init = meta["train"].get("init", {})
    return {"epochs": len(hist), "val_full": hist[-1].get("val_full"), "val_cheapest": hist[-1].get("val_cheapest"),
            "train_s": sum(h["seconds"] for h in hist) + init.get("seconds", 0.0), "init_s": init.get("seconds", 0.0),
            "steps": sum(h.get("steps", 0) for h in hist), "cut": any(h.get("cut_by_budget") for h in hist),
            "img_s": hist[-1].get("img_per_s", 0.0), "probe": init.get("probe_train_accuracy"),
            "batch": meta["train"]["cfg"]["batch_size"], "lr": meta["train"]["cfg"]["lr"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/own_data", help="folder for the data, the runs and the log")
    ap.add_argument("--budget-minutes", type=float, default=2.0, help="training budget of each run")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for training (default: torch's)")
    ap.add_argument("--input-size", type=int, default=None, metavar="PX",
                    help="train at PX×PX (default: the images' own 64×64); the runner resizes frames to it")
    ap.add_argument("--profile-timeout", type=float, default=900.0, help="stop the profile after this many s")
    ap.add_argument("--make-only", action="store_true", help="only write the image folders")
    ap.add_argument("--scene", choices=sorted(SCENES), default="belt",
                    help="belt: one item on a plain surface under a camera; stripes: a harder set (see above)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    log = out / "walkthrough.log"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    train_dir, test_dir = make_folders(out / "data", scene=a.scene)
    print(f"data ({a.scene} scene): {len(CLASSES)} classes × 150 train + 50 test, 64×64 RGB -> {out / 'data'} "
          f"({time.perf_counter() - t0:.1f} s)")
    if a.make_only:
        return 0
    common = ["--data", str(train_dir), "--budget-minutes", str(a.budget_minutes), "--quiet", "--no-resume"]
    if a.threads:
        common += ["--threads", str(a.threads)]
    if a.input_size:
        common += ["--input-size", str(a.input_size), str(a.input_size)]
    rows = {}
    for name, extra in (("transfer", ["--init", "pretrained"]), ("scratch", ["--model", "csp_wide"])):
        wall = _cli(["train", *common, *extra, "--out", str(out / name)], log)
        sys.stdout.flush()
        rows[name] = {"wall_s": wall, **_summary(out / name)}
        r = rows[name]
        print(f"train {name:<8} ({' '.join(extra)}): {wall:6.1f} s wall ({r['train_s']:.1f} s budgeted: "
              f"{r['init_s']:.1f} s BN + probe, {r['epochs']} epochs, {r['steps']} steps of batch {r['batch']}"
              f"{', last epoch cut by the budget' if r['cut'] else ''}, {r['img_s']:.1f} img/s, lr {r['lr']}), "
              f"val full {100 * r['val_full']:.1f} %, cheapest {100 * r['val_cheapest']:.1f} %"
              + (f", probe {100 * r['probe']:.1f} % (train)" if r["probe"] is not None else ""), flush=True)
    prof = out / "transfer" / "profiled"
    wall = _cli(["profile", str(out / "transfer" / "model.safetensors"), "--data", str(train_dir), "--out", str(prof)],
                log, timeout=a.profile_timeout)
    if wall is None:
        print(f"profile: did not finish within {a.profile_timeout:.0f} s; the runner uses the unprofiled model")
        prof = out / "transfer" / "model"
    else:
        rungs = json.loads(prof.with_suffix(".json").read_text())["ladder"]["rungs"]
        print(f"profile: {wall:6.1f} s wall, {len(rungs)} rungs")
        print("\n".join(_ladder_lines(prof.with_suffix(".json"))))
    print(f"{'model':<20} {'policy':<12} {'held-out':>9} {'ms/frame':>9}")
    for label, path in (("transfer" + ("+profile" if wall else ""), prof.with_suffix(".safetensors")),
                        ("scratch", out / "scratch" / "model.safetensors")):
        for policy in ("static-max", "static-min", "balanced"):
            acc, ms, n = _held_out(path, test_dir, policy)
            print(f"{label:<20} {policy:<12} {100 * acc:8.1f}% {ms:9.2f}", flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s, load average at the end {os.getloadavg()[0]:.1f}; commands "
          f"and their output: {log}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
