"""int8 rungs: agreement with the float level, Pareto selection, installation into the model."""

from __future__ import annotations

import pytest
import torch

from adaptive_csp.data.fashion_mnist import MEAN, STD, load_sample
from adaptive_csp.levels import Level, LevelLadder, Rung
from adaptive_csp.models import create_model
from adaptive_csp.models.pretrained import pretrained
from adaptive_csp.quant import INT8, install_int8, install_module, int8_ladder, module_bytes, quantize_level


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
