"""int8 rungs: agreement with the float level, Pareto selection, installation into the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptive_csp.data.fashion_mnist import MEAN, STD, load_sample
from adaptive_csp.levels import Level, LevelLadder, Rung
from adaptive_csp.models import create_model
from adaptive_csp.models.pretrained import pretrained
from adaptive_csp.quant import INT8, install_int8, install_module, module_bytes, quantize_level
from adaptive_csp.train.int8_profile import int8_ladder


@pytest.fixture(scope="module")
def sample():
    s = load_sample()
    assert len(s) >= 500
    return s.normalized(slice(0, 500))


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return pretrained()


def test_int8_agrees_with_fp32_level(model, sample):
    level = len(model.levels) - 1  # the full level: the most layers, the most accumulated error
    q = quantize_level(model, level, [sample[:256]])
    with torch.no_grad():
        ref = model(sample, level).argmax(1)
        got = q(sample).argmax(1)
    agree = float((ref == got).float().mean())
    assert agree >= 0.97, f"int8 agrees with fp32 on only {agree:.1%} of 500 test images"
    assert getattr(q, "precision", None) == INT8
    assert module_bytes(q) < 0.5 * module_bytes(model.export(level))  # int8 weights are ~4x smaller


def test_installed_int8_rung_runs_like_any_level(sample):
    torch.manual_seed(0)
    m = create_model("csp_small").eval()
    rungs = [Rung(level=lv, latency_ms=1.0 + i, accuracy=0.5 + 0.01 * i) for i, lv in enumerate(m.levels)]
    rungs[0] = Rung(level=rungs[0].level, latency_ms=1.0, accuracy=0.5, extra={"precision": INT8})
    m.levels = LevelLadder(rungs)
    seen = []

    def calib(lv):  # per-level calibration hook
        seen.append(lv)
        return [sample[:64]]

    installed = install_int8(m, calib)
    assert list(installed) == [m.levels[0]] and seen == [m.levels[0]]
    with torch.no_grad():
        out = m(sample[:8], 0)
        assert torch.equal(out, installed[m.levels[0]](sample[:8]))
        assert not torch.equal(out, m.export(0)(sample[:8]))  # the int8 module ran, not the float one
        m.invalidate()  # new weights / ladder: back to the float level
        assert torch.allclose(m(sample[:8], 0), m.export(0)(sample[:8]), atol=1e-5)


def test_install_module_hook():
    m = create_model("csp_small").eval()
    ident = torch.nn.Linear(784, 10)
    install_module(m, -1, torch.nn.Sequential(torch.nn.Flatten(), ident))
    with torch.no_grad():
        x = torch.randn(2, 1, 28, 28)
        assert torch.equal(m(x), ident(x.flatten(1)))


def _lv(i: int) -> Level:
    return Level([(1.0, i)])


def test_int8_ladder_only_pareto_better_rungs_join():
    fp32 = [Rung(_lv(i), latency_ms=lat, latency_ms_b32=10 * lat, accuracy=acc)
            for i, (lat, acc) in enumerate([(1.0, 0.80), (2.0, 0.85), (3.0, 0.90), (4.0, 0.92)])]
    int8 = [
        Rung(_lv(0), latency_ms=1.2, accuracy=0.80),  # slower: stays float
        Rung(_lv(1), latency_ms=1.5, accuracy=0.84),  # faster but 1 pt worse: stays float
        Rung(_lv(2), latency_ms=1.9, accuracy=0.899),  # faster, within tolerance: joins as int8
        None,
    ]
    lad = int8_ladder(fp32, int8, acc_tol=0.002)
    keys = [r.level for r in lad.rungs]
    # int8 level 2 (1.9 ms, 0.899) dominates float level 1 (2.0 ms, 0.85): level 1 drops out
    assert keys == [_lv(0), _lv(2), _lv(3)]
    r2 = lad.rungs[1]
    assert r2.extra["precision"] == INT8 and r2.latency_ms == 1.9 and r2.extra["fp32_latency_ms"] == 3.0
    assert "precision" not in lad.rungs[0].extra
    assert lad.full == 2 and lad.rungs[-1].level == _lv(3)


def test_int8_ladder_without_gain_is_unchanged():
    fp32 = [Rung(_lv(i), latency_ms=1.0 + i, accuracy=0.8 + 0.01 * i) for i in range(3)]
    int8 = [Rung(_lv(i), latency_ms=1.5 + i, accuracy=0.8 + 0.01 * i) for i in range(3)]
    assert int8_ladder(fp32, int8) == LevelLadder(fp32)


def test_runner_runs_an_int8_rung(sample):
    from adaptive_csp.runtime.runner import AdaptiveRunner

    m = pretrained()
    rungs = list(m.levels.rungs)
    rungs[0] = Rung(level=rungs[0].level, extra={"precision": INT8})
    m.levels = LevelLadder(rungs)
    installed = install_int8(m, [sample[:128]])
    q = installed[m.levels[0]]
    img = load_sample().images[0, 0].numpy()  # one 28×28 uint8 frame
    with AdaptiveRunner(m, policy="static-min", sensors=None) as runner:
        pred = runner.infer(img)
    assert pred.level == 0
    with torch.inference_mode():
        x = (torch.from_numpy(img).float()[None, None] / 255.0 - MEAN) / STD
        ref = torch.softmax(q(x), 1)[0]
    assert torch.allclose(torch.from_numpy(pred.probs.copy()), ref, atol=1e-5)


def test_int8_ladder_keeps_float_rungs_it_does_not_beat():
    # float level 1 is dominated by float level 0 on these numbers, but no int8 rung is involved: kept
    fp32 = [Rung(_lv(0), latency_ms=1.0, accuracy=0.9), Rung(_lv(1), latency_ms=2.0, accuracy=0.85),
            Rung(_lv(2), latency_ms=3.0, accuracy=0.95)]
    assert int8_ladder(fp32, [None, None, None]) == LevelLadder(fp32)


# --- int8 on ONNX Runtime (static QDQ) ----------------------------------------------------------------------

def test_quantize_onnx_agrees_with_fp32_and_is_smaller(model, sample, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from adaptive_csp.engines.export import export_onnx
    from adaptive_csp.quant import quantize_onnx

    level = len(model.levels) - 1
    fp = export_onnx(model, level, tmp_path / "fp32.onnx")
    q = quantize_onnx(fp, tmp_path / "int8.onnx", [sample[:128], sample[128:256]])
    x = sample.numpy()
    run = {p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp, q)}
    ref, got = (run[p].run(None, {"input": x})[0].argmax(1) for p in (fp, q))
    agree = float((ref == got).mean())
    assert agree >= 0.97, f"ORT int8 agrees with fp32 on only {agree:.1%} of 500 test images"
    ops = {n.op_type for n in __import__("onnx").load(str(q)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ format
    assert q.stat().st_size < 0.5 * fp.stat().st_size
    with pytest.raises(ValueError, match="calibration"):
        quantize_onnx(fp, tmp_path / "none.onnx", [])


def test_ort_engine_runs_marked_int8_rungs(sample, tmp_path, caplog):
    pytest.importorskip("onnxruntime")
    from adaptive_csp.engines.ort_engine import OrtEngine
    from adaptive_csp.runtime.runner import AdaptiveRunner

    m = pretrained()
    rungs = [Rung(level=r.level) for r in m.levels.rungs]  # the shipped int8 marks cleared: only the last
    rungs[-1] = Rung(level=rungs[-1].level, extra={"precision": INT8})
    m.levels = LevelLadder(rungs)
    x = sample[:64].numpy()
    fp = OrtEngine(m, threads=1, cache=tmp_path, int8=[])
    q = OrtEngine(m, threads=1, cache=tmp_path, calib=[sample[:128]])
    assert q.describe()["int8_levels"] == [len(rungs) - 1] and fp.describe()["int8_levels"] == []
    a, b = fp.run(x, len(rungs) - 1), q.run(x, len(rungs) - 1)
    assert not np.allclose(a, b, atol=1e-4)  # the int8 model ran ...
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.95  # ... and agrees with the float one
    np.testing.assert_allclose(q.run(x, 0), fp.run(x, 0), atol=1e-6)  # unmarked rungs stay float
    q2 = OrtEngine(m, threads=1, cache=tmp_path, calib=[sample[:128]]).prepare([len(rungs) - 1])
    assert q2.built[-1] is False  # the int8 file is cached (keyed by the calibration data too)
    q3 = OrtEngine(m, threads=1, cache=tmp_path, calib=[sample[128:256]]).prepare([len(rungs) - 1])
    assert q3.built[-1] is True
    with caplog.at_level("WARNING"):
        m.int8_calib = None  # neither calib= nor the checkpoint's own calibration images
        nocal = OrtEngine(m, threads=1, cache=tmp_path)
        np.testing.assert_allclose(nocal.run(x, len(rungs) - 1), a, atol=1e-6)  # no calibration: float
    assert any("no calibration data" in r.getMessage() for r in caplog.records)
    img = load_sample().images[0, 0].numpy()
    with AdaptiveRunner(m, policy="static-max", sensors=None, engine="onnxruntime",
                        engine_options={"calib": [sample[:128]], "cache": tmp_path, "threads": 1}) as r:
        p = r.infer(img)
    xi = r.pre(img)[0].numpy()
    want = torch.softmax(torch.from_numpy(q.run(xi, len(rungs) - 1)), 1)[0].numpy()
    assert p.level == len(rungs) - 1
    np.testing.assert_allclose(p.probs, want, atol=1e-5)


def test_int8_profile_marks_the_rungs_that_gain_and_the_engine_runs_them(model, sample, tmp_path):
    pytest.importorskip("onnxruntime")
    from adaptive_csp.engines import OrtEngine
    from adaptive_csp.models.pretrained import load_model, save_model
    from adaptive_csp.train.int8_profile import calib_images, int8_profile

    s = load_sample()
    n = len(model.levels)
    calib = calib_images(s.images[:128].numpy(), 64)
    lad, rows = int8_profile(model, calib, sample[128:384].numpy(), s.labels[128:384].numpy(), rounds=3,
                             levels=[0, -1], cache=tmp_path)
    assert [r["level"] for r in rows] == [0, n - 1] and len(lad) == n  # every rung kept
    for r in rows:
        assert r["fp32_b1_ms"] > 0 and r["int8_b1_ms"] > 0 and 0 <= r["int8_acc"] <= 1
        rung = lad.rungs[r["level"]]
        want = (r["int8_b1_ms"] * 1.03 <= r["fp32_b1_ms"] and r["int8_b32_ms"] <= r["fp32_b32_ms"]
                and r["int8_acc"] >= r["fp32_acc"] - 0.002)
        assert r["joined"] == want == (rung.extra.get("precision") == INT8)
        assert rung.latency["ort:b1"] == round(r["int8_b1_ms" if want else "fp32_b1_ms"], 4)
        assert rung.accuracy == round(r["fp32_acc"], 4)
        assert rung.accuracy_on("onnxruntime") == round(r["int8_acc" if want else "fp32_acc"], 4)
        assert rung.accuracy_on("torch") == rung.accuracy
    # force one int8 rung, save, load: the engine rebuilds it from the checkpoint's own calibration images
    m2 = load_model(save_model(model, tmp_path / "m"))
    rungs = list(m2.levels.rungs)
    rungs[0] = type(rungs[0])(level=rungs[0].level, macs=rungs[0].macs, params=rungs[0].params,
                              accuracy=rungs[0].accuracy, extra={**rungs[0].extra, "precision": INT8})
    m2.levels = LevelLadder(rungs)
    m2.int8_calib = calib
    m3 = load_model(save_model(m2, tmp_path / "m3"))
    np.testing.assert_array_equal(m3.int8_calib, calib)
    eng = OrtEngine(m3, threads=1, cache=tmp_path / "c")
    assert eng.precision(0) == INT8
    eng.prepare([0])
    import onnx

    assert "QuantizeLinear" in {nd.op_type for nd in onnx.load(str(eng.paths[0])).graph.node}

