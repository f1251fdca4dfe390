"""Test accuracy of the shipped model at every ladder level, shared vs individually trained weights,
and CSP vs its plain counterpart.  Usage::

    python benchmarks/accuracy.py [--runs runs] [--write-metadata]
    python benchmarks/accuracy.py --runs runs/base30 --shared runs/gpu1/shared_r1/model.safetensors

Needs the Debian package ``dataset-fashion-mnist`` (test set) and, for the baseline rows, the
checkpoints written by the training commands printed below (same recipe and epochs as the shipped
model).  ``--write-metadata`` stores each rung's test accuracy in the shipped model's JSON (after the
ladder was chosen on the validation split; the test set never selects anything).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians, reexec_with_malloc_tunables  # noqa: E402

reexec_with_malloc_tunables()

import torch  # noqa: E402

from adaptive_csp.data.fashion_mnist import load_split  # noqa: E402
from adaptive_csp.levels import Level, LevelLadder, Rung  # noqa: E402
from adaptive_csp.models.pretrained import ASSETS, DEFAULT_MODEL, load_model, pretrained, save_model  # noqa: E402
from adaptive_csp.train.sandwich import evaluate  # noqa: E402


def baselines(model, runs: Path) -> dict[str, tuple[Level, str]]:
    """The cheapest, a middle and the full level, each to be trained alone with the shipped recipe.

    A baseline already trained in ``runs`` brings its own level (``--static-level`` in its metadata), so
    a middle level chosen before the ladder was profiled is compared at that level; otherwise the
    cheapest, middle and full rung."""
    lad = model.levels
    out = {}
    for name, i in (("static_cheap", 0), ("static_mid", len(lad) // 2), ("static_full", len(lad) - 1)):
        lv = lad[i]
        meta = runs / name / "model.json"
        if meta.exists():
            lv = Level.parse(json.loads(meta.read_text())["train"]["cfg"]["static_level"])
        out[name] = (lv, f"--model {model.cfg.name} --static-level '{json.dumps(lv.to_dict())}'")
    return out


def _load(runs: Path, name: str):
    path = runs / name / "model.safetensors"
    if not path.exists():
        return None
    return load_model(path)


def shared_vs_alone(model, runs: Path, test, train) -> dict[str, float]:
    """Print shared-weight vs alone test accuracy at each baseline's level; return the gaps by baseline.

    Levels off the model's ladder get BN statistics re-estimated on 2 048 training images first."""
    epochs = len(model.meta["train"]["history"])  # epochs run (a budget or a resume may differ from cfg)
    print(f"\n### Shared weights ({epochs} epochs) vs each level trained alone (same recipe; epochs per row)")
    print("| level | on ladder | shared % | individual % | shared − individual |")
    print("|---|---|---|---|---|")
    calib_idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(1234))[:2048]
    calib = [train.normalized(calib_idx[i:i + 256]).contiguous(memory_format=torch.channels_last)
             for i in range(0, 2048, 256)]
    gaps = {}
    for name, (lv, cmd) in baselines(model, runs).items():
        on = lv in list(model.levels)
        if not on and lv.key not in model.bn_stats:
            model.calibrate_bn([lv], calib)
        shared = evaluate(model, test, lv)
        base = _load(runs, name)
        if base is None:
            print(f"| `{lv.key}` | {'yes' if on else 'no'} | {100 * shared:.2f} | not trained: "
                  f"`adaptive-csp train --out {runs}/{name} --epochs {epochs} {cmd}` | |")
            continue
        ind = evaluate(base, test, lv)
        gaps[name] = shared - ind
        print(f"| `{lv.key}` | {'yes' if on else 'no'} | {100 * shared:.2f} | {100 * ind:.2f} "
              f"({len(base.meta['train']['history'])} epochs) | {100 * (shared - ind):+.2f} |")
    return gaps


@dataclass
class Shipped:
    """The shipped model measured at every rung: batch-1 and batch-32 ms, test accuracy."""

    b1: list[float]
    b32: list[float]
    accs: list[float]
    threads: int


