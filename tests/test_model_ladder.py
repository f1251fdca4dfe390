"""A ladder of separate models (ModelLadder): ONNX files and torch modules switched by a policy, outputs
equal to each model run alone; profiling (order, accuracy on a folder, switch cost); folders with
ladder.json; the wrapper contract (levels + meta + forward(x, level)); bad input named."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import adaptive_csp as ac
from adaptive_csp.control.policy import Decision, Policy
from adaptive_csp.levels import LevelLadder
from adaptive_csp.models.ladder import LADDER_FILE, ModelLadder
from adaptive_csp.runtime import model_profile
from adaptive_csp.runtime.calibrate import LatencyCache

ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

SIZE = 32
SPEC = {"input_size": [SIZE, SIZE], "in_chans": 3, "color": "rgb", "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25]}
MEAN, STD = 0.5, 0.25


class Cycle(Policy):
    """Level i % n of the ladder it is shown on call i."""

    name = "cycle"

    def __init__(self):
        self.i = 0

    def decide(self, readings, stats, ladder):
        self.i += 1
        return Decision((self.i - 1) % len(ladder), "cycle")


def conv_net(width: int, depth: int, classes: int = 4, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)]
    return nn.Sequential(*layers).eval()


class ChannelRule(nn.Module):
    """Logits = the mean of each input channel, in ``perm`` order: a classifier whose answers are known."""

    def __init__(self, perm=(0, 1, 2)):
        super().__init__()
        self.register_buffer("perm", torch.tensor(perm))

    def forward(self, x):
        return x.mean(dim=(2, 3))[:, self.perm]


def export(net: nn.Module, path, size: int = SIZE, dynamic: bool = True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = {"x": {0: "n"}, "y": {0: "n"}} if dynamic else None
        torch.onnx.export(net, (torch.zeros(1, 3, size, size),), str(path), input_names=["x"],
                          output_names=["y"], dynamic_axes=axes, dynamo=False)
    return path


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three ONNX files of different widths, listed out of order: medium, large, small."""
    d = tmp_path_factory.mktemp("three")
    return [export(conv_net(w, k), d / f"{n}.onnx") for n, w, k in (("m", 16, 1), ("l", 48, 2), ("s", 4, 0))]


