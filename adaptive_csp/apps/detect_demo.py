"""``adaptive-csp demo --task detect``: the adaptive detector on a belt camera that carries several items at once.

The classifier demo's simulated stretch of a battery camera's day (:mod:`adaptive_csp.apps.story`: the
``conveyor`` scenario by default — the battery drains, a background job loads the CPU, the belt stands
idle, the sun heats the enclosure; the chosen policy against ``static-max`` on one simulated clock,
inference real, battery and heat simulated), with a detector instead of a classifier:

- **frames** (:class:`SceneBelt`): an indexing belt of synthetic scenes (:mod:`adaptive_csp.detect.scenes`:
  2–4 Fashion-MNIST items of the shipped sample on a belt, camera photometrics), each held under the camera
  for a few frames between stretches of bare belt, seen by a camera ``zoom``× the detector's input size
  (288×288 BGR for a 96 px detector) with fresh sensor noise on every frame;
- **judged** (:class:`DetArm`): a frame with items at rest counts as right when every item is found with
  its class at IoU ≥ 0.5 and nothing else is reported; precision and recall over those frames' items
  (the items an arm with an empty battery misses count as missed);
- **drawn**: the adaptive arm's boxes, class names and scores drawn with OpenCV on its frames, with the
  level, battery and temperature in a band above the frame (nothing drawn under it), each label on a
  filled tag placed clear of the others: ``detections.mp4`` (every frame) and ``strip.png`` (six moments
  across the run) in the output folder, and a printed summary (levels used, detections, latency, energy,
  frames fully right beside per-item accuracy: the items found with their class).

The detector is the shipped one (:func:`adaptive_csp.detect.pretrained_detector`) or ``--model PATH``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptive_csp.apps.story import Arm, StoryRun, run_story

__all__ = ["DetFrame", "SceneBelt", "DetArm", "match", "draw", "label_layout", "detect_story", "run_detect", "HUD_H"]

STRIP = 6  # moments in strip.png
_PALETTE = [(80, 200, 255), (255, 160, 60), (90, 230, 90), (230, 90, 230), (60, 60, 255), (255, 255, 80),
            (160, 120, 255), (40, 180, 180), (200, 200, 200), (120, 255, 200)]  # BGR, one per class


@dataclass(frozen=True)
class DetFrame:
    image: np.ndarray  # H×W×3 uint8 BGR
    boxes: np.ndarray  # k×4 float32 xyxy in frame pixels (the items' true boxes)
    labels: np.ndarray  # k int64
    scored: bool  # items rest under the camera (every scene frame; never bare belt)
    item: int  # running scene number (-1 before the first)
    phase: str  # "gap" (bare belt between scenes), "dwell" (a scene), "idle" (the belt stands)
    label: None = None  # no single class: what the story records as a classifier's truth


class _NoItems:
    """Scene items that draw nothing: a bare belt from the same generator (the camera photometrics included)."""

    images = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    labels = torch.zeros(1, dtype=torch.int64)
    class_names = None


class SceneBelt:
    """An indexing belt of detection scenes (see the module docstring).

    items: anything :class:`~adaptive_csp.detect.scenes.SceneDataset` takes (default: the shipped
    Fashion-MNIST sample); size: the scene side (the detector's input size); zoom: camera pixels per
    scene pixel; noise: sensor noise (grey levels, per frame); dwell / gap: frames per scene / between.
    """

    def __init__(self, items: Any = None, size: int = 96, *, zoom: int = 3, seed: int = 0, min_items: int = 2,
                 max_items: int = 4, noise: float = 3.0, dwell: tuple[int, int] = (8, 16),
                 gap: tuple[int, int] = (2, 5)):
        from adaptive_csp.detect.scenes import SceneCfg, SceneDataset

        if items is None:
            from adaptive_csp.data.fashion_mnist import load_sample

            items = load_sample()
        if zoom < 1 or noise < 0 or not 1 <= dwell[0] <= dwell[1] or not 0 <= gap[0] <= gap[1]:
            raise ValueError(f"need zoom >= 1, noise >= 0, 1 <= dwell, 0 <= gap (got {zoom}, {noise}, {dwell}, {gap})")
        s = size / 96  # the scene generator's item sizes are for 96 px frames
        cfg = SceneCfg(size=size, min_items=min_items, max_items=max_items, item_scale=(0.8 * s, 1.7 * s),
                       backgrounds={"belt": 1.0})
        self.scenes = SceneDataset(items, 2**31 - 1, seed, cfg)
        self.bare = SceneDataset(_NoItems(), 2**31 - 1, seed + 1, cfg.model_copy(update={"min_items": 0, "max_items": 1}))
        self.class_names = self.scenes.class_names
        self.zoom, self.noise, self.dwell, self.gap = int(zoom), float(noise), dwell, gap
        self.rng = np.random.default_rng(seed)
        self.size = size * self.zoom
        self.scored_items = 0  # true items on the scored frames made so far (recall's denominator)

    def _camera(self, scene: torch.Tensor) -> np.ndarray:
        rgb = scene.permute(1, 2, 0).numpy()
        big = np.repeat(np.repeat(rgb[:, :, ::-1], self.zoom, 0), self.zoom, 1).astype(np.float32)
        big += self.rng.normal(0.0, self.noise, big.shape).astype(np.float32)
        return np.clip(big + 0.5, 0, 255).astype(np.uint8)

    def frames(self, count: int | None = None, busy: Callable[[int], bool] | None = None) -> Iterator[DetFrame]:
        """Yield ``count`` frames (forever for None); while ``busy(i)`` is False the belt stands (bare belt)."""
        made, scene, none = 0, 0, np.zeros((0, 4), np.float32)
        no_labels = np.zeros(0, np.int64)
        while count is None or made < count:
            bare = self.bare[made % self.bare.n][0]
            if busy is not None and not busy(made):
                yield DetFrame(self._camera(bare), none, no_labels, False, scene - 1, "idle")
                made += 1
                continue
            image, boxes, labels = self.scenes[scene]
            plan = ["gap"] * int(self.rng.integers(self.gap[0], self.gap[1] + 1))
            plan += ["dwell"] * int(self.rng.integers(self.dwell[0], self.dwell[1] + 1))
            for phase in plan:
                if count is not None and made >= count:
                    return
                if phase == "gap":
                    yield DetFrame(self._camera(bare), none, no_labels, False, scene - 1, phase)
                else:
                    self.scored_items += len(labels)
                    yield DetFrame(self._camera(image), boxes.numpy() * self.zoom, labels.numpy(), True, scene, phase)
                made += 1
            scene += 1


def match(d: Any, boxes: np.ndarray, labels: np.ndarray, iou: float = 0.5) -> tuple[int, int, int]:
    """``(true positives, false positives, missed)``: detections (best first) matched greedily to unmatched
    true boxes of their class at IoU ≥ ``iou`` (:func:`adaptive_csp.detect.metrics.greedy_match`)."""
    from adaptive_csp.detect.metrics import greedy_match

    tp = int(greedy_match(d.boxes, d.scores, d.labels, boxes, labels, iou).sum()) if len(d) else 0
    return tp, len(d) - tp, len(boxes) - tp


class DetArm(Arm):
    """A story arm judging Detections (see the module docstring); keeps the adaptive arm's last frame for drawing."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.tp = self.fp = self.fn = self.detections = 0
        self.frames_judged = self.frames_right = 0  # scored frames this arm answered, and those fully right
        self.latencies: list[float] = []
        self.last: tuple[DetFrame, Any] | None = None

    def judge(self, fr: DetFrame, d: Any) -> tuple[int, bool]:
        self.last = (fr, d)
        self.detections += len(d)
        self.latencies.append(d.latency_ms)
        if not fr.scored:
            return len(d), False
        tp, fp, fn = match(d, fr.boxes, fr.labels)
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn
        self.frames_judged += 1
        self.frames_right += fp == 0 and fn == 0
        return len(d), fp == 0 and fn == 0


HUD_H = 14  # the text band drawn above the frame (never over it)
_LABEL_SCALE = 0.35


def _free_spot(w: int, h: int, box: tuple[int, int, int, int], taken: list[tuple[int, int, int, int]],
               width: int, height: int) -> tuple[int, int]:
    """Top-left of a ``w × h`` label for ``box``: above it, else inside its top, else below it, else the
    first of those shifted down past the labels already placed; always inside the image."""
    x1, y1, x2, y2 = box
    cands = [(x1, y1 - h), (x1, y1), (x1, y2)]
    cands += [(x1, y + h + 1) for (_, y, _, _) in taken]
    for x, y in cands:
        x, y = min(max(0, x), max(0, width - w)), min(max(0, y), max(0, height - h))
        r = (x, y, x + w, y + h)
        if all(r[2] <= t[0] or r[0] >= t[2] or r[3] <= t[1] or r[1] >= t[3] for t in taken):
            return x, y
    x, y = cands[0]
    return min(max(0, x), max(0, width - w)), min(max(0, y), max(0, height - h))


def label_layout(d: Any, width: int, height: int) -> list[tuple[int, int, int, int, str]]:
    """Per detection of ``d``: ``(x, y, w, h, text)`` of its label tag in a ``width × height`` frame, placed
    (best score first) so that no two tags overlap (:func:`_free_spot`)."""
    import cv2

    taken: list[tuple[int, int, int, int]] = []
    out = []
    for det in d:
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        text = f"{det.class_name} {det.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, _LABEL_SCALE, 1)
        lw, lh = tw + 4, th + base + 3
        x, y = _free_spot(lw, lh, (x1, y1, x2, y2), taken, width, height)
        taken.append((x, y, x + lw, y + lh))
        out.append((x, y, lw, lh, text))
    return out


def draw(image: np.ndarray, d: Any, hud: str = "") -> np.ndarray:
    """A copy of the BGR ``image`` with ``d``'s boxes and labels (class, score) on filled tags that do not
    overlap (:func:`label_layout`), and ``hud`` in a band of its own above the frame (nothing under it)."""
    import cv2

    out = image.copy()
    h, w = out.shape[:2]
    dets = list(d)
    for det in dets:
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), _PALETTE[det.label % len(_PALETTE)], 1)
    for det, (x, y, lw, lh, text) in zip(dets, label_layout(dets, w, h)):  # after every box: no line crosses a tag
        cv2.rectangle(out, (x, y), (x + lw - 1, y + lh - 1), _PALETTE[det.label % len(_PALETTE)], -1)
        cv2.putText(out, text, (x + 2, y + lh - 4), cv2.FONT_HERSHEY_SIMPLEX, _LABEL_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    if not hud:
        return out
    band = np.zeros((HUD_H, w, 3), np.uint8)
    cv2.putText(band, hud, (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([band, out], axis=0)


class _Drawing:
    """Per step: draw the adaptive arm's frame, append it to the video, keep the strip's moments."""

    def __init__(self, out: Path, frames: int, fps: float, video: bool):
        import cv2

        self.cv2, self.out, self.frames = cv2, out, frames
        self.fps, self.want_video = fps, video
        self.writer: Any = None
        self.strip: dict[int, np.ndarray] = {}

    def __call__(self, run: StoryRun, k: int) -> None:
        arm = run.adaptive
        if arm.last is None or arm.dead:
            return
        fr, d = arm.last
        rec = arm.rec
        bat = rec["battery_pct"][-1]
        hud = (f"{_hhmm(run.t[k])} level {d.level}/{run.full_level}  {len(d)} found  "
               + (f"batt {bat:.0f}%  " if bat == bat else "") + f"{rec['temperature_c'][-1]:.0f}C")
        img = draw(fr.image, d, hud)
        if self.want_video:
            if self.writer is None:
                h, w = img.shape[:2]
                self.writer = self.cv2.VideoWriter(str(self.out / "detections.mp4"),
                                                   self.cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            self.writer.write(img)
        part = k * STRIP // self.frames  # the latest scene frame with detections in each sixth of the run
        if fr.scored and len(d):
            self.strip[part] = img

    def close(self) -> list[Path]:
        written = []
        if self.writer is not None:
            self.writer.release()
            written.append(self.out / "detections.mp4")
        if self.strip:
            imgs = [self.strip[i] for i in sorted(self.strip)]
            gap = np.full((imgs[0].shape[0], 4, 3), 255, np.uint8)
            row = np.concatenate([x for img in imgs for x in (img, gap)][:-1], axis=1)
            path = self.out / "strip.png"
            self.cv2.imwrite(str(path), row)
            written.append(path)
        return written


def _hhmm(t: float) -> str:
    m = int(t // 60)
    return f"{m // 60:d}:{m % 60:02d}"


def load_demo_detector(path: str | None) -> Any:
    """``--model PATH`` or the shipped detector, with a clear message when none is shipped."""
    from adaptive_csp.detect import load_detector, pretrained_detector

    if path:
        return load_detector(path)
    try:
        return pretrained_detector()
    except ValueError as e:
        raise ValueError(f"{e}. No detector is shipped with this install yet: train one "
                         "(adaptive-csp train-detector --out DIR) and pass --model DIR/<checkpoint>") from None


def detect_story(model: Any, policy: Any = None, scenario: Any = "conveyor", frames: int = 600, *,
                 engine: Any = "auto", seed: int = 0, content: bool = True, zoom: int = 3,
                 on_frame: Callable[[StoryRun, int], None] | None = None) -> tuple[StoryRun, SceneBelt]:
    """Play ``scenario`` with the detector ``model`` on a :class:`SceneBelt`; returns the run and the belt."""
    if (getattr(model, "meta", None) or {}).get("task") != "detect":
        raise ValueError("demo --task detect needs a detector (meta['task'] == 'detect'); got a classifier?")
    h, w = (int(v) for v in model.meta["preprocess"]["input_size"])
    belt = SceneBelt(size=min(h, w), zoom=zoom, seed=seed)
    run = run_story(policy, scenario, frames, model=model, engine=engine, seed=seed, content=content,
                    on_frame=on_frame, belt=belt, arm=DetArm)
    return run, belt


def detection_lines(run: StoryRun, belt: SceneBelt) -> list[str]:
    """Per arm: levels used, detections, latency, precision and recall (the summary's detection half)."""
    from adaptive_csp.util.stats import percentile

    out = ["  detection (IoU >= 0.5): a scene frame is 'right' above when every item is found, "
           "with its class, and nothing else"]
    for name, arm in run.arms.items():
        lv = Counter(x for x in arm.rec["level"] if x >= 0)
        top = sorted(lv.items(), key=lambda kv: (-kv[1], kv[0]))[:4]  # the most used, most first
        used = f"{len(lv)} of {run.full_level + 1} (" + ", ".join(
            f"L{k} {100 * v / max(1, sum(lv.values())):.0f}%" for k, v in top) + (", …)" if len(lv) > 4 else ")")
        lat = arm.latencies
        p50 = f"{percentile(lat, 50.0):.1f}" if lat else "n/a"
        p95 = f"{percentile(lat, 95.0):.1f}" if lat else "n/a"
        prec = 100 * arm.tp / (arm.tp + arm.fp) if arm.tp + arm.fp else float("nan")
        rec = 100 * arm.tp / belt.scored_items if belt.scored_items else float("nan")
        fr = 100 * arm.frames_right / arm.frames_judged if arm.frames_judged else float("nan")
        out.append(f"  {name}: levels used {used if lv else 'none'}; {arm.detections} detections on {len(lat)} frames; "
                   f"latency p50 {p50} ms, p95 {p95} ms (this CPU)")
        out.append(f"    frames fully right {fr:.1f} % of {arm.frames_judged} scored frames answered; items right "
                   f"(found with their class) {rec:.1f} % of {belt.scored_items}; precision {prec:.1f} %")
    return out


def run_detect(args: argparse.Namespace) -> int:
    """The CLI body of ``adaptive-csp demo --task detect`` (options from :func:`adaptive_csp.apps.demo.configure`)."""
    from adaptive_csp.apps.live import LiveView
    from adaptive_csp.apps.report import _Watch, export_telemetry, summary_lines

    if args.source is not None:
        raise ValueError("--source is not supported with --task detect yet: the detection demo plays the "
                         "simulated belt (drop --source)")
    model = load_demo_detector(args.model)
    frames = 600 if args.frames is None else args.frames
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    view = LiveView("adaptive-csp demo --task detect", total=frames, quiet=args.quiet)
    if view.quiet or not view.panel:
        print(f"adaptive-csp demo --task detect: policy {args.policy} vs static-max, scenario {args.scenario}, "
              f"{frames} frames", flush=True)
    watch, drawing = _Watch(view), _Drawing(out, frames, fps=10.0, video=not args.no_video)

    def on_frame(run: StoryRun, k: int) -> None:
        watch(run, k)
        drawing(run, k)

    try:
        run, belt = detect_story(model, args.policy, args.scenario, frames, engine=args.engine, seed=args.seed,
                                 content=not args.no_content, on_frame=on_frame)
    finally:
        view.close()
        written = drawing.close()
    for line in summary_lines(run) + detection_lines(run, belt):
        print(line)
    export_telemetry(run.adaptive.runner, args.telemetry)
    for p in written:
        print(f"  {p.name}: {p.resolve()}")
    return 0
