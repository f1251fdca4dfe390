"""The ladder a policy sees is the one that runs: views per (engine, batch), the runner hands its policy
the batch-1 view of its engine, ``runner.calibrate()`` measures and caches per device."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from adaptive_csp.control.policy import Decision, Policy
from adaptive_csp.engines.base import Engine
from adaptive_csp.levels import Level, LevelLadder, Rung, latency_key
from adaptive_csp.runtime import AdaptiveRunner
from adaptive_csp.runtime import calibrate as cal

LV = [Level([(0.5, b)]) for b in range(5)]
ACC = [0.80, 0.84, 0.86, 0.88, 0.90]
# batch 1: rung 2 is slower than rung 3 and less accurate (dominated); batch 32: every rung on the front;
# torch batch 1: rungs 1 and 2 both dominated by rung 3
LAT = {"ort:b1": [1.0, 1.5, 2.6, 2.5, 4.0], "ort:b32": [10.0, 14.0, 18.0, 25.0, 40.0],
       "torch:b1": [2.0, 3.5, 3.1, 3.0, 6.0]}


def synthetic(accuracy=True) -> LevelLadder:
    return LevelLadder(Rung(LV[i], latency_ms=LAT["ort:b1"][i] * 2, latency_ms_b32=LAT["ort:b32"][i] * 3,
                            accuracy=ACC[i] if accuracy else None, latency={k: v[i] for k, v in LAT.items()})
                       for i in range(5))


def test_view_follows_engine_and_batch():
    lad = synthetic()
    b1, b32, t1 = lad.view("ort", 1), lad.view("onnxruntime", 32), lad.view("torch", 1)
    assert b1.parent_indices == (0, 1, 3, 4) and b1.view_key == "ort:b1"
    assert b32.parent_indices == (0, 1, 2, 3, 4) and b32.view_key == "ort:b32"
    assert t1.parent_indices == (0, 3, 4)
    assert lad.view("onnxruntime", 1) == b1  # the runtime's engine name and the short key agree
    assert [r.latency_ms for r in b1.rungs] == [1.0, 1.5, 2.5, 4.0]  # absolute ms of that key
    assert b1.costs == pytest.approx((0.25, 0.375, 0.625, 1.0))  # ratios within the view
    assert b32.costs == pytest.approx(tuple(v / 40.0 for v in LAT["ort:b32"]))
    assert [b1.parent_index(i) for i in range(len(b1))] == [0, 1, 3, 4] and b1.parent_index(-1) == 4
    assert [r.accuracy for r in t1.rungs] == [ACC[0], ACC[3], ACC[4]]
    assert lad.costs == pytest.approx(tuple(v / 40.0 for v in LAT["ort:b32"]))  # the plain ladder as before
    assert lad.view_key is None and lad.parent_index(2) == 2


def test_view_keeps_the_full_rung_last_and_orders_by_its_own_latency():
    acc = [0.80, 0.86, 0.85, 0.92, 0.90]  # rung 3 beats the full level's accuracy: off the view (as profiling)
    b1 = [1.0, 2.0, 1.5, 2.5, 4.0]  # rung 2 is faster than rung 1 here
    lad = LevelLadder(Rung(LV[i], accuracy=acc[i], latency={"ort:b1": b1[i]}) for i in range(5))
    v = lad.view("ort", 1)
    assert v.parent_indices == (0, 2, 1, 4) and v.parent_index(-1) == lad.full
    assert [r.latency_ms for r in v.rungs] == [1.0, 1.5, 2.0, 4.0] and list(v.costs) == sorted(v.costs)
    assert [v.view_index(p) for p in range(5)] == [0, 2, 1, 2, 3]  # rung 3 -> the view rung not slower
    assert lad.view_index(3) == 3


def test_view_of_an_unmeasured_key_is_the_ladder_itself():
    lad = synthetic()
    assert lad.view("torch", 32) is lad and lad.view("cuda", 1) is lad
    part = LevelLadder([Rung(LV[0], latency={"ort:b1": 1.0}), Rung(LV[1])])  # not every rung measured
    assert part.view("ort", 1) is part and part.parent_indices == (0, 1)
    with pytest.raises(ValueError, match="batch"):
        lad.view("ort", 0)


def test_view_without_accuracy_keeps_the_ladder_order_and_composes():
    lad = synthetic(accuracy=False)
    assert lad.view("ort", 1).parent_indices == (0, 1, 3, 4)  # index stands in for accuracy
    t1 = lad.view("ort", 1).view("torch", 1)  # a view of a view maps to the first ladder
    assert t1.parent_indices == (0, 3, 4) and t1.view_key == "torch:b1"


def test_latency_json_round_trip_and_old_json():
    lad = synthetic()
    back = LevelLadder.from_json(lad.to_json())
    assert back == lad and back.rungs[2].latency == {k: v[2] for k, v in LAT.items()}
    assert back.view("ort", 1).parent_indices == (0, 1, 3, 4)
    old = {"rungs": [{"level": [{"ratio": 0.5, "blocks": i}], "latency_ms": 1.0 + i, "latency_ms_b32": 2.0 + i,
                      "accuracy": ACC[i]} for i in range(3)]}  # written before Rung.latency existed
    ol = LevelLadder.from_dict(old)
    assert all(r.latency == {} for r in ol.rungs) and ol.view("ort", 1) is ol
    assert "latency" not in ol.to_dict()["rungs"][0]  # an unmeasured ladder writes what it read
    with pytest.raises(ValueError, match="form"):
        Rung(LV[0], latency={"ort-b1": 1.0})
    with pytest.raises(ValueError, match="positive"):
        Rung(LV[0], latency={"ort:b1": -1.0})
    assert latency_key("onnxruntime", 32) == "ort:b32"


def test_with_latency_merges_and_keeps_order():
    lad = synthetic()
    new = lad.with_latency([{"cuda:b1": 0.1 * (i + 1), "ort:b1": 9.0 - i} for i in range(5)])
    assert new.costs == lad.costs and new.rungs[0].latency["ort:b32"] == LAT["ort:b32"][0]
    assert new.view("ort", 1).parent_indices == (4,)  # ort:b1 now falls with the level: only the top survives
    assert new.view("cuda", 1).parent_indices == (0, 1, 2, 3, 4)
    with pytest.raises(ValueError, match="one latency mapping per rung"):
        lad.with_latency([{}])


def test_shipped_ladder_has_the_views_the_runner_and_simulator_use():
    from adaptive_csp.models.pretrained import shipped_ladder
    from adaptive_csp.sim.device import DeviceModel

    lad = shipped_ladder()
    for key in ("ort:b1", "ort:b32", "torch:b1", "torch:b32"):
        eng, b = key.split(":b")
        v = lad.view(eng, int(b))
        assert v.view_key == key and v.parent_index(-1) == lad.full
        assert [r.latency_ms for r in v.rungs] == [lad.rungs[p].latency[key] for p in v.parent_indices]
        assert list(v.costs) == sorted(v.costs) and [r.accuracy for r in v.rungs] == sorted(r.accuracy for r in v.rungs)
    dm = DeviceModel.from_ladder(lad.view("ort", 1))
    assert len(dm) == len(lad.view("ort", 1))


# the runner -------------------------------------------------------------------------------------------------
class _Net(torch.nn.Module):
    def __init__(self, ladder):
        super().__init__()
        self.levels = ladder
        self.meta = {"preprocess": {"input_size": [4, 4], "in_chans": 1, "color": "grey", "mean": [0.5],
                                    "std": [0.25]}}
        self.cfg = None


class FakeEngine(Engine):
    """Runs nothing: logits of zeros; records the levels it ran."""

    name = "fake"

    def __init__(self, model):
        super().__init__(model)
        self.ran: list[int] = []
        self.shape = (1, 4, 4)

    def run(self, x, level):
        self.ran.append(level)
        return np.zeros((x.shape[0], 3), np.float32)


class Sees(Policy):
    """Returns ``pick`` (an index of the ladder it is given); records what it was given."""

    name = "sees"
    safe_level = 0

    def __init__(self, pick):
        self.pick, self.ladders, self.levels = pick, [], []

    def decide(self, readings, stats, ladder):
        self.ladders.append(ladder)
        self.levels.append(stats.level)
        return Decision(ladder.index(self.pick), "picked")


def fake_runner(pick, latency_key_prefix="fake"):
    lat = {f"{latency_key_prefix}:b1": LAT["ort:b1"], f"{latency_key_prefix}:b32": LAT["ort:b32"]}
    lad = LevelLadder(Rung(LV[i], accuracy=ACC[i], latency={k: v[i] for k, v in lat.items()}) for i in range(5))
    eng = FakeEngine(_Net(lad))
    pol = Sees(pick)
    return AdaptiveRunner(_Net(lad), policy=pol, sensors=None, engine=eng, policy_tick_ms=0), eng, pol


def test_runner_hands_the_policy_the_batch1_view_of_its_engine():
    r, eng, pol = fake_runner(pick=2)  # view index 2 = engine level 3 (engine level 2 is dominated at b1)
    frame = np.zeros((4, 4), np.uint8)
    p1, p2 = r.infer(frame), r.infer(frame)
    seen = pol.ladders[0]
    assert seen.view_key == "fake:b1" and seen.parent_indices == (0, 1, 3, 4)
    assert [x.latency_ms for x in seen.rungs] == [1.0, 1.5, 2.5, 4.0]
    assert eng.ran == [3, 3] and p1.level == p2.level == 3 == r.level == r.policy_level
    assert r.view_level == 2 and pol.levels == [3, 2]  # stats.level: the view index (full = view's 3 first)
    assert r.stats()["view"] == "fake:b1"
    r2, eng2, pol2 = fake_runner(pick=2, latency_key_prefix="other")  # no measurement for this engine
    r2.infer(frame)
    assert pol2.ladders[0] is r2.ladder and eng2.ran == [2]


def test_runner_on_onnxruntime_hands_the_policy_the_ort_b1_view(tmp_path):
    pytest.importorskip("onnxruntime")
    from adaptive_csp.models import create_model

    torch.manual_seed(0)
    m = create_model("csp_small").eval()
    n = len(m.levels)
    b1 = [float(i + 1) for i in range(n)]
    b1[1] = b1[2] + 0.5  # rung 1 dominated at batch 1 on ORT
    m.levels = m.levels.with_latency([{"ort:b1": b1[i], "torch:b1": float(i + 1)} for i in range(n)])
    m.meta = {"preprocess": {"input_size": list(m.cfg.input_size), "in_chans": m.cfg.in_chans, "color": "grey",
                             "mean": [0.5], "std": [0.25]}}
    pol = Sees(pick=1)
    r = AdaptiveRunner(m, policy=pol, sensors=None, engine="onnxruntime", prepare=False, policy_tick_ms=0,
                       engine_options={"cache": tmp_path, "threads": 1})
    pred = r.infer(np.zeros(tuple(m.cfg.input_size), np.uint8))
    assert pol.ladders[0].view_key == "ort:b1" and 1 not in pol.ladders[0].parent_indices
    assert pred.level == 2  # view index 1 -> engine level 2
    rt = AdaptiveRunner(m, policy=Sees(pick=1), sensors=None, engine="torch", prepare=False)
    assert rt.view.view_key == "torch:b1" and rt.view.parent_indices == tuple(range(n))


# calibrate --------------------------------------------------------------------------------------------------
def test_measure_times_every_level_of_every_engine_at_every_batch():
    r, eng, _ = fake_runner(pick=0)
    out = cal.measure([eng], (1, 2), rounds=1, warmup=0)
    assert len(out) == 5 and all(set(m) == {"fake:b1", "fake:b2"} for m in out)
    assert all(v > 0 for m in out for v in m.values())
    assert sorted(set(eng.ran)) == [0, 1, 2, 3, 4]
    med = cal.measure([eng], (1,), rounds=3, warmup=0, stat="median")
    assert all(m["fake:b1"] > 0 for m in med)
    with pytest.raises(ValueError, match="stat"):
        cal.measure([eng], (1,), stat="mean")


def test_calibrate_caches_per_device_and_heals_a_corrupt_cache(tmp_path, monkeypatch, caplog):
    calls = []

    def fake_measure(engines, batches, **kw):  # scripted "this device": level 1 slower than level 2 at b1
        calls.append(tuple(batches))
        return [{latency_key(engines[0].name, b): (v * b) for b in batches} for v in (1.0, 2.2, 2.0, 3.0, 5.0)]

    monkeypatch.setattr(cal, "measure", fake_measure)
    r, eng, pol = fake_runner(pick=1)
    view = r.calibrate(cache=tmp_path)
    assert calls == [(1,)] and view is r.view and view.parent_indices == (0, 2, 3, 4)
    assert [x.latency_ms for x in view.rungs] == [1.0, 2.0, 3.0, 5.0]
    r.infer(np.zeros((4, 4), np.uint8))
    assert pol.ladders[-1] is view and eng.ran[-1] == 2  # the policy's pick 1 is engine level 2 now
    assert r.ladder.rungs[1].latency["fake:b1"] == LAT["ort:b1"][1]  # the model's ladder is left alone
    files = list((tmp_path / "latency").glob("*.json"))
    assert len(files) == 1
    r2, _, _ = fake_runner(pick=1)
    assert r2.calibrate(cache=tmp_path).parent_indices == (0, 2, 3, 4) and calls == [(1,)]  # from the cache
    r2.calibrate(cache=tmp_path, force=True)
    assert calls == [(1,), (1,)]
    files[0].write_text("{not json")
    assert r2.calibrate(cache=tmp_path).parent_indices == (0, 2, 3, 4) and len(calls) == 3  # rebuilt
    assert json.loads(files[0].read_text())["format"] == cal.FORMAT
    assert "rebuilding" in caplog.text
    files[0].write_text(json.dumps({"format": cal.FORMAT, "entries": []}))  # valid JSON, wrong shape
    r2.calibrate(cache=tmp_path)
    assert len(calls) == 4
    other = cal.LatencyCache(tmp_path, device="another cpu|x86_64|4 cpus|host")
    assert other.path != files[0] and other.get(cal.LatencyCache.entry_keys(eng), ["fake:b1"]) is None
    r2.calibrate(cache=tmp_path, batches=(32,))  # b32 not cached yet: measured, both batch sizes
    assert calls[-1] == (1, 32) and r2.view.view_key == "fake:b1"
