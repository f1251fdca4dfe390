"""AdaptiveRunner: threads, faults, lifecycle, stream(), telemetry, latency feedback, content demand.

Every test that runs a model runs once per engine available here (``run_with`` is parametrised over
:func:`adaptive_csp.engines.available_engines`): the same assertions for torch, ONNX Runtime and, on a
machine with a GPU, CUDA graphs.
"""

from __future__ import annotations

import csv
import json
import logging
import threading

import numpy as np
import pytest
import torch

from adaptive_csp.control.policy import Decision, Policy
from adaptive_csp.data.fashion_mnist import load_sample
from adaptive_csp.engines import available_engines
from adaptive_csp.models.pretrained import pretrained
from adaptive_csp.runtime import AdaptiveRunner, ContentDemand, Prediction
from adaptive_csp.runtime.preprocess import HAVE_CV2
from adaptive_csp.sensors import ScriptedSource, SensorPoller
from tests.conftest import Fixed


class Cycle(Policy):
    """Level i % n on call i; records what the runner told it."""

    name = "cycle"
    safe_level = 1

    def __init__(self):
        self.i = 0
        self.seen = []

    def decide(self, readings, stats, ladder):
        self.seen.append(stats)
        self.i += 1
        return Decision((self.i - 1) % len(ladder), f"cycle {self.i - 1}")


class Raises(Policy):
    name = "raises"
    safe_level = 2

    def decide(self, readings, stats, ladder):
        raise RuntimeError("policy bug")


class Returns(Policy):
    name = "returns"
    safe_level = 1

    def __init__(self, value):
        self.value = value

    def decide(self, readings, stats, ladder):
        return Decision(self.value, "odd")


@pytest.fixture(scope="module")
def model():
    return pretrained()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(params=available_engines())
def run_with(request, cache):
    """``AdaptiveRunner`` with the parametrised engine (and a private ONNX cache for this module)."""
    engine = request.param
    opts = {"cache": cache, "threads": 1, "int8": ()} if engine == "onnxruntime" else None  # float32: vs torch

    def make(*args, **kw):
        return AdaptiveRunner(*args, engine=engine, engine_options=opts, **kw)

    make.engine = engine
    return make


@pytest.fixture(scope="module")
def frames():
    s = load_sample()
    return [s.images[i, 0].numpy() for i in range(16)]


def poller_threads():
    return [t for t in threading.enumerate() if t.name.startswith("sensor-poller")]


def test_prediction_fields(run_with, model, frames):
    with run_with(model, policy=Fixed(3), sensors=None) as r:
        p = r.infer(frames[0])
    assert isinstance(p, Prediction)
    assert p.level == 3 and p.reason == "fixed" and p.latency_ms > 0
    assert p.class_name == model.meta["class_names"][p.label]
    assert p.probs.shape == (10,) and abs(float(p.probs.sum()) - 1) < 1e-5
    assert p.score == pytest.approx(float(p.probs.max())) and int(p.probs.argmax()) == p.label
    assert not p.probs.flags.writeable


def test_threads_match_sequential(run_with, model, frames):
    pol = Cycle()
    out: dict[int, list[tuple[int, Prediction]]] = {}
    errors = []
    with run_with(model, policy=pol, sensors=None, policy_tick_ms=0) as r:
        def work(tid: int) -> None:
            try:
                res = []
                for k in range(200):
                    j = (tid * 7 + k) % len(frames)
                    res.append((j, r.infer(frames[j])))
                out[tid] = res
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        ts = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors
        assert r.stats()["calls"] == 1600
    levels = {p.level for res in out.values() for _, p in res}
    assert levels == set(r.view.parent_indices)  # every level the policy can pick ran concurrently
    ref: dict[tuple[int, int], Prediction] = {}
    fixed = Fixed(0)
    with run_with(model, policy=fixed, sensors=None, policy_tick_ms=0) as seq:
        for res in out.values():
            for j, p in res:
                key = (j, p.level)
                if key not in ref:
                    fixed.level = seq.view.view_index(p.level)  # the policy picks in the view's indices
                    ref[key] = seq.infer(frames[j])
                q = ref[key]
                assert q.level == p.level and q.label == p.label
                np.testing.assert_array_equal(p.probs, q.probs)