def measure_shipped(model, test) -> Shipped:
    n = len(model.levels)
    x1 = torch.randn(1, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    x32 = torch.randn(32, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    model.prepare()
    with torch.inference_mode():
        b1 = interleaved_medians([lambda i=i: model(x1, i) for i in range(n)], 9, 20)
        b32 = interleaved_medians([lambda i=i: model(x32, i) for i in range(n)], 7, 5)
    accs = [evaluate(model, test, i) for i in range(n)]
    return Shipped(b1=b1, b32=b32, accs=accs, threads=torch.get_num_threads())


def print_shipped(model, s: Shipped) -> None:
    print(f"### Shipped model `{DEFAULT_MODEL}` — Fashion-MNIST test set (10 000 images), {s.threads} threads")
    print("| rung | level | MACs (M) | params (k) | b1 ms | b32 ms | b32 vs full | val acc % | test acc % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(model.levels.rungs):
        print(f"| {i} | `{r.level.key}` | {r.macs / 1e6:.2f} | {r.params / 1e3:.0f} | {s.b1[i]:.3f} | {s.b32[i]:.2f} | "
              f"{s.b32[i] / s.b32[-1]:.3f} | {100 * r.accuracy:.2f} | {100 * s.accs[i]:.2f} |")


def csp_vs_plain(runs: Path, test) -> list[tuple[str, object, tuple[int, int, float] | None]]:
    """Per baseline (CSP and plain, full level, trained alone): (run name, model, (MACs, params, test acc));
    model and figures None when it is not trained."""
    out = []
    for name in ("static_full", "plain_small"):
        m = _load(runs, name)
        if m is None:
            out.append((name, None, None))
            continue
        full = m.full_level()
        out.append((name, m, (m.macs(full), m.params(full), evaluate(m, test, full))))
    return out


def print_csp_vs_plain(rows: list[tuple[str, object, tuple[int, int, float] | None]]) -> None:
    print("\n### CSP vs plain counterpart (full level, trained alone with the same recipe)")
    print("| model | MACs (M) | params (k) | test acc % |")
    print("|---|---|---|---|")
    for name, m, r in rows:
        if m is None:
            print(f"| {name} | | | not trained |")
            continue
        print(f"| {m.cfg.name} ({name}) | {r[0] / 1e6:.2f} | {r[1] / 1e3:.0f} | {100 * r[2]:.2f} |")


def print_targets(model, s: Shipped, gaps: dict[str, float], rows: list[tuple[int, int, float]]) -> None:
    """The targets, each MET or MISSED, from the figures above (``rows``: the trained baselines' figures)."""
    n = len(model.levels)
    b32 = s.b32
    print("\n### Targets")
    full_acc, cheap_acc = s.accs[-1], s.accs[0]
    cheap_lat = b32[0] / b32[-1]
    print(f"- full level ≥ 94.0 %: {'MET' if full_acc >= 0.94 else 'MISSED'} ({100 * full_acc:.2f} %)")
    print(f"- cheapest ≥ 91.5 % at ≤ 0.10× full latency (b32): "
          f"{'MET' if cheap_acc >= 0.915 and cheap_lat <= 0.10 else 'MISSED'} ({100 * cheap_acc:.2f} %, {cheap_lat:.3f}×)")
    val_accs = [r.accuracy for r in model.levels.rungs]
    mono = b32 == sorted(b32) and val_accs == sorted(val_accs)
    print(f"- ≥ 6 rungs, monotone in latency (b32, this run) and validation accuracy: "
          f"{'MET' if n >= 6 and mono else 'MISSED'} ({n} rungs; b32 sorted: {b32 == sorted(b32)}, "
          f"val sorted: {val_accs == sorted(val_accs)})")
    shipped = sum(f.stat().st_size for f in ASSETS.glob(f"{DEFAULT_MODEL}.*"))
    print(f"- shipped weights ≤ 8 MB: {'MET' if shipped <= 8e6 else 'MISSED'} ({shipped / 1e6:.2f} MB)")
    if gaps:
        worst = min(gaps.values())
        print(f"- shared within 1.0 point of individual at each level: {'MET' if worst >= -0.01 else 'MISSED'} "
              f"(worst {100 * worst:+.2f})")
    if len(rows) == 2:
        (mc, _, ac), (mp, _, ap) = rows
        print(f"- CSP ≥ 20 % fewer MACs at ≤ 0.5 point lower accuracy than plain: "
              f"{'MET' if mc <= 0.8 * mp and ac >= ap - 0.005 else 'MISSED'} "
              f"({100 * (1 - mc / mp):.1f} % fewer MACs, {100 * (ac - ap):+.2f} points)")


def write_metadata(accs: list[float]) -> None:
    """Store each rung's test accuracy in the shipped model's JSON."""
    fresh = pretrained()
    fresh.levels = LevelLadder(Rung(**{**r.__dict__, "extra": {**r.extra, "test_accuracy": accs[i]}})
                               for i, r in enumerate(fresh.levels.rungs))
    save_model(fresh, ASSETS / DEFAULT_MODEL)
    print(f"\nwrote test accuracies into {ASSETS / DEFAULT_MODEL}.json")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", default="runs", help="folder with the baseline checkpoints")
    p.add_argument("--write-metadata", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--shared", default=None, metavar="CKPT",
                   help="only the shared-vs-alone table, for this checkpoint instead of the shipped model")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    runs = Path(a.runs)
    test, train = load_split("test"), load_split("train")
    if a.shared:
        shared_vs_alone(load_model(a.shared), runs, test, train)
        return
    model = pretrained()
    shipped = measure_shipped(model, test)
    print_shipped(model, shipped)
    gaps = shared_vs_alone(model, runs, test, train)
    alone = csp_vs_plain(runs, test)
    print_csp_vs_plain(alone)
    print_targets(model, shipped, gaps, [r for _, m, r in alone if m is not None])
    if a.write_metadata:
        write_metadata(shipped.accs)


if __name__ == "__main__":
    main()
