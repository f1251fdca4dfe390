"""Preprocessing cost per frame: 640×480 and 1920×1080 BGR uint8 frames to the classifier's 28×28 grey input
and the detector's 96×96 RGB input, the whole ``Preprocessor.array`` (resize, colour, normalisation), warm,
interleaved, medians, 1 thread (issue #25).

    python benchmarks/preprocess.py [--rounds 31]

Rows:
- ``before``: the resize before #25 — centre crop to integer multiples of the input, integer INTER_AREA (it
  dropped up to 70 % of a frame between 1× and 2× the input); emulated here, then the same normalisation.
- ``cv2 INTER_AREA``: ``cv2.resize`` of the whole frame with non-integer INTER_AREA (exact, the reference).
- ``box + linear``: integer INTER_AREA to the nearest size ≥ the input, then ``INTER_LINEAR`` (not exact:
  the max difference to the reference on these frames is printed).
- ``after``: what ships: ``Preprocessor.array`` in stretch mode (the exact area average from a summed-area
  table), and in letterbox mode.
Frames are a smooth gradient plus sensor noise (sd 4), like a camera's, so the max-difference column means
something for real frames.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def camera_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / w * 200, y / h * 180, (x + y) / (w + h) * 220], axis=2) + 20
    return np.clip(base + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)


def measure(frame: np.ndarray, spec: dict, rounds: int) -> tuple[list[float], float, float]:
    """Medians (ms) of the five rows for one frame and input, and the two max differences."""
    import cv2

    from adaptive_csp.runtime import Preprocessor
    from adaptive_csp.util.timing import interleaved_medians

    fh, fw = frame.shape[:2]
    h, w = spec["input_size"]
    pre = Preprocessor(spec)
    box = Preprocessor(spec, resize="letterbox")
    raw = Preprocessor({**spec, "mean": [0.0] * spec["in_chans"], "std": [1.0] * spec["in_chans"],
                        "scale": 1.0})  # input = pixel values, for the difference columns
    kh, kw = fh // h, fw // w
    y0, x0 = (fh - kh * h) // 2, (fw - kw * w) // 2
    k = min(fh // h, fw // w)

    def before():
        crop = frame[y0:y0 + kh * h, x0:x0 + kw * w]
        return pre.array(cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA))

    def exact():
        return pre.array(cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA))

    def box_lin(p=pre):
        near = cv2.resize(frame, (fw // k, fh // k), interpolation=cv2.INTER_AREA) if k > 1 else frame
        return p.array(cv2.resize(near, (w, h), interpolation=cv2.INTER_LINEAR))

    t = interleaved_medians([before, exact, box_lin, lambda: pre.array(frame), lambda: box.array(frame)],
                            rounds, 20, 10)
    ref = raw.array(cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA))[0]
    return t, float(np.abs(box_lin(raw)[0] - ref).max()), float(np.abs(raw.array(frame)[0] - ref).max())


def main(argv: list[str] | None = None) -> int:
    import cv2

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=31)
    a = p.parse_args(argv)
    cv2.setNumThreads(1)
    specs = {"28×28 grey": {"input_size": [28, 28], "in_chans": 1, "color": "grey", "mean": [0.286], "std": [0.353]},
             "96×96 RGB": {"input_size": [96, 96], "in_chans": 3, "color": "rgb", "mean": [0.0] * 3, "std": [1.0] * 3}}
    print(f"ms per frame, medians of {a.rounds} interleaved rounds × 20 calls, 1 thread; "
          "max |diff| to cv2 INTER_AREA of the whole frame, in 0..255 pixel units")
    print("| frame | input | before (crop) | cv2 INTER_AREA | box + linear | after: stretch | after: letterbox | "
          "after / before | box+linear max diff | after max diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for fh, fw in ((480, 640), (1080, 1920)):
        frame = camera_frame(fh, fw)
        for name, spec in specs.items():
            t, d_box, d_after = measure(frame, spec, a.rounds)
            print(f"| {fw}×{fh} | {name} | {t[0]:.3f} | {t[1]:.3f} | {t[2]:.3f} | {t[3]:.3f} | {t[4]:.3f} | "
                  f"{t[3] / t[0]:.2f} | {d_box:.2f} | {d_after:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