def test_close_leaves_no_thread(run_with, model, frames):
    before = len(poller_threads())
    src = ScriptedSource([{"temperature_c": 50.0, "battery_percent": 80.0}])
    with run_with(model, policy="balanced", sensors=src) as r:
        assert len(poller_threads()) == before + 1
        r.infer(frames[0])
    assert r.closed and len(poller_threads()) == before
    with pytest.raises(RuntimeError, match="closed"):
        r.infer(frames[0])
    r2 = run_with(model, policy="battery", sensors="auto")
    r2.infer(frames[1])
    r2.close()
    r2.close()  # idempotent
    assert len(poller_threads()) == before


def test_failing_sensor_source_goes_safe(run_with, model, frames, caplog):
    src = ScriptedSource([RuntimeError("sensor bus error")])
    with caplog.at_level(logging.WARNING), run_with(model, policy="balanced", sensors=src) as r:
        preds = [r.infer(f) for f in frames[:5]]
    safe = r.policy.safe_index(model.levels)
    assert all(p.level == safe and p.reason.startswith("fault:") for p in preds)
    assert sum("sensor bus error" in m for m in caplog.messages) == 1


def test_broken_sensor_object_and_policies_never_escape(run_with, model, frames, caplog):
    class Broken:
        def latest(self):
            raise OSError("i2c timeout")

    with caplog.at_level(logging.WARNING):
        with run_with(model, policy=Cycle(), sensors=Broken()) as r:
            ps = [r.infer(f) for f in frames[:4]]
        assert all(p.level == 1 and p.reason == "fault:sensor" for p in ps)
        assert r.stats()["faults"] == {"sensor:OSError": 4}
        with run_with(model, policy=Raises(), sensors=None) as r:
            ps = [r.infer(f) for f in frames[:4]]
        assert all(p.level == 2 and p.reason == "fault:policy:RuntimeError" for p in ps)
    assert sum("i2c timeout" in m for m in caplog.messages) == 1
    assert sum("policy bug" in m for m in caplog.messages) == 1
    with run_with(model, policy=Returns(99), sensors=None) as r:
        assert r.infer(frames[0]).level == len(model.levels) - 1  # clamped
    with run_with(model, policy=Returns("high"), sensors=None) as r:
        assert r.infer(frames[0]).level == 1  # not an int: safe level
    with run_with(model, policy=Returns(-1), sensors=None) as r:
        assert r.infer(frames[0]).level == 0


def test_latency_reaches_the_policy(run_with, model, frames):
    pol = Cycle()
    with run_with(model, policy=pol, sensors=None, deadline_ms=33.0, latency_window=8,
                  policy_tick_ms=0) as r:
        preds = [r.infer(f) for f in frames[:12]]
    assert pol.seen[0].latencies_ms == ()
    for i in range(1, 12):
        want = tuple(p.latency_ms for p in preds[max(0, i - 8):i])
        assert pol.seen[i].latencies_ms == want
        assert pol.seen[i].level == r.view.view_index(preds[i - 1].level)  # the view's index of what ran
        assert pol.seen[i].confidence == pytest.approx(preds[i - 1].score)
        assert pol.seen[i].deadline_ms == 33.0


def test_policy_reads_the_poller_snapshot(run_with, model, frames):
    poller = SensorPoller(ScriptedSource([{"temperature_c": 99.0}]))
    poller.poll_once()  # not started: the runner must only read the cached snapshot
    reads = poller.source.reads
    with run_with(model, policy="thermal", sensors=poller) as r:
        p = r.infer(frames[0])
        assert r.sensors is poller
    assert poller.source.reads == reads  # no sensor read on the hot path
    assert p.level == 0 and "thermal" in p.reason
    assert poller.running is False  # a poller we passed is never started or closed by the runner


