"""The one percentile (util/stats.py): nearest rank, the same number for policies, telemetry and the sim."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adaptive_csp.control.latency import LatencyGovernor
from adaptive_csp.runtime.telemetry import Telemetry
from adaptive_csp.util.stats import grouped_percentile, percentile, rank_index

finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=200), st.floats(0.5, 100.0))
def test_percentile_is_numpy_inverted_cdf(values, p):
    before = list(values)
    got = percentile(values, p)
    assert values == before  # the caller's list is not sorted in place
    assert got in values
    assert got == np.percentile(np.array(values), p, method="inverted_cdf")
    arr = np.array(values)
    assert percentile(arr, p) == got and arr.tolist() == before  # the array path: same number, untouched


def test_nearest_rank_examples_and_bad_input():
    assert percentile([float(x) for x in range(1, 101)], 95) == 95.0
    assert percentile([5.0], 95) == 5.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert rank_index(20, 95) == 18 and rank_index(1, 1) == 0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 95)
    with pytest.raises(ValueError, match="p must be"):
        percentile([1.0], 0)


@given(st.lists(st.tuples(st.integers(0, 5), finite), min_size=1, max_size=300), st.floats(1.0, 100.0))
def test_grouped_percentile_matches_per_group(pairs, p):
    g = np.array([a for a, _ in pairs])
    v = np.array([b for _, b in pairs])
    labels, got = grouped_percentile(v, g, p)
    assert list(labels) == sorted(set(g.tolist()))
    for lab, x in zip(labels, got, strict=True):
        assert x == percentile(v[g == lab].tolist(), p)


def test_policy_and_telemetry_report_the_same_p95():
    """From 20 samples on, the latency governor's p95 is telemetry's (one percentile, util.stats); below
    20 it deliberately ignores the single largest sample (one hiccup must not drop the level)."""
    rng = np.random.default_rng(0)
    lat = [float(x) for x in rng.permutation(np.arange(1, 26))]  # 25 samples, 1..25 ms
    tel = Telemetry()
    for i, x in enumerate(lat):
        tel.record(float(i), 0, x, "", None, 1)
    gov = LatencyGovernor(deadline_ms=100.0, min_samples_down=1)
    from adaptive_csp.control.policy import RuntimeStats
    from adaptive_csp.levels import LevelLadder
    from adaptive_csp.sensors.readings import Readings

    lad = LevelLadder.from_costs([0.5, 1.0])
    for k in range(len(lat)):
        gov.update(Readings(timestamp=0.0), RuntimeStats(0.0, 1, tuple(lat[: k + 1]), None, 100.0), lad)
    assert gov.p_ms == tel.stats()["p95_ms"] == percentile(lat, 95)
    few = LatencyGovernor(deadline_ms=100.0, min_samples_down=1)
    short = [1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0, 10.0, 11.0, 12.0]
    for k in range(len(short)):
        few.update(Readings(timestamp=0.0), RuntimeStats(0.0, 1, tuple(short[: k + 1]), None, 100.0), lad)
    assert few.p_ms == 11.0 and percentile(short, 95) == 12.0  # second-largest below 20 samples
