"""stream() honours the policy's frame interval: every k-th frame runs, the others are answered by the last
result and counted; the policy sees the source's frame rate and keeps its min_fps."""

from __future__ import annotations

import pytest

from adaptive_csp.control import get_policy
from adaptive_csp.control.policy import Decision, Policy
from adaptive_csp.data.fashion_mnist import load_sample
from adaptive_csp.models.pretrained import pretrained
from adaptive_csp.runtime import AdaptiveRunner, ContentDemand


class EveryKth(Policy):
    """Full level, frame interval ``k``; records the frame rate and interval the runner reports."""

    name = "every-kth"

    def __init__(self, k: int):
        self.k = k
        self.fps: list[float | None] = []
        self.intervals: list[int] = []

    def decide(self, readings, stats, ladder):
        self.fps.append(stats.fps)
        self.intervals.append(stats.frame_interval)
        return Decision(ladder.full, "every-kth", None, self.k)


@pytest.fixture(scope="module")
def model():
    return pretrained()


@pytest.fixture(scope="module")
def frames():
    s = load_sample()
    return [s.images[i, 0].numpy() for i in range(13)]


@pytest.mark.parametrize("k", [1, 3])
def test_stream_runs_every_kth_frame_and_answers_the_rest_with_the_last_result(model, frames, k):
    pol = EveryKth(k)
    with AdaptiveRunner(model, policy=pol, sensors=None, engine="torch", policy_tick_ms=0) as r:
        preds = list(r.stream(iter(frames), fps=30.0))
        skipped = r.stats()["skipped"]
    assert [p.frame_index for p in preds] == list(range(len(frames)))
    ran = [p for p in preds if not p.reason.startswith("repeat")]
    assert [p.frame_index for p in ran] == list(range(0, len(frames), k))
    assert skipped == len(frames) - len(ran)
    for p in preds:
        if p.reason.startswith("repeat"):
            last = ran[[q.frame_index for q in ran].index(p.frame_index - p.frame_index % k)]
            assert p.label == last.label and p.latency_ms == 0.0 and (p.probs == last.probs).all()
    assert set(pol.fps) == {30.0}
    assert pol.intervals[1:] == [k] * (len(pol.intervals) - 1)  # the interval in force reaches the policy


def test_stream_repeat_false_yields_only_frames_that_ran(model, frames):
    with AdaptiveRunner(model, policy=EveryKth(4), sensors=None, engine="torch", policy_tick_ms=0) as r:
        preds = list(r.stream(frames, fps=30.0, repeat=False))
        assert r.stats()["skipped"] == len(frames) - len(preds)
    assert [p.frame_index for p in preds] == list(range(0, len(frames), 4))
    with pytest.raises(ValueError, match="fps"):
        list(AdaptiveRunner(model, policy=EveryKth(1), sensors=None, engine="torch").stream(frames, fps=-1))


@pytest.mark.parametrize("fps,min_fps", [(30.0, 10.0), (None, 10.0)])
def test_stream_keeps_the_presets_min_fps(model, frames, fps, min_fps):
    """A preset on a steady scene (content demand at its cheapest) asks for longer intervals; the frames that
    run never fall below min_fps of the source, and without the source's rate every frame runs."""
    pol = get_policy("balanced", frames={"min_fps": min_fps, "steady_interval": 8})
    content = ContentDemand(steady_frames=1, low_conf=0.0, high_conf=0.0)  # steady after a frame per level
    with AdaptiveRunner(model, policy=pol, sensors=None, engine="torch", content=content, policy_tick_ms=0) as r:
        same = [frames[0]] * 60  # a still scene
        preds = list(r.stream(same, fps=fps))
    ran = [p.frame_index for p in preds if not p.reason.startswith("repeat")]
    gaps = [b - a for a, b in zip(ran, ran[1:])]
    if fps is None:
        assert gaps == [1] * len(gaps)
    else:
        assert max(gaps) > 1  # the steady scene was used
        assert all(fps / g >= min_fps for g in gaps)