def test_telemetry_ring_stats_and_export(run_with, model, frames, tmp_path):
    with run_with(model, policy=Cycle(), sensors=None, telemetry_size=10, policy_tick_ms=0) as r:
        for f in frames[:14]:
            r.infer(f)
        batch = r.infer(frames[:3])
        s = r.stats()
        jl = r.export_jsonl(tmp_path / "t.jsonl")
        cv = r.export_csv(tmp_path / "t.csv")
    n, par = len(r.view), r.view.parent_index  # Cycle walks the view the runner hands it
    assert s["calls"] == 15 and s["frames"] == 17 and s["window"] == 10
    assert sum(s["per_level"].values()) == 15 and s["per_level"][par(0)] == len(range(0, 15, n))
    assert s["switches"] == 14
    assert s["p50_ms"] <= s["p95_ms"]
    rows = [json.loads(line) for line in jl.read_text().splitlines()]
    assert len(rows) == 10 and [r_["level"] for r_ in rows] == [par(i % n) for i in range(5, 15)]
    assert rows[-1]["batch"] == 3 and rows[-1]["reason"] == "cycle 14"
    with cv.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 10 and float(table[0]["latency_ms"]) == pytest.approx(rows[0]["latency_ms"])
    # what each call answered: the predicted class(es) and score (a batch: its lowest)
    assert rows[-1]["class"] == "|".join(p.class_name for p in batch) and rows[-1]["detections"] is None
    assert rows[-1]["score"] == pytest.approx(min(p.score for p in batch))
    assert table[-1]["class"] == rows[-1]["class"] and float(table[-1]["score"]) == pytest.approx(rows[-1]["score"])


def _write_video(path, n: int, frames) -> None:
    import cv2

    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
    w = cv2.VideoWriter(str(path), fourcc, 10.0, (56, 56))
    assert w.isOpened()
    for i in range(n):
        g = np.kron(frames[i % len(frames)], np.ones((2, 2), np.uint8))
        w.write(np.repeat(g[:, :, None], 3, axis=2))
    w.release()


@pytest.mark.skipif(not HAVE_CV2, reason="needs opencv")
def test_stream_video_one_prediction_per_frame(run_with, model, frames, tmp_path):
    import cv2

    path = tmp_path / "belt.avi"
    _write_video(path, 12, frames)
    with run_with(model, policy=Fixed(-1), sensors=None) as r:
        preds = list(r.stream(path))
        assert [p.frame_index for p in preds] == list(range(12))
        cap = cv2.VideoCapture(str(path))
        again = list(r.stream(cap, max_frames=5))
        assert cap.isOpened()  # a capture we passed is not released
        cap.release()
        assert len(again) == 5
        with pytest.raises(ValueError, match="no video file"):
            list(r.stream(tmp_path / "missing.mp4"))
    assert all(p.label == q.label for p, q in zip(preds[:5], again, strict=True))


@pytest.mark.skipif(not HAVE_CV2, reason="needs opencv")
def test_stream_reads_an_image_folder_in_name_order(run_with, model, frames, tmp_path):
    import cv2

    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(4):  # written out of order; a non-image and a broken image are skipped
        cv2.imwrite(str(folder / f"img_{3 - i:02d}.png"), np.kron(frames[3 - i], np.ones((3, 3), np.uint8)))
    (folder / "notes.txt").write_text("not an image")
    (folder / "img_99.png").write_bytes(b"broken")
    with run_with(model, policy=Fixed(-1), sensors=None) as r:
        preds = list(r.stream(folder))
        want = [r.infer(np.kron(frames[i], np.ones((3, 3), np.uint8))).label for i in range(4)]
        with pytest.raises(ValueError, match="no images"):
            list(r.stream(tmp_path))  # a folder without images
    assert [p.label for p in preds] == want and [p.frame_index for p in preds] == [0, 1, 2, 3]


def test_stream_iterable_skipping_and_bad_frames(run_with, model, frames):
    with run_with(model, policy=Fixed(0), sensors=None) as r:
        src = [frames[0], np.zeros((3, 3, 2), np.uint8), frames[1]]
        preds = list(r.stream(iter(src)))
        assert [p.frame_index for p in preds] == [0, 2]
        with pytest.raises(ValueError):
            list(r.stream(src, on_error="raise"))
        with pytest.raises(ValueError, match="deadline"):
            list(r.stream(frames, skip=True))
        with pytest.raises(ValueError, match="single frame"):
            list(r.stream(frames[0]))
    with run_with(model, policy=Fixed(-1), sensors=None, deadline_ms=1e-3) as r:
        preds = list(r.stream(frames, skip=True))  # every call overruns a 1 µs deadline
        s = r.stats()
    assert preds[0].frame_index == 0 and 1 <= len(preds) < len(frames)
    assert len(preds) + s["skipped"] == len(frames)


