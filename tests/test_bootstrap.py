"""The item-cluster bootstrap (adaptive_csp.util.bootstrap): coverage on clustered data, pairing, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive_csp.util.bootstrap import Interval, difference_interval, ratio_interval


def _clustered(rng: np.random.Generator, items: int, p: float, flip: float) -> tuple[np.ndarray, np.ndarray]:
    """Frames of ``items`` items, 5-15 frames each: an item is right (prob ``p``) or wrong on all its frames,
    each frame flipped with prob ``flip``.  Expected frame accuracy: ``p(1-flip) + (1-p)flip``."""
    reps = rng.integers(5, 16, size=items)
    item_ok = rng.random(items) < p
    clusters = np.repeat(np.arange(items), reps)
    ok = item_ok[clusters] ^ (rng.random(clusters.size) < flip)
    return ok.astype(float), clusters


def test_item_bootstrap_covers_the_truth_and_is_wider_than_frame_level_when_items_repeat():
    p, flip = 0.8, 0.05
    truth = p * (1 - flip) + (1 - p) * flip
    rng = np.random.default_rng(1)
    hit_item = hit_frame = 0
    widths = []
    runs = 200
    for k in range(runs):
        ok, cl = _clustered(rng, 40, p, flip)
        ones = np.ones_like(ok)
        it = ratio_interval(ok, ones, cl, resamples=1000, seed=k)
        fr = ratio_interval(ok, ones, np.arange(ok.size), resamples=1000, seed=k)
        assert it.estimate == pytest.approx(ok.mean()) == fr.estimate
        assert it.clusters == 40 and fr.clusters == ok.size and it.resamples == 1000
        hit_item += truth in it
        hit_frame += truth in fr
        widths.append(it.width / fr.width)
    # nominal 95 %: the item bootstrap holds it (percentile intervals with 40 items cover a little less);
    # resampling frames as if independent does not, and its intervals are a fraction as wide
    assert hit_item / runs >= 0.88
    assert hit_frame / runs < 0.75
    assert np.median(widths) > 2.0


def test_the_interval_is_seeded_and_the_estimate_is_the_weighted_ratio():
    rng = np.random.default_rng(0)
    ok, cl = _clustered(rng, 30, 0.7, 0.1)
    w = rng.random(ok.size)  # fractional weights (a share of frames answered in time)
    a = ratio_interval(ok * w, w, cl, seed=3)
    assert a == ratio_interval(ok * w, w, cl, seed=3)
    assert a != ratio_interval(ok * w, w, cl, seed=4)
    assert a.estimate == pytest.approx((ok * w).sum() / w.sum())
    assert a.lo < a.estimate < a.hi and a.level == 0.95
    assert ratio_interval(ok, np.ones_like(ok), cl, level=0.5).width < ratio_interval(ok, np.ones_like(ok), cl).width
    # nothing counted: no estimate and no interval
    none = ratio_interval(ok, np.zeros_like(ok), cl)
    assert np.isnan(none.estimate) and np.isnan(none.lo) and none.resamples == 0
    assert np.isnan(ratio_interval([], [], []).estimate)


def test_the_difference_is_paired_by_item_over_the_items_both_arms_saw():
    rng = np.random.default_rng(2)
    ok, cl = _clustered(rng, 50, 0.6, 0.0)
    ones = np.ones_like(ok)
    # the same answers on the same items: the paired difference is exactly zero in every replicate
    same = difference_interval((ok, ones, cl), (ok, ones, cl))
    assert same.estimate == same.lo == same.hi == 0.0 and same.clusters == 50
    # arm b is wrong on items 0-4 where a is right; items a saw alone (label 99) do not count
    b_ok = np.where(cl < 5, 0.0, ok)
    a_ok, a_cl = np.r_[ok, np.zeros(20)], np.r_[cl, np.full(20, 99)]
    d = difference_interval((a_ok, np.ones_like(a_ok), a_cl), (b_ok, ones, cl), seed=1)
    assert d.clusters == 50
    assert d.estimate == pytest.approx(ok.mean() - b_ok.mean())
    assert d.lo <= d.estimate <= d.hi
    # pairing: the interval of the difference is narrower than either arm's own interval
    assert d.width < ratio_interval(b_ok, ones, cl, seed=1).width
    with pytest.raises(ValueError, match="no item in common"):
        difference_interval((ok, ones, cl), (ok, ones, cl + 1000))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="one length"):
        ratio_interval([1, 0], [1, 1, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="den >= 0"):
        ratio_interval([1.0], [-1.0], [0])
    with pytest.raises(ValueError, match="resamples"):
        ratio_interval([1.0], [1.0], [0], resamples=0)
    with pytest.raises(ValueError, match="level"):
        ratio_interval([1.0], [1.0], [0], level=1.0)
    assert isinstance(ratio_interval([1.0], [1.0], ["shirt"]), Interval)
