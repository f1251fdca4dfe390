"""Elastic width: Level carries it, every path follows it, MACs order the default ladders."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_csp.levels import Level, LevelLadder
from adaptive_csp.models import create_model, default_ladder, get_model_cfg, list_models
from adaptive_csp.models.config import ModelCfg
from adaptive_csp.models.net import candidate_ladder_levels, count_macs


@pytest.fixture(scope="module")
def wide() -> torch.nn.Module:
    torch.manual_seed(0)
    m = create_model("csp_wide")
    # non-trivial BN statistics and residual gains, so every slice matters
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.1, 0.1)
    return m.eval()


def _levels(cfg: ModelCfg):
    return st.builds(
        lambda w, stages: Level(stages, w),
        st.sampled_from(cfg.widths),
        st.tuples(*[st.tuples(st.sampled_from(cfg.ratios), st.integers(0, d)) for d in cfg.depths]),
    )


def test_level_width_validation_and_round_trip():
    lv = Level([(0.5, 1), (0.25, 0)], width=0.5)
    assert lv.key == "w0.5-r0.5b1-r0.25b0"
    assert Level.parse(json.loads(json.dumps(lv.to_dict()))) == lv
    assert Level([(0.5, 1)]) != Level([(0.5, 1)], 0.5)
    for bad in (0.0, -0.5, 1.5, float("nan"), "x", True):
        with pytest.raises(ValueError, match="width"):
            Level([(0.5, 1)], bad)
    cfg = get_model_cfg("csp_wide")
    with pytest.raises(ValueError, match="not one of the model's widths"):
        Level([(0.5, 1)] * 3, 0.75).validate([cfg.ratios] * 3, cfg.depths, cfg.widths)
    with pytest.raises(ValueError, match="widths"):
        get_model_cfg("csp_small", widths=(0.5, 0.25, 1.0))
    with pytest.raises(ValueError, match="widths"):
        get_model_cfg("csp_small", widths=(0.5,))


def test_old_ladder_json_still_loads():
    old = {"rungs": [{"macs": 10, "level": [{"ratio": 0.5, "blocks": 0}]},
                     {"macs": 20, "level": [{"ratio": 0.5, "blocks": 1}]}]}
    lad = LevelLadder.from_dict(old)
    assert [lv.width for lv in lad] == [1.0, 1.0]
    new = LevelLadder.from_json(LevelLadder([Level([(0.5, 0)], 0.5), Level([(0.5, 1)])]).to_json())
    assert [lv.width for lv in new] == [0.5, 1.0]


def test_elastic_equals_export_at_random_widths(wide):
    cfg = wide.cfg
    x = torch.randn(3, 1, 28, 28)
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        w = cfg.widths[int(torch.randint(len(cfg.widths), (1,), generator=gen))]
        stages = [(cfg.ratios[int(torch.randint(len(cfg.ratios), (1,), generator=gen))],
                   int(torch.randint(d + 1, (1,), generator=gen))) for d in cfg.depths]
        lv = Level(stages, w)
        with torch.no_grad():
            sliced = wide.train(False)._features_sliced(x, lv)[-1]
            logits = torch.nn.functional.linear(sliced.mean((2, 3)), wide.head.weight[:, : sliced.shape[1]],
                                                wide.head.bias)
            static = wide.export(lv)(x)
        assert sliced.shape[1] == round(cfg.stages[-1].out_chs * w)
        torch.testing.assert_close(static, logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(wide(x, lv), static)


def test_width_changes_the_output_and_the_parameter_count(wide):
    x = torch.randn(2, 1, 28, 28)
    full, half = wide.full_level(), Level([(0.5, 3)] * 3, 0.5)
    assert not torch.allclose(wide(x, full), wide(x, half))
    assert wide.params(half) < 0.4 * wide.params(full)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_property_random_levels(data, wide):
    cfg = wide.cfg
    lv = data.draw(_levels(cfg))
    out = wide(torch.randn(2, 1, 28, 28), lv)
    assert out.shape == (2, cfg.num_classes) and torch.isfinite(out).all()
    macs = wide.macs(lv)
    i = cfg.widths.index(lv.width)
    if i + 1 < len(cfg.widths):  # wider → more MACs
        assert wide.macs(Level(lv.stages, cfg.widths[i + 1])) > macs
    for k, s in enumerate(lv.stages):
        if s.blocks:  # a larger split ratio or one more block never costs less
            bigger_r = [r for r in cfg.ratios if r > s.ratio]
            if bigger_r:
                st2 = list(lv.stages)
                st2[k] = (bigger_r[0], s.blocks)
                assert wide.macs(Level(st2, lv.width)) > macs
        if s.blocks < cfg.depths[k]:
            st2 = list(lv.stages)
            st2[k] = (s.ratio, s.blocks + 1)
            assert wide.macs(Level(st2, lv.width)) > macs


@pytest.mark.parametrize("name", list_models())
def test_default_ladder_is_ordered_by_macs(name):
    cfg = get_model_cfg(name)
    lad = default_ladder(cfg)
    macs = [r.macs for r in lad.rungs]
    assert macs == sorted(macs) and len(set(macs)) == len(macs)
    assert lad[-1] == Level([(cfg.split_ratio, d) for d in cfg.depths])
    assert lad.costs[-1] == 1.0 and lad.costs[0] == pytest.approx(macs[0] / macs[-1])
    # nothing but equal-cost duplicates is dropped: one rung per distinct MAC count of the candidates
    counts = {count_macs(cfg, lv) for lv in candidate_ladder_levels(cfg)}
    assert sorted(counts) == macs


def test_features_follow_width(wide):
    m = create_model("csp_wide", features_only=True).eval()
    lv = Level([(0.5, 1)] * 3, 0.5)
    feats = m(torch.randn(1, 1, 28, 28), lv)
    assert [f.shape[1] for f in feats] == [48, 96, 192]
    sliced = m.train()._features_sliced(torch.randn(1, 1, 28, 28), lv)
    assert [f.shape[1] for f in sliced] == [48, 96, 192]


def test_wrong_channel_count_raises_in_train_and_eval():
    m = create_model("csp_small")
    for mode in (True, False):
        m.train(mode)
        with pytest.raises(ValueError, match="expects N×1×H×W"):
            m(torch.randn(2, 3, 28, 28))


def test_double_model_runs_every_level_export_and_calibration():
    m = create_model("csp_wide").eval()
    lv = Level([(0.25, 1)] * 3, 0.5)
    m.calibrate_bn([lv], [torch.randn(4, 1, 28, 28)])
    before = m(torch.randn(2, 1, 28, 28), lv)  # prepared (cached) in float32
    m = m.double()  # moves the per-level BN statistics and drops the float32 prepared modules
    assert m.bn_stats[lv.key]["stem"][0].dtype == torch.float64
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    for i in range(len(m.levels)):
        assert m(x, i).dtype == torch.float64
    assert m(x, lv).dtype == torch.float64 and before.dtype == torch.float32
    assert m.export(lv)(x).dtype == torch.float64
    m.calibrate_bn([lv], [torch.randn(4, 1, 28, 28)])  # float batches follow the model's dtype
    assert m.bn_stats[lv.key]["stem"][0].dtype == torch.float64
    assert m.macs(lv) > 0
