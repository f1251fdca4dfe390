"""Engines: ONNX Runtime equals torch at every level, the on-disk cache, the auto rule, export, CUDA logic.

CUDA tests on real hardware are marked ``cuda`` and skip without a GPU; the CUDA engine's own logic
(per (level, batch) graphs, replay, refresh, dtype) is tested on the CPU through ``graph_factory``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from adaptive_csp.data.fashion_mnist import load_sample
from adaptive_csp.engines import available_engines, choose_engine, make_engine
from adaptive_csp.engines.cache import level_key, weights_digest
from adaptive_csp.engines.cuda_engine import CudaEngine, have_cuda
from adaptive_csp.engines.export import export_levels
from adaptive_csp.engines.ort_engine import OrtEngine
from adaptive_csp.engines.torch_engine import TorchEngine
from adaptive_csp.levels import Level, LevelLadder
from adaptive_csp.models.pretrained import pretrained

ort = pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[1]
cuda = pytest.mark.skipif(not have_cuda(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def model():
    return pretrained()


@pytest.fixture(scope="module")
def x():
    return load_sample().normalized(slice(0, 8)).numpy()


def torch_logits(model, x, level):
    with torch.inference_mode():
        return model.prepared(level)(torch.from_numpy(x).to(next(model.parameters()).dtype)).float().numpy()


def test_onnxruntime_equals_torch_at_every_level(model, x, tmp_path):
    eng = OrtEngine(model, threads=1, cache=tmp_path, int8=()).prepare()  # float32 at every level
    for lv in range(len(model.levels)):
        np.testing.assert_allclose(eng.run(x, lv), torch_logits(model, x, lv), atol=1e-4, rtol=0,
                                   err_msg=f"level {lv}")
        np.testing.assert_allclose(eng.run(x[:1], lv), torch_logits(model, x[:1], lv), atol=1e-4, rtol=0)
    assert all(eng.built) and all(p.parent == tmp_path / "onnx" for p in eng.paths)
    with pytest.raises(ValueError, match="input shape"):
        eng.run(np.zeros((1, 3, 28, 28), np.float32), 0)


def _build_in_another_process(cache: Path) -> None:
    code = ("from adaptive_csp.models.pretrained import pretrained\n"
            "from adaptive_csp.engines import OrtEngine\n"
            f"e = OrtEngine(pretrained(), threads=1, cache={str(cache)!r}, int8=()).prepare()\n"
            "assert all(e.built), e.built\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=300)


def test_cache_is_reused_across_processes_and_rebuilt_on_change(tmp_path):
    _build_in_another_process(tmp_path)
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "onnx").glob("*.onnx")}
    m = pretrained()
    n = len(m.levels)
    assert len(files) == n
    eng = OrtEngine(m, threads=1, cache=tmp_path, int8=()).prepare()
    assert not any(eng.built)  # every level loaded from the other process's files
    assert {p: p.stat().st_mtime_ns for p in files} == files

    # per-level BN statistics of one level change: only that level is exported again
    key0 = m.levels[0].key
    m.bn_stats[key0] = {k: (mean + 0.01, var) for k, (mean, var) in m.bn_stats[key0].items()}
    eng.refresh()
    eng.prepare()
    assert eng.built == [True] + [False] * (n - 1)
    xx = load_sample().normalized(slice(0, 4)).numpy()
    np.testing.assert_allclose(eng.run(xx, 0), torch_logits(m, xx, 0), atol=1e-4, rtol=0)

    # the ladder changes: known levels are found by level (not index), a new level is exported
    full = m.levels[-1]
    st = [(s.ratio, s.blocks) for s in full.stages]
    st[-1] = (st[-1][0], st[-1][1] - 1)
    new = Level(st, **({"width": full.width} if hasattr(full, "width") else {}))
    assert new not in list(m.levels)
    m.levels = LevelLadder([m.levels[0], m.levels[n // 2], new, full])
    eng.refresh()
    eng.prepare()
    assert eng.built == [False, False, True, False]
    np.testing.assert_allclose(eng.run(xx, 2), torch_logits(m, xx, 2), atol=1e-4, rtol=0)

    # the weights change: every level is exported again
    with torch.no_grad():
        m.head.bias += 0.5
    m.invalidate()
    eng.refresh()
    eng.prepare()
    assert all(eng.built)
    np.testing.assert_allclose(eng.run(xx, 3), torch_logits(m, xx, 3), atol=1e-4, rtol=0)


def test_cache_key_covers_level_key_bn_and_weights(model):
    w = weights_digest(model)
    lv = model.levels[0]

    class Other:  # any level object: the key is built from its full ``key`` (width included)
        key = lv.key + "-w0.5"

    shape = (1, 1, 28, 28)
    k = level_key(w, model, lv, shape, 17)
    assert k == level_key(w, model, lv, shape, 17)
    assert k != level_key(w, model, Other(), shape, 17)
    assert k != level_key(w, model, lv, (1, 1, 32, 32), 17)
    assert k != level_key(w, model, lv, shape, 17, "int8:abc")
    assert k != level_key(w[::-1], model, lv, shape, 17)
    m2 = pretrained()
    m2.bn_stats[lv.key] = {}
    assert level_key(w, m2, lv, shape, 17) != k
    assert weights_digest(pretrained()) == w


def test_auto_rule_and_bad_choices(model):
    assert choose_engine(model) == "onnxruntime"  # installed here, CPU
    assert make_engine(model, "auto", threads=1, graphs=False).name == "onnxruntime"  # others' options dropped
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    assert choose_engine(plain) == "torch"
    assert isinstance(make_engine(model, "torch"), TorchEngine)
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine(model, "tensorflow")
    with pytest.raises(ValueError, match="takes no option"):
        make_engine(model, "torch", threads=2)
    with pytest.raises(ValueError, match="threads"):
        make_engine(model, "onnxruntime", threads=0)
    with pytest.raises(ValueError, match="runs where the model is"):
        make_engine(model, "torch", device="meta")
    if not have_cuda():
        with pytest.raises(ValueError, match="CUDA"):
            make_engine(model, "cuda")
        assert "cuda" not in available_engines()


def test_auto_keeps_installed_torch_modules_on_torch():
    m = pretrained()
    m.install(0, torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)))
    assert choose_engine(m) == "torch"  # an ONNX export of the float level would skip the installed module


def test_double_model_every_engine_and_export(x, tmp_path):
    m = pretrained().double()
    ref = pretrained()
    for name in available_engines():
        eng = make_engine(m, name, **({"cache": tmp_path, "threads": 1, "int8": ()} if name == "onnxruntime" else {}))
        for lv in range(len(m.levels)):
            np.testing.assert_allclose(eng.run(x, lv), torch_logits(ref, x, lv), atol=1e-4, rtol=0,
                                       err_msg=f"{name} level {lv}")
    cpu_eager = CudaEngine(m, device="cpu", dtype="float64", graphs=False)
    np.testing.assert_allclose(cpu_eager.run(x, 1), torch_logits(ref, x, 1), atol=1e-4, rtol=0)
    sides = export_levels(m, tmp_path / "exp", [0, -1])
    for side in sides:
        meta = json.loads(side.read_text())
        i = meta["level_index"]
        s = ort.InferenceSession(str(side.parent / meta["files"]["onnx"]), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(s.run(None, {"input": x})[0], torch_logits(ref, x, i), atol=1e-4, rtol=0)
        ts = torch.jit.load(str(side.parent / meta["files"]["torchscript"]))
        with torch.no_grad():
            out = ts(torch.from_numpy(x).double())
        assert out.dtype == torch.float64 and meta["dtype"] == {"onnx": "float32", "torchscript": "float64"}
        np.testing.assert_allclose(out.float().numpy(), torch_logits(ref, x, i), atol=1e-4, rtol=0)
    assert next(m.parameters()).dtype == torch.float64  # nothing moved or cast the model


def test_export_sidecar_and_cli(model, tmp_path, capsys):
    from adaptive_csp.cli import main

    assert main(["export", "--out", str(tmp_path), "--level", "0", "--level", "-1", "--format", "onnx"]) == 0
    assert "exported 2 level(s)" in capsys.readouterr().out
    n = len(model.levels)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"level{i:02d}.{e}" for i in (0, n - 1)
                                                         for e in ("json", "onnx")]
    meta = json.loads((tmp_path / f"level{n - 1:02d}.json").read_text())
    assert meta["level_index"] == n - 1 and meta["levels"] == n
    assert meta["level_key"] == model.levels[-1].key and meta["level"] == model.levels[-1].to_list()
    assert meta["class_names"] == model.meta["class_names"]
    assert meta["preprocess"] == model.meta["preprocess"]
    assert meta["input"]["name"] == "input" and meta["output"]["name"] == "logits"
    assert main(["export", "--out", str(tmp_path / "bad"), "--level", "99"]) == 2
    assert "out of range" in capsys.readouterr().err


class FakeGraph:
    """Stands in for a captured CUDA graph on the CPU: records captures, replays the module eagerly."""

    captures: list[tuple[int, int]] = []

    def __init__(self, net, x, pool):
        self.net, self.x = net, x.clone()
        FakeGraph.captures.append(tuple(x.shape))
        self.replays = 0

    def __call__(self, x):
        self.x.copy_(x)
        self.replays += 1
        with torch.inference_mode():
            self.y = self.net(self.x)
        return self.y


def test_cuda_engine_graph_logic_on_cpu(model, x):
    FakeGraph.captures = []
    eng = CudaEngine(model, device="cpu", graphs=True, graph_factory=FakeGraph)
    for lv in (0, 3, -1):
        i = model.levels.index(lv)
        for b in (1, 8, 1):
            np.testing.assert_allclose(eng.run(x[:b], i), torch_logits(model, x[:b], i), atol=1e-5, rtol=0)
    n = len(model.levels)
    assert eng.captured == [(0, 1), (0, 8), (3, 1), (3, 8), (n - 1, 1), (n - 1, 8)]  # one per (level, batch)
    assert len(FakeGraph.captures) == 6 and eng._graphs[(0, 1)].replays == 2
    eng.refresh()
    assert eng.captured == []
    eng.prepare([1], batch_sizes=(1, 4))
    assert eng.captured == [(1, 1), (1, 4)]
    assert next(model.parameters()).device.type == "cpu"


def test_cuda_engine_fp32_is_not_tf32(model, x):
    """cuDNN would run fp32 convs as TF32 on Ampere+ (1.6e-3 off the CPU on an H100): the engine turns it
    off around captures and calls unless asked, and restores the process setting after."""
    seen = []

    class Probe(FakeGraph):
        def __init__(self, net, x, pool):
            seen.append(torch.backends.cudnn.allow_tf32)
            super().__init__(net, x, pool)

    before = torch.backends.cudnn.allow_tf32
    CudaEngine(model, device="cpu", graphs=True, graph_factory=Probe).run(x[:1], 0)
    CudaEngine(model, device="cpu", graphs=True, graph_factory=Probe, tf32=True).run(x[:2], 0)
    assert seen == [False, True]
    assert torch.backends.cudnn.allow_tf32 == before


def test_cuda_engine_dtypes_and_refusals(model, x):
    bf = CudaEngine(model, device="cpu", dtype="bf16", graphs=False)
    got = bf.run(x, 2)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, torch_logits(model, x, 2), atol=0.5, rtol=0.1)  # bf16 has 8 mantissa bits
    assert (got.argmax(1) == torch_logits(model, x, 2).argmax(1)).mean() >= 0.75
    assert next(model.parameters()).dtype == torch.float32  # the copy was cast, not the model
    with pytest.raises(ValueError, match="dtype"):
        CudaEngine(model, device="cpu", dtype="int4", graphs=False)
    with pytest.raises(ValueError, match="CUDA graphs need"):
        CudaEngine(model, device="cpu", graphs=True)


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype,atol", [("fp32", 1e-3), ("fp16", 5e-2)])
def test_cuda_graphs_equal_torch_at_every_level(model, x, dtype, atol):
    eng = CudaEngine(model, device="cuda", dtype=dtype).prepare(batch_sizes=(1, 8))
    for lv in range(len(model.levels)):
        np.testing.assert_allclose(eng.run(x, lv), torch_logits(model, x, lv), atol=atol, rtol=0)
        np.testing.assert_allclose(eng.run(x[:1], lv), torch_logits(model, x[:1], lv), atol=atol, rtol=0)
    assert len(eng.captured) == 2 * len(model.levels)
    assert next(model.parameters()).device.type == "cpu"


@cuda
@pytest.mark.cuda
def test_auto_picks_cuda_on_a_gpu(model):
    assert choose_engine(model, "cuda") == "cuda"
