"""Confidence intervals that respect repeated frames of one item: the item-cluster bootstrap.

A camera sees each item on many frames, and those frames are right or wrong together: 300 frames of 20
items carry about as much evidence as 20 answers, not 300.  Resampling frames treats them as independent
and gives intervals that are far too narrow; resampling *items* (clusters) with replacement, each with all
of its frames, keeps the dependence inside an item (Davison & Hinkley 1997, §3.8; Field & Welsh 2007).

Every figure here is a ratio of sums over frames, ``Σ num / Σ den`` (for an accuracy: ``num`` = 1 for a
right frame, ``den`` = 1 for a frame that counts; fractional weights are allowed, e.g. the share of a
tick's frames answered in time).  Per item the sums are formed once; each of ``resamples`` bootstrap
replicates draws as many items as there are, with replacement, from a seeded NumPy generator, and the
interval is the percentile interval of the replicated ratios.  A replicate whose denominator is zero (it
drew only items that never counted) has no ratio and is left out.

:func:`ratio_interval` gives one figure's interval; :func:`difference_interval` gives the interval of the
difference of two arms' figures, *paired by item*: one draw of items serves both arms, over the items
both arms saw, so what the two arms share (a hard item) cancels.  Passing each frame as its own cluster
gives the frame-level bootstrap, for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "ratio_interval", "difference_interval", "RESAMPLES"]

RESAMPLES = 2000  # replicates by default: percentile endpoints of a 95 % interval settle to ~0.5 points


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap interval ``[lo, hi]`` (NaN when nothing counted)."""

    estimate: float
    lo: float
    hi: float
    level: float  # e.g. 0.95
    clusters: int  # items resampled
    resamples: int  # replicates that had a ratio

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def __contains__(self, x: float) -> bool:
        return bool(self.lo <= x <= self.hi)


def _check(resamples: int, level: float) -> None:
    if int(resamples) != resamples or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def _per_cluster(num: object, den: object, clusters: object, what: str) -> dict[object, tuple[float, float]]:
    """``{cluster: (Σ num, Σ den)}`` over its frames."""
    n, d, c = np.asarray(num, dtype=float), np.asarray(den, dtype=float), np.asarray(clusters)
    if not (n.ndim == d.ndim == c.ndim == 1) or not (len(n) == len(d) == len(c)):
        raise ValueError(f"{what}: num, den and clusters must be 1-D and of one length, "
                         f"got {n.shape}, {d.shape}, {c.shape}")
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(d))) or np.any(d < 0):
        raise ValueError(f"{what}: num and den must be finite and den >= 0")
    keys, inv = np.unique(c, return_inverse=True)
    sn = np.bincount(inv, weights=n, minlength=len(keys))
    sd = np.bincount(inv, weights=d, minlength=len(keys))
    return {k.item() if hasattr(k, "item") else k: (a, b) for k, a, b in zip(keys, sn, sd, strict=True)}


def _ratio(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d > 0, n / np.where(d > 0, d, 1.0), np.nan)


def _percentile_interval(est: float, reps: np.ndarray, level: float, clusters: int) -> Interval:
    reps = reps[np.isfinite(reps)]
    if not np.isfinite(est) or not reps.size:
        return Interval(float(est), float("nan"), float("nan"), level, clusters, int(reps.size))
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [a, 1.0 - a])
    return Interval(float(est), float(lo), float(hi), level, clusters, int(reps.size))


def ratio_interval(num: object, den: object, clusters: object, *, resamples: int = RESAMPLES, seed: int = 0,
                   level: float = 0.95) -> Interval:
    """``Σ num / Σ den`` with its item-cluster bootstrap interval (see the module docstring).

    ``num``, ``den``: per frame; ``clusters``: the item each frame shows (any hashable labels).
    """
    _check(resamples, level)
    per = _per_cluster(num, den, clusters, "ratio_interval")
    if not per:
        return Interval(float("nan"), float("nan"), float("nan"), level, 0, 0)
    sn, sd = (np.array(v) for v in zip(*per.values(), strict=True))
    idx = np.random.default_rng(seed).integers(0, len(sn), size=(int(resamples), len(sn)))
    est = float(_ratio(np.array(sn.sum()), np.array(sd.sum())))
    return _percentile_interval(est, _ratio(sn[idx].sum(1), sd[idx].sum(1)), level, len(sn))


def difference_interval(a: tuple[object, object, object], b: tuple[object, object, object], *,
                        resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95) -> Interval:
    """Arm ``a``'s ratio minus arm ``b``'s, each ``(num, den, clusters)``, paired by item.

    Only items both arms saw count, for the estimate and for the replicates; one draw of items serves
    both arms.  No shared item → ValueError.
    """
    _check(resamples, level)
    pa, pb = _per_cluster(*a, "difference_interval (arm a)"), _per_cluster(*b, "difference_interval (arm b)")
    common = [k for k in pa if k in pb]
    if not common:
        raise ValueError("difference_interval: the two arms saw no item in common")
    na, da = (np.array(v) for v in zip(*(pa[k] for k in common), strict=True))
    nb, db = (np.array(v) for v in zip(*(pb[k] for k in common), strict=True))
    idx = np.random.default_rng(seed).integers(0, len(common), size=(int(resamples), len(common)))
    est = float(_ratio(np.array(na.sum()), np.array(da.sum())) - _ratio(np.array(nb.sum()), np.array(db.sum())))
    reps = _ratio(na[idx].sum(1), da[idx].sum(1)) - _ratio(nb[idx].sum(1), db[idx].sum(1))
    return _percentile_interval(est, reps, level, len(common))
