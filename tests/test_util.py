"""util/: the one timing loop and the once-per-kind logger."""

import logging

import pytest

from adaptive_csp.util import timing
from adaptive_csp.util.log import OnceLogger


def test_interleaved_medians_warm_interleaved_median(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    calls: list[str] = []
    cost = {"a": [1.0], "b": [3.0]}

    def make(name):
        def f():
            calls.append(name)
            seq = cost[name]
            clock[0] += seq[(len([c for c in calls if c == name]) - 1) % len(seq)]
        return f

    cost["b"] = [3.0, 3.0, 30.0]  # an outlier round must not move the median
    rounds, iters, warmup = 5, 1, 2
    a_ms, b_ms = timing.interleaved_medians([make("a"), make("b")], rounds=rounds, iters=iters, warmup=warmup)
    assert a_ms == pytest.approx(1000.0)
    assert b_ms == pytest.approx(3000.0)
    assert calls[: 2 * warmup] == ["a"] * warmup + ["b"] * warmup  # warm-up first, each fn
    assert calls[2 * warmup:] == ["a", "b"] * rounds  # then A B A B ...


def test_interleaved_times_per_call_mean_and_bad_args(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])

    def f():
        clock[0] += 0.002

    (t,) = timing.interleaved_times([f], rounds=3, iters=4, warmup=0)
    assert t == pytest.approx([2.0, 2.0, 2.0])
    for bad in ({"rounds": 0}, {"iters": 0}, {"warmup": -1}):
        with pytest.raises(ValueError, match="rounds >= 1"):
            timing.interleaved_times([f], **bad)


def test_once_logger_logs_each_kind_once(caplog):
    once = OnceLogger(logging.getLogger("test.once"))
    with caplog.at_level(logging.WARNING, logger="test.once"):
        assert once("a", "first %s", 1) is True
        assert once("a", "again %s", 2) is False
        assert once("b", "other") is True
    assert [r.getMessage() for r in caplog.records] == ["first 1", "other"]
    once.reset()
    assert once("a", "after reset") is True
