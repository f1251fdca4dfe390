import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_csp import Level
from adaptive_csp.models import create_model, list_models
from adaptive_csp.models.registry import get_model_cfg

IMAGENET = ["cspresnet50", "resnet50", "cspresnext50", "resnext50", "cspdarknet53", "darknet53"]


def test_presets_registered():
    for name in ["csp_small", "plain_small", *IMAGENET]:
        assert name in list_models()
    with pytest.raises(ValueError, match="unknown model"):
        create_model("nope")


def test_full_level_equals_exported_static(small_model):
    x = torch.randn(4, 1, 28, 28)
    lv = small_model.full_level()
    static = small_model.export(lv)
    with torch.no_grad():
        sliced = small_model.head(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(
            small_model._features_sliced(x, lv)[-1], 1), 1))
        assert torch.allclose(static(x), sliced, atol=1e-5)
        assert torch.allclose(small_model(x), static(x), atol=1e-5)
    # the full level is the static CSP: every block active at the config's split ratio
    assert lv == small_model.levels[-1]
    assert all(s.ratio == 0.5 and s.blocks == 3 for s in lv.stages)


@pytest.mark.parametrize("level_idx", range(7))
def test_every_ladder_level_sliced_equals_export(small_model, level_idx):
    x = torch.randn(3, 1, 28, 28)
    lv = small_model.levels[level_idx]
    with torch.no_grad():
        feats = small_model._features_sliced(x, lv)
        ref = small_model.head(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(feats[-1], 1), 1))
        assert torch.allclose(small_model(x, level_idx), ref, atol=1e-5)


@pytest.mark.parametrize("name", ["csp_small", "plain_small", *IMAGENET])
def test_ladder_shapes_batch_1_and_8(name):
    model = create_model(name, num_classes=7).eval()
    size = (28, 28) if name.endswith("small") else (64, 64)
    for batch in (1, 8):
        x = torch.randn(batch, model.cfg.in_chans, *size)
        with torch.no_grad():
            for i in range(len(model.levels)):
                y = model(x, i)
                assert y.shape == (batch, 7)
                assert torch.isfinite(y).all()


def test_features_only_per_stage_maps():
    model = create_model("csp_small", features_only=True).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        for i in (0, -1):
            feats = model(x, i)
            assert [f.shape[1] for f in feats] == [64, 128, 256]
            assert [f.shape[-1] for f in feats] == [14, 7, 4]
    m2 = create_model("csp_small").eval()
    assert len(m2.features(x, 0)) == 3


def test_bad_levels_raise_value_error(small_model):
    x = torch.randn(1, 1, 28, 28)
    with pytest.raises(ValueError, match="out of range"):
        small_model(x, 99)
    with pytest.raises(ValueError, match="ratio 0.3 is not one of"):
        small_model(x, Level([(0.3, 1), (0.5, 1), (0.5, 1)]))
    with pytest.raises(ValueError, match="2 stages but the model has 3"):
        small_model(x, Level([(0.5, 1), (0.5, 1)]))
    with pytest.raises(ValueError, match="4 active blocks but the stage has only 3"):
        small_model(x, Level([(0.5, 4), (0.5, 1), (0.5, 1)]))
    with pytest.raises(ValueError, match="ladder index"):
        small_model(x, "full")
    with pytest.raises(ValueError, match="blocks must be >= 0"):
        Level([(0.5, -1)])


