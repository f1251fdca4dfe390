"""``adaptive-csp export``: one or every ladder level to ONNX and TorchScript, each with a JSON sidecar.

    adaptive-csp export --out exported/                 # every level of the shipped model
    adaptive-csp export --model run/ckpt --level -1 --format onnx
    adaptive-csp export --model runs/det/model --out det/   # a detector checkpoint: output "detections"
    adaptive-csp export --bundle bundle/                # a bundle: runs on onnxruntime + numpy, no torch

Each level ``i`` becomes ``<out>/level<i>.onnx`` (float32, dynamic batch) and/or ``level<i>.pt``
(TorchScript), and ``level<i>.json``: the level, its ladder index and measured rung, class names,
preprocessing (input size, colour mode, mean/std) and the input / output names, for users who deploy with
their own runtime.  ``--bundle DIR`` writes a bundle instead (:mod:`adaptive_csp.runtime.bundle`): every
level, the ladder, the preprocessing, the classes, a detector's post-processing, a default policy
(``--policy``) and a manifest of SHA-256 checksums, for ``AdaptiveRunner("DIR")`` on a device without torch.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="default",
                        help="checkpoint path (.safetensors + .json; a classifier or a detector) or 'default' "
                             "for the shipped classifier")
    parser.add_argument("--out", default=None, help="output folder for per-level files (created if missing)")
    parser.add_argument("--bundle", default=None, metavar="DIR",
                        help="write a bundle to DIR instead (every level; runs without torch)")
    parser.add_argument("--policy", default="balanced",
                        help="the bundle's default policy: a preset name or a TOML file")
    parser.add_argument("--level", type=int, action="append", default=None,
                        help="ladder index to export (repeatable; negative counts from the end); default every level")
    parser.add_argument("--format", choices=("onnx", "torchscript", "both", "onnx-frame"), default="both",
                        help="file format(s); onnx-frame: ONNX that takes the resized uint8 BGR frame (N×H×W×3) "
                        "and does the preprocessing and softmax in the graph")


def run(args: argparse.Namespace) -> int:
    from adaptive_csp.engines.export import export_levels

    if (args.out is None) == (args.bundle is None):
        print("adaptive-csp export: give --out DIR (per-level files) or --bundle DIR", file=sys.stderr)
        return 2
    if args.bundle is not None:
        return _bundle(args)
    try:
        model = load_any(args.model)
        formats = {"both": ("onnx", "torchscript"), "onnx-frame": ("onnx", "onnx-frame")}.get(args.format,
                                                                                         (args.format,))
        written = export_levels(model, args.out, args.level, formats)
    except (ValueError, OSError) as e:
        print(f"adaptive-csp export: {e}", file=sys.stderr)
        return 2
    for side in written:
        files = sorted(p.name for p in side.parent.glob(side.stem + ".*"))
        print(f"{side.stem}: {', '.join(files)}")
    print(f"exported {len(written)} level(s) to {args.out}")
    return 0


def _bundle(args: argparse.Namespace) -> int:
    import shlex

    from adaptive_csp.engines.bundle_export import export_bundle

    if args.level or args.format != "both":
        print("adaptive-csp export: --bundle holds every level as ONNX (no --level / --format)", file=sys.stderr)
        return 2
    try:
        model = load_any(args.model)
        out = export_bundle(model, args.bundle, policy=args.policy,
                            source={"checkpoint": args.model,
                                    "command": "adaptive-csp export " + shlex.join(sys.argv[2:])})
    except (ValueError, OSError) as e:
        print(f"adaptive-csp export: {e}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"bundle of {len(model.levels)} levels ({size / 2**20:.1f} MiB) -> {out}; run it with "
          f"AdaptiveRunner({str(out)!r}) (onnxruntime + numpy, no torch)")
    return 0


def load_any(path: str) -> object:
    """``"default"``: the shipped classifier; else the checkpoint at ``path``, of either task (its metadata
    says which: :func:`adaptive_csp.models.factory.load_model`)."""
    from adaptive_csp.models.factory import load_model, pretrained

    return pretrained() if path == "default" else load_model(path)
