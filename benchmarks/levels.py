"""Per preset and ladder level: MACs, params, latency (batch 1 / 32), ratios to full, peak activations,
and elastic-vs-static latency.  Usage: ``python benchmarks/levels.py [--quick]``.

The small presets run at 28×28, batch 1 and 32.  ImageNet presets run at 128×128, batch 1 and 8, so
the whole script fits in a few minutes on 2 cores (their MACs at 256 px are printed for the paper
comparison).  The shipped model (trained ladder) is measured first, under its preset's name.
"""

from __future__ import annotations

import argparse
import sys
import weakref
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians, reexec_with_malloc_tunables  # noqa: E402

reexec_with_malloc_tunables()

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_flatten  # noqa: E402

from adaptive_csp.models import create_model  # noqa: E402
from adaptive_csp.models.pretrained import pretrained  # noqa: E402


class PeakActivations(TorchDispatchMode):
    """Peak bytes of live tensors created during a forward (weights excluded)."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self.seen: set[int] = set()

    def _free(self, key: int, n: int) -> None:
        self.live -= n
        self.seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                key = t.untyped_storage().data_ptr()
                if key not in self.seen:
                    n = t.untyped_storage().nbytes()
                    self.seen.add(key)
                    self.live += n
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(t, self._free, key, n)
        return out


def peak_activation_bytes(net: torch.nn.Module, x: torch.Tensor) -> int:
    with torch.inference_mode(), PeakActivations() as pm:
        net(x)
    return pm.peak


def bench_model(title: str, model, batches: tuple[int, ...], size: tuple[int, int], rounds: int, iters: int,
                targets: bool) -> None:
    model.eval().prepare()
    n = len(model.levels)
    xs = {b: torch.randn(b, model.cfg.in_chans, *size).contiguous(memory_format=torch.channels_last)
          for b in batches}
    macs = [model.macs(i, size) for i in range(n)]
    params = [model.params(i) for i in range(n)]
    lat = {}
    with torch.inference_mode():
        for b in batches:
            lat[b] = interleaved_medians([lambda i=i, b=b: model(xs[b], i) for i in range(n)], rounds, iters)
    peak = [peak_activation_bytes(model.prepared(i), xs[batches[-1]]) for i in range(n)]
    b_hi = batches[-1]
    print(f"\n### {title} — {size[0]}×{size[1]}, {torch.get_num_threads()} threads")
    print(f"| level | MACs (M) | params (k) | b1 ms | b{b_hi} ms | lat ratio b{b_hi} | MAC ratio | "
          f"lat/MAC | peak act. b{b_hi} (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    ok_ratio, worst = True, 0.0
    for i in range(n):
        lr = lat[b_hi][i] / lat[b_hi][-1]
        mr = macs[i] / macs[-1]
        worst = max(worst, lr / mr)
        print(f"| {i} `{model.levels[i].key}` | {macs[i] / 1e6:.2f} | {params[i] / 1e3:.0f} | {lat[1][i]:.3f} | "
              f"{lat[b_hi][i]:.2f} | {lr:.3f} | {mr:.3f} | {lr / mr:.2f} | {peak[i] / 2**20:.2f} |")
        ok_ratio &= lr / mr <= 1.25
    # elastic (prepared) vs exported static, and the unprepared slicing path, per level
    print("\nelastic forward / exported static module (median of interleaved runs):")
    worst_el = 0.0
    with torch.inference_mode():
        for b in batches:
            statics = [model.export(i) for i in range(n)]
            el = interleaved_medians([lambda i=i, b=b: model(xs[b], i) for i in range(n)], rounds, iters)
            st = interleaved_medians([lambda i=i, b=b, s=statics: s[i](xs[b]) for i in range(n)], rounds, iters)
            ratios = [e / s for e, s in zip(el, st)]
            worst_el = max(worst_el, *ratios)
            print(f"  batch {b}: " + "  ".join(f"{r:.3f}" for r in ratios))
        lv_full = model.levels[-1]
        sl = interleaved_medians([lambda: model._features_sliced(xs[b_hi], lv_full),
                                  lambda: model.prepared(-1).forward_features(xs[b_hi])], rounds, iters)
    print(f"  (for reference: unprepared slicing path / prepared at full, batch {b_hi}: {sl[0] / sl[1]:.2f})")
    if targets:
        cheap = lat[b_hi][0] / lat[b_hi][-1]
        print(f"\ntargets: lat/MAC ≤ 1.25 at every level (b{b_hi}): {'MET' if ok_ratio else 'MISSED'} "
              f"(worst {worst:.2f}); cheapest ≤ 0.10× full (b{b_hi}): {'MET' if cheap <= 0.10 else 'MISSED'} "
              f"({cheap:.3f}); elastic ≤ 1.03× static: {'MET' if worst_el <= 1.03 else 'MISSED'} "
              f"(worst {worst_el:.3f})")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="fewer repeats, small presets only")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    rounds, iters = (5, 5) if a.quick else (9, 10)
    torch.manual_seed(0)
    shipped = pretrained()
    bench_model(f"{shipped.cfg.name} (shipped ladder, trained weights)", shipped, (1, 32),
                tuple(shipped.cfg.input_size), rounds, iters, True)
    bench_model("plain_small (default ladder, random weights)", create_model("plain_small"), (1, 32), (28, 28),
                rounds, iters, False)
    if not a.quick:
        for name in ("cspresnet50", "resnet50", "cspresnext50", "resnext50", "cspdarknet53", "darknet53"):
            bench_model(f"{name} (default ladder, random weights)", create_model(name), (1, 8), (128, 128),
                        3, 2, False)
    print("\n### CSP vs plain MACs at 256×256 (full level), beside the CSPNet paper (BFLOPs at 256 px)")
    print("| pair | ours GMACs | ratio | paper | paper ratio |")
    print("|---|---|---|---|---|")
    for csp, plain, paper in (("cspresnet50", "resnet50", (8.97, 9.74)),
                              ("cspresnext50", "resnext50", (7.93, 10.11)),
                              ("cspdarknet53", "darknet53", (13.07, 18.57))):
        mc, mp = create_model(csp).macs(-1, (256, 256)), create_model(plain).macs(-1, (256, 256))
        print(f"| {csp} / {plain} | {mc / 1e9:.2f} / {mp / 1e9:.2f} | {mc / mp:.3f} | "
              f"{paper[0]} / {paper[1]} | {paper[0] / paper[1]:.3f} |")


if __name__ == "__main__":
    main()