def test_content_demand_unit():
    c = ContentDemand(steady_frames=3, hold_frames=2, up_step=2, empty_std=0.02).bind(6, [1.0])
    obj = torch.zeros(1, 1, 28, 28)
    obj[..., 8:20, 8:20] = 1.0
    assert c.observe(obj) == 6
    for _ in range(2 + 3):  # hold, then 3 steady confident frames → one level down
        c.observe(obj)
        c.result(0.99, c.demand)
    assert c.demand == 5
    for _ in range(3 * 3):
        c.observe(obj)
        c.result(0.99, c.demand)
    assert c.demand == 2
    c.observe(obj)
    c.result(0.3, 2)  # low confidence → up two levels
    assert c.demand == 4
    moved = torch.roll(obj, 6, dims=-1)
    assert c.observe(moved) == 6 and "scene change" in c.why
    assert c.observe(torch.zeros(1, 1, 28, 28)) == 0 and c.why == "content: empty scene"
    # a faint item arriving on the empty belt differs little in pixels, yet it is what the camera is for
    faint = torch.zeros(1, 1, 28, 28)
    faint[..., 12:16, 12:16] = 0.5
    assert c.observe(faint) == 6 and "arrived" in c.why


def test_content_demand_stays_within_the_policy_cap(run_with, model, frames):
    with run_with(model, policy=Fixed(2), sensors=None, content=True) as r:
        levels = [r.infer(f).level for f in frames]
        assert max(levels) <= 2 and r.policy_level == 2
        empty = np.zeros((28, 28), np.uint8)
        p = r.infer(empty)
        assert p.level == 0 and p.reason.startswith("content: empty scene")


def test_plain_module_and_bad_arguments(run_with, model, frames):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 3))
    spec = {"input_size": [28, 28], "in_chans": 1, "color": "grey", "mean": [0.5], "std": [0.5]}
    if run_with.engine == "onnxruntime":  # exports ladder levels: a plain module has none
        with pytest.raises(ValueError, match="elastic"):
            run_with(net, policy=Fixed(0), sensors=None, preprocess=spec)
    else:
        with run_with(net, policy=Fixed(0), sensors=None, preprocess=spec) as r:
            p = r.infer(frames[0])
        assert p.level == 0 and p.probs.shape == (3,) and p.class_name == str(p.label)
        with torch.inference_mode():
            want = torch.softmax(net(torch.from_numpy(frames[0]).float()[None, None] / 255 * 2 - 1), 1)[0]
        np.testing.assert_allclose(p.probs, want.numpy(), atol=1e-5)
    with AdaptiveRunner(net, policy=Fixed(0), sensors=None, preprocess=spec) as r:
        assert r.engine.name == "torch"  # auto: a plain module runs on torch
    with pytest.raises(ValueError, match="preprocess"):
        run_with(net, sensors=None)
    with pytest.raises(ValueError, match="deadline_ms"):
        run_with(model, sensors=None, deadline_ms=0)
    with pytest.raises(ValueError, match="unknown policy"):
        run_with(model, policy="no-such-policy", sensors=None)


def test_every_level_matches_the_torch_reference(run_with, model, frames):
    """Through the runner, each engine gives the probabilities of ``softmax(model(x, level))``."""
    pol = Fixed(0)
    with run_with(model, policy=pol, sensors=None, policy_tick_ms=0) as r:
        for vi in range(len(r.view)):  # every level the policy can pick (its view of the ladder)
            pol.level, lv = vi, r.view.parent_index(vi)
            preds = r.infer(frames[:4])
            x = r.pre(frames[:4])[0]
            with torch.inference_mode():
                want = torch.softmax(model.prepared(lv)(x), 1).numpy()
            assert [p.level for p in preds] == [lv] * 4
            np.testing.assert_allclose(np.stack([p.probs for p in preds]), want, atol=1e-4, err_msg=f"level {lv}")
            single = r.infer(frames[0])
            np.testing.assert_allclose(single.probs, want[0], atol=1e-4)
        assert r.stats()["engine"] == run_with.engine == r.engine.name


