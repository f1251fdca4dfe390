"""The namer's fusion weight: mAP@.5 / mAP on VALIDATION scenes at the cheapest and full rungs, for the
detector naming its own boxes and for the namer with the detector's class scores at each weight
(:meth:`adaptive_csp.runtime.namer.CropNamer.names`; 0 = the namer alone).  Multi-label at score 0.05, as
``benchmarks/detect.py``; the detector runs in torch on the letterboxed scene inputs (no runner, no timing).
This is how the shipped ``detector_weight`` was chosen: validation items only, never test.

    python benchmarks/namer_weight.py                        # 300 scenes, weights 0 0.5 1 2
    python benchmarks/namer_weight.py --flip                 # the namer mirror-averaged (CropNamer flip)
"""

from __future__ import annotations

import argparse
import sys


def evaluate(det, namer_model, val, weights, levels, flip: bool = False) -> dict[int, dict[str, dict[str, float]]]:
    import torch

    from adaptive_csp.detect.boxes import postprocess
    from adaptive_csp.detect.metrics import coco_map
    from adaptive_csp.runtime.namer import CropNamer
    from adaptive_csp.train.detect import detect_batches
    from adaptive_csp.train.detect_rescore import named_map

    namers = {w: CropNamer(namer_model, det.levels.costs, "torch", detector_weight=w, flip=flip) for w in weights}
    res = {}
    for li in levels:
        with torch.no_grad():
            out = torch.cat([det(x, det.levels[li]).float() for x, _ in detect_batches(val, det, 64)])
        row = {"detector": coco_map(val, [tuple(t.numpy() for t in r)
                                         for r in postprocess(out, 0.05, 0.5, 100, multi_label=True)])}
        for w, nm in namers.items():
            row[f"weight {w:g}"] = named_map(det, nm, val, li)
        res[li] = row
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=300, help="validation scenes (validation items)")
    p.add_argument("--seed", type=int, default=4242)
    p.add_argument("--namer", default="csp_namer_scenes")
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--flip", action="store_true", help="the namer averages each crop with its mirror image")
    a = p.parse_args(argv)
    import torch

    from adaptive_csp.detect.checkpoint import pretrained_detector
    from adaptive_csp.detect.scenes import fashion_mnist_scenes, varied_cfg
    from adaptive_csp.models.factory import pretrained

    torch.set_num_threads(a.threads)
    det = pretrained_detector().eval()
    val = fashion_mnist_scenes("val", a.scenes, a.seed, varied_cfg(int(det.meta["preprocess"]["input_size"][0])))
    last = len(det.levels) - 1
    res = evaluate(det, pretrained(a.namer), val, a.weights, [0, last], a.flip)
    cols = list(res[0])
    print(f"{a.scenes} validation scenes ({sum(len(b) for b in val.boxes)} items, seed {a.seed}); namer {a.namer}"
          f"{' mirror-averaged' if a.flip else ''}; mAP@.5 / mAP@[.5:.95]")
    print("| rung | " + " | ".join(cols) + " |\n|---|" + "---:|" * len(cols))
    for li, name in ((0, "cheapest"), (last, "full")):
        print(f"| {name} | " + " | ".join(f"{res[li][c]['map50']:.3f} / {res[li][c]['map']:.3f}" for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
