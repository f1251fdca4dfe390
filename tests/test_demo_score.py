"""What the demo scores: "right and on time" vs "right when answered", the belt's distinct items."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive_csp.apps.conveyor import Frame
from adaptive_csp.apps.score import score_arm, score_both_answered, score_difference
from adaptive_csp.apps.story import DEFAULT_FRAMES, Arm, belt_busy, demo_belt
from adaptive_csp.sim import load_scenario
from adaptive_csp.sim.world import ScenarioTraces, World, device_for


def test_late_or_dropped_frames_are_wrong_on_time_and_left_out_when_answered():
    # scored frames of items 0, 0, 1, 2, 3; the second frame was right but late, the last half answered in time
    correct = [True, True, True, False, True, True]
    on_time = [1.0, 0.0, 1.0, 1.0, 0.5, 1.0]
    scored = [True, True, True, True, True, False]  # the last frame (bare belt) does not count
    items = [0, 0, 1, 2, 3, 3]
    s = score_arm(correct, on_time, scored, items, resamples=500)
    assert s.frames == 5 and s.items == 4 and s.answered == pytest.approx(3.5)
    assert s.on_time.estimate == pytest.approx((1 + 0 + 1 + 0 + 0.5) / 5)
    assert s.when_answered.estimate == pytest.approx((1 + 1 + 0.5) / 3.5)
    # an arm that answered everything in time: both figures are its plain accuracy
    all_in = score_arm(correct, [1.0] * 6, scored, items, resamples=500)
    assert all_in.on_time.estimate == all_in.when_answered.estimate == pytest.approx(4 / 5)
    d = score_difference((correct, on_time), (correct, [1.0] * 6), scored, items, resamples=500)
    assert d["on_time"].estimate == pytest.approx(s.on_time.estimate - 4 / 5)
    assert d["answered"].estimate == pytest.approx(s.when_answered.estimate - 4 / 5)
    # like for like: only the frames both arms answered in time count (weights multiply)
    b_correct = [True, False, True, True, True, True]
    both = score_both_answered((correct, on_time), (b_correct, [1.0] * 6), scored, items, resamples=500)
    assert both.frames == pytest.approx(3.5)
    assert both.a.estimate == pytest.approx((1 + 1 + 0 + 0.5) / 3.5)  # frame 2: a answered late, left out
    assert both.b.estimate == pytest.approx((1 + 1 + 1 + 0.5) / 3.5)
    assert both.difference.estimate == pytest.approx(both.a.estimate - both.b.estimate)
    with pytest.raises(ValueError, match="on_time"):
        score_arm(correct, [1.5] * 6, scored, items)
    with pytest.raises(ValueError, match="one length"):
        score_arm(correct, on_time[:-1], scored, items)


class _Runner:
    """Stands in for an AdaptiveRunner: always answers ``label`` at ``level``."""

    frequency = None

    def __init__(self, level: int, label: int):
        self.policy_level, self.label = level, label

    def infer(self, image):
        from types import SimpleNamespace

        return SimpleNamespace(level=self.policy_level, label=self.label, reason="scripted")

    def note_latency(self, ms):
        self.latency_ms = ms


def test_a_step_served_late_answers_nothing_in_the_story():
    from adaptive_csp.models.pretrained import shipped_ladder

    scn = load_scenario("conveyor").with_(decision_interval_s=6.0)
    ladder = shipped_ladder()
    dev = device_for(scn, ladder)
    tr = ScenarioTraces.sample(scn, scn.seed)
    fr = Frame(np.zeros((140, 140, 3), np.uint8), 3, True, 7, "dwell")
    busy_k = int(np.argmax(tr.load > 0.5))  # the background job: the full level misses the deadline
    quiet_k = 0
    results = {}
    for name, level in (("full", ladder.full), ("cheapest", 0)):
        for k in (quiet_k, busy_k):
            arm = Arm(name, _Runner(level, 3), World(scn, dev, ambient_c=25.0))
            arm.step(k, float(tr.t[k]), fr, tr, scn.deadline_ms)
            results[name, k] = arm
    late = results["full", busy_k]
    assert late.rec["correct"] == [True] and late.rec["on_time"] == [0.0]  # right, but too late
    assert late.rec["late"][0] + late.rec["arrived"][0] - late.rec["processed"][0] > 0
    assert late.accuracy == 0.0
    s = score_arm(late.rec["correct"], late.rec["on_time"], [True], [7], resamples=100)
    assert s.on_time.estimate == 0.0 and np.isnan(s.when_answered.estimate) and s.answered == 0.0
    for key in (("cheapest", quiet_k), ("cheapest", busy_k)):
        ok = results[key]
        assert ok.rec["on_time"] == [1.0] and ok.accuracy == 1.0 and ok.rec["late"] == [0]


def test_the_default_belt_shows_over_200_distinct_items_on_scored_frames():
    scn = load_scenario("conveyor")
    t = np.arange(DEFAULT_FRAMES) * scn.duration_s / DEFAULT_FRAMES
    busy = belt_busy(scn, t)
    frames = list(demo_belt(0).frames(DEFAULT_FRAMES, busy=busy.__getitem__))
    items = [f.item for f in frames if f.scored]
    per = np.bincount(np.unique(items, return_inverse=True)[1])
    assert len(per) >= 200 and per.max() <= 3


def test_the_policy_reads_the_simulated_devices_latency_not_this_machines():
    from adaptive_csp.apps.story import run_story
    from adaptive_csp.control.policy import Decision, Policy

    class Seen(Policy):
        name = "seen"

        def __init__(self):
            self.windows = []

        def decide(self, readings, stats, ladder):
            self.windows.append(stats.latencies_ms)
            return Decision(len(stats.latencies_ms) % len(ladder), "cycling")  # a different rung each frame

    pol = Seen()
    run = run_story(pol, "conveyor", 12, engine="torch")
    svc = run.adaptive.rec["service_ms"]
    assert len(pol.windows) == 12 and pol.windows[0] == ()
    for k, window in enumerate(pol.windows):  # step k sees the simulated service times of steps 0..k-1
        assert window == pytest.approx(tuple(svc[:k]))
    assert len(set(svc)) > 3 and min(svc) > 5.0  # the simulated board's ms at several rungs, not this CPU's
    with pytest.raises(ValueError, match="latency"):
        run.adaptive.runner.note_latency(float("nan"))