def model_input(frame_bgr: np.ndarray) -> np.ndarray:
    """What each file alone is fed: RGB, (x/255 − mean)/std, N×C×H×W (frames already SIZE×SIZE)."""
    x = (frame_bgr[..., ::-1].astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def alone(path, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_three_onnx_files_switch_under_a_policy_equal_to_each_file_alone(three):
    ladder = ac.ModelLadder(three, preprocess=SPEC, class_names=list("abcd"), ordered=False)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(9)]
    with ac.AdaptiveRunner(ladder, policy=Cycle(), sensors=None, policy_tick_ms=0) as r:
        assert r.engine.name == "onnxruntime" and len(r.view) == 3
        lat = [rung.latency["ort:b1"] for rung in r.model.levels.rungs]
        assert lat == sorted(lat), "the measured ladder runs cheapest first"
        files = [r.model.onnx_file(i) for i in range(3)]
        assert sorted(files) == sorted(p.resolve() for p in three)
        # each level's name, recorded file and measured latency belong to the file that level runs
        assert [f.stem for f in files] == list(r.model.names)
        assert [rung.extra["file"] for rung in r.model.levels.rungs] == [str(f) for f in files]
        preds = [r.infer(f) for f in frames]
        stats = r.stats()
        batch = r.infer(frames[:3])
    assert [p.level for p in preds] == [r.view.parent_index(i % 3) for i in range(9)]
    assert stats["per_level"] == {0: 3, 1: 3, 2: 3} and stats["switches"] == 8
    for p, f in zip(preds, frames):
        want = softmax(alone(files[p.level], model_input(f)))[0]
        np.testing.assert_allclose(p.probs, want, atol=1e-6, rtol=0, err_msg=f"level {p.level}")
        assert p.class_name == "abcd"[int(want.argmax())]
    x = np.concatenate([model_input(f) for f in frames[:3]])
    want = softmax(alone(files[batch[0].level], x))
    np.testing.assert_allclose(np.stack([p.probs for p in batch]), want, atol=1e-6, rtol=0)
    assert ladder.names == ("m", "l", "s"), "the ladder passed in is not changed"


def test_given_order_is_kept_and_costs_come_from_the_measurement(three):
    small, medium, large = three[2], three[0], three[1]
    with ac.AdaptiveRunner([small, medium, large], preprocess=SPEC, policy=Cycle(), sensors=None) as r:
        assert r.model.names == ("s", "m", "l") and r.model.ordered
        assert r.model.measured("ort:b1")
        b1 = [rung.latency["ort:b1"] for rung in r.model.levels.rungs]
        assert r.model.levels.costs == pytest.approx([v / b1[-1] for v in b1])
        assert r.model.levels.rungs[0].extra == {"model": "s", "kind": "onnx", "file": str(small.resolve())}


def fake_measure(ms_by_name):
    def measure(engines, batches, rounds=None):
        (eng,) = engines
        names = eng.model.names
        return [{f"ort:b{b}": ms_by_name[n] * b for b in batches} for n in names]
    return measure


def colour_folder(root, per_class: int = 5, side: int = 40):
    """red / green / blue images (noise on a pure colour), a size other than the models' input."""
    rng = np.random.default_rng(1)
    for k, name in enumerate(("blue", "green", "red")):  # sorted: the folder's class order
        (root / name).mkdir(parents=True)
        for j in range(per_class):
            img = rng.integers(0, 60, (side, side + 8, 3), dtype=np.uint8)
            img[..., k] = 200  # BGR on disk: blue, green, red are channels 0, 1, 2
            cv2.imwrite(str(root / name / f"{j}.png"), img)
    return root


def test_profile_orders_by_latency_and_scores_each_model_on_a_folder(tmp_path, monkeypatch):
    # RGB channel means in the order blue, green, red: the folder's classes -> right every time
    good = export(ChannelRule((2, 1, 0)), tmp_path / "good.onnx")
    swapped = export(ChannelRule((0, 1, 2)), tmp_path / "swapped.onnx")  # only green right
    const = export(ChannelRule((1, 1, 1)), tmp_path / "const.onnx")  # a tie: always class 0 (blue)
    data = colour_folder(tmp_path / "val")
    monkeypatch.setattr(model_profile, "measure", fake_measure({"good": 3.0, "swapped": 1.0, "const": 2.0}))
    spec = {**SPEC, "mean": [0.0] * 3, "std": [1.0] * 3}
    out = ac.profile_ladder([good, swapped, const], data, preprocess=spec, switch_pairs=10)
    assert out.names == ("swapped", "const", "good")
    assert [r.latency["ort:b32"] for r in out.levels.rungs] == [32.0, 64.0, 96.0]
    assert [r.latency_ms for r in out.levels.rungs] == [1.0, 2.0, 3.0]
    assert out.meta["class_names"] == ["blue", "green", "red"] and out.meta["profile"]["images"] == 15
    # expected accuracy from each file alone on the images, read and resized independently
    right = {n: 0 for n in out.names}
    for k, name in enumerate(("blue", "green", "red")):
        for f in sorted((data / name).iterdir()):
            img = cv2.resize(cv2.imread(str(f)), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
            x = np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
            for n, path in (("good", good), ("swapped", swapped), ("const", const)):
                right[n] += int(alone(path, x).argmax() == k)
    assert [r.accuracy for r in out.levels.rungs] == pytest.approx([right[n] / 15 for n in out.names])
    assert out.levels.rungs[-1].accuracy == 1.0 and out.levels.rungs[0].accuracy < 1.0
    sc = out.meta["switch_cost"]["ort:b1"]
    assert sc["switched_ms"] > 0 and sc["held_ms"] > 0 and sc["switch_cost"] == max(0.0, round(sc["ratio"] - 1, 4))
    assert "switch (ort:b1)" in out.report() and "| 2 | good | onnx |" in out.report()
    with pytest.raises(ValueError, match="differ"):
        ac.profile_ladder([good, swapped], data, preprocess=spec, class_names=["a", "b", "c"], switch_pairs=0)


def test_folder_with_ladder_json_runs_without_measuring_again(three, tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    files = []
    for p in three:
        files.append(folder / p.name)
        files[-1].write_bytes(p.read_bytes())
    assert not ModelLadder.from_folder(folder, preprocess=SPEC).ordered  # no ladder.json: unordered
    measured = ac.profile_ladder(ModelLadder(files, preprocess=SPEC, class_names=list("abcd")),
                                 batches=(1,), switch_pairs=5, save=folder)
    doc = json.loads((folder / LADDER_FILE).read_text())
    assert doc["models"] == [f"{n}.onnx" for n in measured.names] and doc["switch_cost"]["ort:b1"]["pairs"] == 5

    def no_measure(*a, **k):
        raise AssertionError("measured again")

    monkeypatch.setattr(model_profile, "measure", no_measure)
    back = ModelLadder.from_folder(folder)
    assert back.levels == measured.levels and back.meta["class_names"] == list("abcd")
    with ac.AdaptiveRunner(str(folder), policy=Cycle(), sensors=None, policy_tick_ms=0) as r:
        assert r.model.names == measured.names
        preds = [r.infer(np.zeros((SIZE, SIZE, 3), np.uint8)) for _ in range(3)]
    assert sorted(p.level for p in preds) == [0, 1, 2]


def test_torch_modules_and_onnx_files_mixed(three, tmp_path):
    small = conv_net(4, 0, seed=3)
    frame = np.random.default_rng(2).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    x = model_input(frame)
    opts = {"cache": tmp_path, "threads": 1}
    with ac.AdaptiveRunner([small, three[1]], preprocess=SPEC, policy=Cycle(), sensors=None, policy_tick_ms=0,
                           engine_options=opts) as r:
        assert r.model.kinds == ("torch", "onnx")
        p0, p1 = r.infer(frame), r.infer(frame)
    with torch.inference_mode():
        np.testing.assert_allclose(p0.probs, softmax(small(torch.from_numpy(x)).numpy())[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(p1.probs, softmax(alone(three[1], x))[0], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="ONNX files"):
        ac.AdaptiveRunner([small, three[1]], preprocess=SPEC, engine="torch", sensors=None)
    big = conv_net(8, 1, seed=4)
    with ac.AdaptiveRunner(ModelLadder([small, big], preprocess=SPEC), engine="torch", policy=Cycle(),
                           sensors=None, policy_tick_ms=0) as r:
        q0, q1 = r.infer(frame), r.infer(frame)
    eager = ac.make_engine(ModelLadder([small, big], preprocess=SPEC), "cuda", device="cpu", graphs=False)
    with torch.inference_mode():
        for q, net in ((q0, small), (q1, big)):
            want = net(torch.from_numpy(x)).numpy()
            np.testing.assert_allclose(q.probs, softmax(want)[0], atol=1e-6, rtol=0)
            np.testing.assert_allclose(eager.run(x, q.level), want, atol=1e-6, rtol=0)


def test_torchscript_files_are_torch_levels_and_save_by_file(three, tmp_path):
    net = conv_net(4, 0, seed=9)
    pt = tmp_path / "tiny.pt"
    torch.jit.trace(net, torch.zeros(1, 3, SIZE, SIZE)).save(str(pt))
    frame = np.random.default_rng(4).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    x = torch.from_numpy(model_input(frame))
    ladder = ModelLadder([pt, three[1]], preprocess=SPEC)
    assert ladder.kinds == ("torch", "onnx") and ladder.names == ("tiny", "l")
    with ac.AdaptiveRunner(ladder, policy=Cycle(), sensors=None, policy_tick_ms=0,
                           engine_options={"cache": tmp_path}) as r:
        p0 = r.infer(frame)
    with torch.inference_mode():
        np.testing.assert_allclose(p0.probs, softmax(net(x).numpy())[0], atol=1e-5, rtol=0)
    back = ModelLadder.from_file(r.model.save(tmp_path))  # the TorchScript level is saved by its file
    assert back.kinds == ("torch", "onnx") and back.files == r.model.files


def test_fixed_batch_onnx_runs_a_batch_row_by_row(tmp_path):
    path = export(conv_net(4, 0, seed=5), tmp_path / "fixed.onnx", dynamic=False)
    frames = [np.full((SIZE, SIZE, 3), v, np.uint8) for v in (0, 90, 250)]
    with ac.AdaptiveRunner([path], preprocess=SPEC, sensors=None) as r:
        got = np.stack([p.probs for p in r.infer(frames)])
    want = np.concatenate([softmax(alone(path, model_input(f))) for f in frames])
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


class Wrapper(nn.Module):
    """The documented contract without prepared(): levels, meta and forward(x, level)."""

    def __init__(self):
        super().__init__()
        self.nets = nn.ModuleList([conv_net(4, 0, seed=6), conv_net(8, 1, seed=7)])
        self.levels = LevelLadder.from_costs([0.5, 1.0])
        self.meta = {"preprocess": SPEC, "class_names": list("abcd")}
        self.eval()

    def forward(self, x, level=None):
        return self.nets[1 if level is None else level](x)


def test_plain_module_and_a_wrapper_with_levels_and_meta():
    frame = np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    x = torch.from_numpy(model_input(frame))
    w = Wrapper()
    with ac.AdaptiveRunner(w, policy=Cycle(), sensors=None, policy_tick_ms=0) as r:
        assert r.engine.name == "torch" and len(r.ladder) == 2
        got = [r.infer(frame) for _ in range(2)]
    with torch.inference_mode():
        for p in got:
            np.testing.assert_allclose(p.probs, softmax(w.nets[p.level](x).numpy())[0], atol=1e-6, rtol=0)
    assert [p.level for p in got] == [0, 1]
    eager = ac.make_engine(w, "cuda", device="cpu", graphs=False)  # copies each level: AtLevel(copy, i)
    with torch.inference_mode():
        for lv in (0, 1):
            np.testing.assert_allclose(eager.run(x.numpy(), lv), w.nets[lv](x).numpy(), atol=1e-6, rtol=0)
    plain = conv_net(4, 0, seed=8)
    with ac.AdaptiveRunner(plain, preprocess=SPEC, sensors=None) as r:
        assert len(r.ladder) == 1 and r.engine.name == "torch"
        with torch.inference_mode():
            np.testing.assert_allclose(r.infer(frame).probs, softmax(plain(x).numpy())[0], atol=1e-6, rtol=0)


def test_content_demand_stream_and_calibrate_work_unchanged(three, tmp_path):
    ladder = ac.ModelLadder(three, preprocess=SPEC, ordered=False)
    frames = [np.full((SIZE, SIZE, 3), v, np.uint8) for v in range(0, 250, 50)]
    with ac.AdaptiveRunner(ladder, policy="performance", sensors=None, content=True) as r:
        out = list(r.stream(frames))
        view = r.calibrate(cache=tmp_path, rounds=1)
    assert [p.frame_index for p in out] == list(range(len(frames)))
    assert all(0 <= p.level < 3 for p in out) and view.view_key == "ort:b1"
    # the per-device latency cache tells ladders apart: same positions, other models
    other = ac.ModelLadder([three[2], three[0], three[1]], preprocess=SPEC)
    keys = [LatencyCache.entry_keys(ac.make_engine(m, "onnxruntime")) for m in (ladder, other)]
    assert not set(keys[0]) & set(keys[1])


def test_bad_input_is_named(three, tmp_path):
    with pytest.raises(ValueError, match="at least one model"):
        ModelLadder([])
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    with pytest.raises(ValueError, match="notes.txt has suffix"):
        ModelLadder([txt])
    with pytest.raises(ValueError, match="no such file"):
        ModelLadder([tmp_path / "missing.onnx"])
    if importlib.util.find_spec("onnx") is not None:
        junk = tmp_path / "junk.onnx"
        junk.write_bytes(b"not a protobuf \xff\xfe")
        with pytest.raises(ValueError, match="junk.onnx: not a readable ONNX file"):
            ModelLadder([junk])
    with pytest.raises(ValueError, match="same model"):
        ModelLadder([three[0], three[0]])
    with pytest.raises(ValueError, match="model 1: expected"):
        ModelLadder([three[0], 3])
    with pytest.raises(ValueError, match="colour"):
        ModelLadder(three, preprocess={**SPEC, "colour": "rgb"})
    small = export(conv_net(4, 0), tmp_path / "small16.onnx", size=16)
    with pytest.raises(ValueError, match="small16.onnx"):
        ac.AdaptiveRunner([three[2], small], preprocess=SPEC, sensors=None)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / LADDER_FILE).write_text(json.dumps({"models": ["a.onnx"], "speed": 1}))
    with pytest.raises(ValueError, match="(?s)ladder.json.*speed"):
        ac.AdaptiveRunner(str(tmp_path / "bad"), sensors=None)
    with pytest.raises(ValueError, match="preprocess"):
        ac.AdaptiveRunner(three, sensors=None)
    with pytest.raises(ValueError, match="got int"):
        ac.AdaptiveRunner(3, sensors=None)
    with pytest.raises(ValueError, match="for classifiers"):
        ac.profile_ladder(ModelLadder([three[2]], preprocess=SPEC, task="detect"), tmp_path, batches=(1,),
                          switch_pairs=0, rounds=1)


def test_a_ladder_of_your_own_onnx_files_exports_as_a_bundle(three, tmp_path):
    """Your ONNX files go into the bundle as given; the bundle runs each level as that file alone."""
    with ac.AdaptiveRunner(ac.ModelLadder(three, preprocess=SPEC, class_names=list("abcd"), ordered=False),
                           sensors=None) as r:
        measured = r.model  # ordered cheapest -> full by the measurement
    out = ac.export_bundle(measured, tmp_path / "bundle")
    frames = [np.random.default_rng(k).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for k in range(6)]
    with ac.AdaptiveRunner(str(out), policy=Cycle(), sensors=None, policy_tick_ms=0) as b:
        assert b.class_names == list("abcd") and len(b.ladder) == 3
        preds = [b.infer(f) for f in frames]
    assert sorted({p.level for p in preds}) == [0, 1, 2]
    for p, f in zip(preds, frames):
        want = softmax(alone(measured.onnx_file(p.level), model_input(f)))[0]
        np.testing.assert_allclose(p.probs, want, atol=1e-6, rtol=0, err_msg=f"level {p.level}")