def test_policy_decides_once_per_tick(run_with, model, frames):
    now = [0.0]
    src = ScriptedSource([{"temperature_c": 40.0}])
    poller = SensorPoller(src)
    poller.poll_once()
    pol = Cycle()
    with run_with(model, policy=pol, sensors=poller, policy_tick_ms=10.0, clock=lambda: now[0]) as r:
        levels = [r.infer(frames[0]).level for _ in range(5)]  # clock stands still: one decision
        assert len(pol.seen) == 1 and levels == [0] * 5
        now[0] += 0.009
        r.infer(frames[0])
        assert len(pol.seen) == 1
        now[0] += 0.002  # 11 ms after the decision: the next tick
        assert r.infer(frames[0]).level == 1 and len(pol.seen) == 2
        assert pol.seen[1].latencies_ms and len(pol.seen[1].latencies_ms) == 6  # every call's latency kept
        poller.poll_once()  # a new sensor snapshot: decided at once, within the tick
        assert r.infer(frames[0]).level == 2 and len(pol.seen) == 3
    with pytest.raises(ValueError, match="policy_tick_ms"):
        run_with(model, sensors=None, policy_tick_ms=-1)


def test_runner_leaves_the_model_alone(run_with, frames):
    m = pretrained().train()  # training mode on purpose: the runner must not switch it
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with run_with(m, policy=Fixed(-1), sensors=None) as r:
        p = r.infer(frames[0])
    assert m.training and all(mod.training for mod in m.modules())
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert {t.device.type for t in m.state_dict().values()} == {"cpu"}
    assert {t.dtype for t in m.parameters()} == {torch.float32}
    with torch.inference_mode():
        want = torch.softmax(m.prepared(-1)(r.pre(frames[0])[0]), 1)[0].numpy()
    np.testing.assert_allclose(p.probs, want, atol=1e-4)


def test_double_model_end_to_end(run_with, frames):
    """A float64 model runs every level through the runner on the CPU (the code path a CUDA model takes)."""
    m = pretrained().double()
    ref = pretrained()
    pol = Fixed(0)
    with run_with(m, policy=pol, sensors=None, policy_tick_ms=0) as r:
        for vi in range(len(r.view)):
            pol.level, lv = vi, r.view.parent_index(vi)
            p = r.infer(frames[1])
            with torch.inference_mode():
                want = torch.softmax(ref.prepared(lv)(r.pre(frames[1])[0]), 1)[0].numpy()
            assert p.level == lv
            np.testing.assert_allclose(p.probs, want, atol=1e-4, err_msg=f"level {lv}")
    assert next(m.parameters()).dtype == torch.float64


def test_engine_failure_starts_no_thread_and_explicit_device(frames):
    """The engine is built (and its levels prepared) before the sensor poller starts: an engine that
    cannot run the model raises ValueError and leaves no thread behind; the torch engine refuses another
    device than the model's."""
    before = len(poller_threads())
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 3))
    spec = {"input_size": [28, 28], "in_chans": 1, "color": "grey", "mean": [0.5], "std": [0.5]}
    if "onnxruntime" in available_engines():
        with pytest.raises(ValueError, match="elastic"):
            AdaptiveRunner(plain, sensors=ScriptedSource([{"temperature_c": 50.0}]), preprocess=spec,
                           engine="onnxruntime")
    if "cuda" not in available_engines():
        with pytest.raises(ValueError, match="CUDA"):
            AdaptiveRunner(pretrained(), sensors=ScriptedSource([{"temperature_c": 50.0}]), engine="cuda")
    assert len(poller_threads()) == before
    with pytest.raises(ValueError, match="runs where the model is"):
        AdaptiveRunner(pretrained(), sensors=None, engine="torch", device="meta")