def test_two_threads_two_levels_concurrently(small_model):
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        expect = {i: small_model(x, i) for i in (0, 6)}
    small_model.invalidate()  # force the lazy build to race too
    results, errors = {0: [], 6: []}, []

    def run(i):
        try:
            with torch.inference_mode():
                for _ in range(30):
                    results[i].append(small_model(x, i))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,)) for i in (0, 6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    for i in (0, 6):
        assert all(torch.equal(r, expect[i]) for r in results[i])
    assert not torch.allclose(expect[0], expect[6])


def test_export_torchscript_and_onnx_round_trip(small_model, tmp_path):
    lv = small_model.levels[2]
    static = small_model.export(lv)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        ref = small_model(x, 2)
        scripted = torch.jit.script(static)
        assert torch.allclose(scripted(x), ref, atol=1e-5)
        path = tmp_path / "s.pt"
        scripted.save(str(path))
        assert torch.allclose(torch.jit.load(str(path))(x), ref, atol=1e-5)
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    opath = tmp_path / "s.onnx"
    torch.onnx.export(static, (x,), str(opath), input_names=["x"], output_names=["y"], dynamo=True)
    model = onnx.load(str(opath))
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    assert "Conv" in ops and ("Gemm" in ops or "MatMul" in ops)


def test_exported_module_holds_only_its_weights(small_model):
    cheap, full = small_model.export(0), small_model.export(-1)
    n_cheap = sum(p.numel() for p in cheap.parameters())
    n_full = sum(p.numel() for p in full.parameters())
    assert n_cheap < 0.5 * n_full
    assert small_model.params(0) == n_cheap
    assert small_model.params(-1) == n_full


def test_per_level_bn_calibration_used_by_prepared_and_export(small_model):
    x = torch.randn(64, 1, 28, 28)
    before = small_model(x[:2], 0).clone()
    small_model.calibrate_bn([0], [x])
    assert small_model.levels[0].key in small_model.bn_stats
    after = small_model(x[:2], 0)
    assert not torch.allclose(before, after)
    assert torch.allclose(small_model.export(0)(x[:2]), after, atol=1e-5)
    # shared statistics untouched: another level unchanged
    assert torch.allclose(small_model.export(-1)(x[:2]), small_model(x[:2], -1))


def test_macs_counted_and_csp_cheaper_than_plain():
    csp = create_model("csp_small")
    plain = create_model("plain_small")
    assert csp.macs(-1) < 0.8 * plain.macs(-1)
    assert csp.macs(0) < 0.3 * csp.macs(-1)
    r50, c50 = get_model_cfg("resnet50"), get_model_cfg("cspresnet50")
    assert r50.cross is False and c50.cross is True


_small = create_model("csp_small")
_stage_level = st.tuples(st.sampled_from(_small.cfg.ratios), st.integers(0, 3))


@settings(max_examples=25, deadline=None)
@given(st.lists(_stage_level, min_size=3, max_size=3), st.integers(0, 2))
def test_random_levels_property(stages, which):
    """Any valid level: right shape, finite output, MACs monotone in ratio and in depth."""
    model = _small
    lv = Level(stages)
    x = torch.randn(2, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        y = model(x, lv)
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    macs = model.macs(lv)
    r, b = stages[which]
    ratios = model.cfg.ratios
    if b < 3:
        deeper = list(stages)
        deeper[which] = (r, b + 1)
        assert model.macs(Level(deeper)) > macs
    i = ratios.index(r)
    if i + 1 < len(ratios):
        wider = list(stages)
        wider[which] = (ratios[i + 1], b)
        assert model.macs(Level(wider)) >= macs
        if b > 0:
            assert model.macs(Level(wider)) > macs


def test_zero_initialised_blocks_receive_gradients():
    """A new block starts as the identity but must be able to learn (no dead ReLU behind a zero BN)."""
    model = create_model("csp_small").train()
    x = torch.randn(8, 1, 28, 28)
    model(x).logsumexp(1).mean().backward()
    for stage in model.stages:
        for blk in stage.blocks:
            last = blk.conv3 or blk.conv2
            assert last.bn.weight.grad is not None and last.bn.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("act", ["relu", "leaky"])
def test_bottleneck_block_is_act_of_x_plus_f_x(act):
    """nn/stage.py documents bottleneck blocks as act(x + f(x)); check both paths against it by hand."""
    from adaptive_csp.nn.elastic import _act
    from adaptive_csp.nn.stage import ResBlock

    torch.manual_seed(0)
    blk = ResBlock(32, bottle_ratio=0.5, groups=1, act=act, kind="bottle").eval()
    for bn in (blk.conv1.bn, blk.conv2.bn, blk.conv3.bn):
        torch.nn.init.uniform_(bn.weight, 0.5, 1.5)
        torch.nn.init.uniform_(bn.bias, -1.0, 1.0)
    x = torch.randn(2, 32, 6, 6)
    with torch.no_grad():
        f = blk.conv3(blk.conv2(blk.conv1(x, 16), 16), 32)
        by_hand = _act(x + f, act)
        torch.testing.assert_close(blk(x), by_hand)
        torch.testing.assert_close(blk.export(32, lambda op: None)(x), by_hand, atol=1e-5, rtol=1e-5)
    assert (by_hand < 0).any() == (act == "leaky")  # leaky keeps negatives, ReLU removes them
