"""Structured pruning: physically smaller tensors, same export paths as any level, OFA sorting."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from adaptive_csp.data.fashion_mnist import MEAN, STD, load_sample
from adaptive_csp.models import create_model
from adaptive_csp.nn.prune import count_params, finetune, prune_static, sort_channels


def _random_net(name: str):
    torch.manual_seed(0)
    m = create_model(name).eval()
    for mod in m.modules():  # non-trivial blocks (the zero-initialised last BN γ makes them identities)
        if isinstance(mod, nn.BatchNorm2d):
            nn.init.uniform_(mod.weight, 0.5, 1.5)
    m.invalidate()
    return m


@pytest.fixture(scope="module", params=["csp_small", "plain_small"])
def model(request):
    torch.set_num_threads(1)
    return _random_net(request.param)


def _macs(net: nn.Module) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(torch.zeros(1, 1, 28, 28))
    return fc.get_total_flops() // 2


def test_pruned_is_physically_smaller(model):
    net = model.export(-1)
    pruned, rep = prune_static(net, 0.5)
    assert rep["params_before"] == count_params(net) and rep["params_after"] == count_params(pruned)
    assert count_params(pruned) < 0.5 * count_params(net)
    assert _macs(pruned) < 0.5 * _macs(net)
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    assert any(c.out_channels < o.out_channels
               for c, o in zip(convs, [m for m in net.modules() if isinstance(m, nn.Conv2d)], strict=True))
    assert not any(hasattr(m, "weight_mask") for m in pruned.modules())  # no torch.nn.utils.prune masks
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert pruned(x).shape == (3, 10)
    assert count_params(net) == model.params(-1)  # the source is untouched


def test_ratio_zero_is_the_same_function(model):
    net = model.export(-1)
    same, rep = prune_static(net, 0.0)
    assert rep["params_after"] == rep["params_before"]
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(same(x), net(x), atol=1e-4)


def test_kept_channels_are_the_most_important():
    m = _random_net("csp_small")
    net = m.export(-1)
    blk = net.stages[0].blocks[0]
    imp = blk.c2[0].weight.abs().sum(dim=(0, 2, 3))
    pruned, _ = prune_static(net, 0.5, stream=False, bypass=False)
    top = torch.argsort(imp, descending=True)[: pruned.stages[0].blocks[0].c2[0].in_channels]
    assert torch.equal(pruned.stages[0].blocks[0].c1[0].weight, blk.c1[0].weight[top])  # sorted, best first


def test_pruned_exports_like_any_level(tmp_path):
    m = _random_net("csp_small")
    pruned, _ = prune_static(m.export(2), 0.5)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        ref = pruned(x)
        scripted = torch.jit.script(pruned)
        assert torch.allclose(scripted(x), ref, atol=1e-5)
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    path = tmp_path / "pruned.onnx"
    torch.onnx.export(pruned, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=True)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    shapes = sorted(tuple(i.dims) for i in model.graph.initializer if len(i.dims) == 4)
    conv_shapes = sorted(tuple(c.weight.shape) for c in pruned.modules() if isinstance(c, nn.Conv2d))
    assert shapes == conv_shapes  # the ONNX graph carries the physically pruned tensors
    assert shapes != sorted(tuple(c.weight.shape) for c in m.export(2).modules() if isinstance(c, nn.Conv2d))


def test_sort_channels_keeps_full_level():
    m = _random_net("csp_small")
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        before = m(x, -1)
    sort_channels(m)
    with torch.no_grad():
        assert torch.allclose(m(x, -1), before, atol=1e-5)
    blk = m.stages[1].blocks[0]
    imp = blk.conv2.conv.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(imp[:-1] >= imp[1:])


def test_finetune_lowers_the_loss_and_freezes():
    m = _random_net("csp_small")
    pruned, _ = prune_static(m.export(-1), 0.5)
    s = load_sample()
    x, y = (s.images[:16].float() / 255.0 - MEAN) / STD, s.labels[:16]

    def loss() -> float:
        with torch.no_grad():
            return float(F.cross_entropy(pruned(x), y))

    before = loss()
    info = finetune(pruned, TensorDataset(x, y), images=16, epochs=30, batch_size=16, lr=0.2,
                    label_smoothing=0.0)  # fmt: skip
    assert info["steps"] == 30 and info["images"] == 480 and math.isfinite(info["loss"])
    assert loss() < 0.9 * before  # it fitted these images (2.30 -> 1.98 with this seed)
    assert not pruned.training and not any(p.requires_grad for p in pruned.parameters())
    with pytest.raises(ValueError, match="non-empty"):
        finetune(pruned, TensorDataset(x[:0], y[:0]))


def test_finetune_takes_an_augmentation():
    m = _random_net("csp_small")
    pruned, _ = prune_static(m.export(-1), 0.5)
    seen: list[torch.Size] = []

    def aug(batch, gen):
        assert isinstance(gen, torch.Generator)
        seen.append(batch.shape)
        return batch.flip(-1)

    x = torch.randn(10, 1, 28, 28)
    info = finetune(pruned, TensorDataset(x, torch.zeros(10, dtype=torch.long)), m.export(-1), augment=aug,
                    batch_size=4)  # fmt: skip
    assert info["steps"] == 3 and math.isfinite(info["loss"])
    assert seen == [(4, 1, 28, 28), (4, 1, 28, 28), (2, 1, 28, 28)]
