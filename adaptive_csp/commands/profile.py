"""``adaptive-csp profile``: measure a model's candidate levels on this device and keep the Pareto ladder
(:func:`adaptive_csp.train.profile.profile`); ``--latency-only`` re-measures an existing ladder
(:func:`~adaptive_csp.train.profile.latency_only`), ``--int8`` marks the rungs int8 runs faster at equal
accuracy (:func:`adaptive_csp.train.int8_profile.int8_profile`).  The method is in
:mod:`adaptive_csp.train.profile`'s docstring.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from adaptive_csp.commands.common import invocation
from adaptive_csp.train.profile import ProfileOptions, latency_only, plot, profile, profile_data

__all__ = ["configure", "run", "main"]


#: the flags of :class:`~adaptive_csp.train.profile.ProfileOptions` fields: (field, type, help); the
#: defaults are the options' own
_LADDER_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("min_rungs", int, "at least this many rungs: when the strict Pareto front is shorter (e.g. accuracies "
     "tied), rungs within --tolerance points of the front are added, spread in log latency, "
     "each no less accurate than the rung below it"),
    ("max_rungs", int, "at most this many rungs per latency key's front (evenly spread in log latency)"),
    ("tolerance", float, "accuracy points a --min-rungs rung may lie below the most accurate candidate at most "
     "as slow"),
    ("screen_val", int, "validation images (a seeded random subset) each candidate is screened on"),
    ("screen_calib", int, "training images for each candidate's BN re-estimation while screening"),
    ("screen_margin", float, "a candidate is refined when no candidate at most as slow (screening latency: torch, "
     "batch 1) screened more than this many points better"),
    ("refine", int, "refine at most N candidates (each key's screened front first, the rest near it spread "
     "in latency): BN from --calib-images images, accuracy on the whole validation split"),
    ("calib_images", int, "training images for the refined candidates' BN re-estimation"),
    ("max_candidates", int, "measure at most N candidates (evenly spread; each width's ends always kept)"),
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="model .safetensors (with its .json)")
    p.add_argument("--out", default=None, help="output checkpoint path (without suffix); required unless "
                   "--latency-only, which writes the checkpoint's own JSON when --out is not given")
    p.add_argument("--latency-only", action="store_true",
                   help="re-measure the existing ladder's latencies only (no accuracy, no BN; seconds) and "
                   "store them in the model JSON (the weights file is not rewritten)")
    p.add_argument("--int8", action="store_true",
                   help="measure every rung in int8 on ONNX Runtime (static QDQ) against float32 and mark those "
                        "faster at batch 1 and 32 at equal accuracy (--int8-tol); writes the ladder and the "
                        "calibration images into the checkpoint (its own files, or --out)")
    p.add_argument("--int8-calib", type=int, default=256, help="training images the int8 rungs calibrate on")
    p.add_argument("--int8-tol", type=float, default=0.002,
                   help="largest validation-accuracy loss an int8 rung may have (a fraction: 0.002 = 0.2 pt)")
    p.add_argument("--latency-cache", action="store_true",
                   help="with --latency-only: store in this device's latency cache (what runner.calibrate() "
                   "reads) instead of the model JSON")
    p.add_argument("--engines", default="auto,torch",
                   help="engines to time, comma-separated (auto = the runner's choice; torch always added "
                   "for a full profile)")
    p.add_argument("--batches", default="1,32", help="batch sizes to time with --latency-only")
    p.add_argument("--latency-rounds", type=int, default=None,
                   help="interleaved timing rounds (default 9 at batch 1, 5 above)")
    p.add_argument("--latency-stat", choices=("median", "min"), default="min",
                   help="per level, the fastest interleaved round (the level's own cost "
                   "on a CPU other processes share) or the median one")
    p.add_argument("--plot", default=None, help="write accuracy-vs-latency PNG here")
    p.add_argument("--threads", type=int, default=None, help="threads for BN calibration and accuracy")
    p.add_argument("--latency-threads", type=int, default=None, help="threads for the latency measurements")
    for name, kind, text in _LADDER_FLAGS:
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(ProfileOptions, name), help=text)
    p.add_argument("--records", default=None, help="write every candidate's measurements (JSON) here")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="image folder (one sub-folder per class); default: the folder the model was trained "
                   "on (its JSON records it), Fashion-MNIST for a Fashion-MNIST model")
    p.add_argument("--val", default=None, metavar="DIR", help="validation folder (default: the one training "
                   "used, else the seeded split of the data that training held out)")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST folder (default: the Debian package's)")


def _csv(text: str, kind: type = str) -> list:
    try:
        out = [kind(t.strip()) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"expected a comma-separated list, got {text!r}") from None
    if not out:
        raise ValueError(f"expected a comma-separated list, got {text!r}")
    return out


def _run_latency_only(a: argparse.Namespace) -> int:
    if a.threads:
        torch.set_num_threads(a.threads)
    command = invocation("profile", a)
    ladder, path = latency_only(a.checkpoint, engines=_csv(a.engines), batches=_csv(a.batches, int),
                                threads=a.latency_threads, rounds=a.latency_rounds, out=a.out,
                                to_cache=a.latency_cache, command=command, stat=a.latency_stat)
    keys = sorted(set().union(*(r.latency for r in ladder.rungs)))
    print(f"latencies of {len(ladder)} rungs (ms) -> {path}")
    print("  " + f"{'level':<36}" + "".join(f"{k:>11}" for k in keys))
    for r in ladder.rungs:
        print(f"  {r.level.key:<36}" + "".join(f"{r.latency.get(k, float('nan')):11.3f}" for k in keys))
    for k in keys:
        eng, _, b = k.partition(":b")
        v = ladder.view(eng, int(b))
        print(f"  view {k}: rungs {list(v.parent_indices)}")
    return 0


def _run_int8(a: argparse.Namespace) -> int:
    """``--int8``: :func:`adaptive_csp.train.int8_profile.int8_profile` on the validation split; the ladder
    and calibration images written into the checkpoint (``--out``: a copy)."""
    from adaptive_csp.models.pretrained import load_model, save_model
    from adaptive_csp.runtime.calibrate import device_id
    from adaptive_csp.train.int8_profile import calib_images, int8_profile

    if a.threads:
        torch.set_num_threads(a.threads)
    model = load_model(a.checkpoint)
    train, val = profile_data(model, a)
    model.int8_calib = calib_images(train.images.numpy(), min(a.int8_calib, len(train)))
    threads = int(a.latency_threads or 1)
    t0 = time.perf_counter()
    ladder, rows = int8_profile(model, model.int8_calib, val.normalized().numpy(), val.labels.numpy(),
                                threads=threads, rounds=a.latency_rounds, stat=a.latency_stat, acc_tol=a.int8_tol)
    model.levels = ladder
    model.meta.setdefault("profile", {})["int8"] = {
        "calib_images": len(model.int8_calib), "calib_from": f"{train.info.get('name', 'training data')}, seeded",
        "val_images": len(val), "acc_tol": a.int8_tol, "device": device_id().split("|")[0], "threads": threads,
        "joined": [r["level"] for r in rows if r["joined"]], "seconds": round(time.perf_counter() - t0, 1),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": invocation("profile", a)}
    path = save_model(model, a.out or a.checkpoint)
    print(f"int8 on ONNX Runtime, {threads} thread(s), accuracy on {len(val)} validation images -> {path}")
    print("  level  fp32 b1 ms  int8 b1 ms  fp32 b32 ms  int8 b32 ms  fp32 acc %  int8 acc %  int8 joins")
    for r in rows:
        print(f"  {r['level']:5d} {r['fp32_b1_ms']:11.3f} {r['int8_b1_ms']:11.3f} {r['fp32_b32_ms']:12.3f} "
              f"{r['int8_b32_ms']:12.3f} {100 * r['fp32_acc']:11.2f} {100 * r['int8_acc']:11.2f}  "
              f"{'yes' if r['joined'] else 'no'}")
    for b in (1, 32):
        print(f"  view ort:b{b}: rungs {list(ladder.view('onnxruntime', b).parent_indices)}")
    return 0


def run(a: argparse.Namespace) -> int:
    from adaptive_csp.models.pretrained import load_model, save_model

    if a.latency_cache and not a.latency_only:
        print("adaptive-csp profile: --latency-cache needs --latency-only", file=sys.stderr)
        return 2
    if a.latency_only:
        return _run_latency_only(a)
    if a.int8:
        return _run_int8(a)
    if a.out is None:
        print("adaptive-csp profile: a full profile needs --out (only --latency-only writes the checkpoint's "
              "own JSON)", file=sys.stderr)
        return 2
    if a.threads:
        torch.set_num_threads(a.threads)
    model = load_model(a.checkpoint)
    train, val = profile_data(model, a)
    t0 = time.perf_counter()
    ladder, records = profile(model, train, val, _options(a))
    refined = sum("val_acc" in r for r in records)
    meta = {"profile": {"candidates": len(records), "refined": refined, "device": ladder.rungs[-1].extra["device"],
                        "data": train.info.get("source"), "train_images": len(train), "val_images": len(val),
                        "seconds": round(time.perf_counter() - t0, 1),
                        "pareto_on": "every latency key (Rung.latency); order: latency_ms_b32",
                        "time": time.strftime("%Y-%m-%d %H:%M:%S")}}
    path = save_model(model, a.out, **meta)
    print(f"ladder of {len(ladder)} rungs from {len(records)} candidates ({refined} refined on {len(val)} "
          f"validation images of {train.info.get('name', '?')}) in {meta['profile']['seconds']:.0f} s -> {path}")
    for r in ladder.rungs:
        print(f"  {r.level.key:<30} MACs {r.macs / 1e6:6.2f}M  b1 {r.latency_ms:6.3f} ms  "
              f"b32 {r.latency_ms_b32:7.3f} ms  val {100 * r.accuracy:5.2f}%")
    if a.records:
        Path(a.records).write_text(json.dumps([{**r, "level": r["level"].key} for r in records], indent=1))
    if a.plot:
        plot(records, a.plot)
        print(f"plot -> {a.plot}")
    return 0


def main(argv: list[str]) -> int:
    """Legacy ``main(argv)`` entry."""
    p = argparse.ArgumentParser(prog="adaptive-csp profile",
                                description="Measure candidate levels here; keep the Pareto ladder.")
    configure(p)
    return run(p.parse_args(argv))


def _options(a: argparse.Namespace) -> ProfileOptions:
    return ProfileOptions(**{name: getattr(a, name) for name, _, _ in _LADDER_FLAGS},
                          latency_threads=a.latency_threads, engines=_csv(a.engines),
                          latency_rounds=a.latency_rounds, latency_stat=a.latency_stat)
