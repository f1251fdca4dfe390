"""A bundle runs on onnxruntime and numpy alone: these tests import no torch themselves.

They run twice in CI: with the full install (a bundle of the shipped model is exported here first), and in
a venv without torch (``ADAPTIVE_CSP_BUNDLE`` names a bundle exported beforehand; ``.ci/run``), where the
last test also checks that nothing imported torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from adaptive_csp.runtime.bundle import MANIFEST, BundleError, load_bundle  # noqa: E402

ENV = "ADAPTIVE_CSP_BUNDLE"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    """A bundle of the shipped classifier: ``$ADAPTIVE_CSP_BUNDLE``, else exported now (needs torch)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    pytest.importorskip("torch")
    import adaptive_csp as ac

    return ac.export_bundle(ac.pretrained(), tmp_path_factory.mktemp("b") / "bundle")


@pytest.fixture
def copy(bundle_dir, tmp_path) -> Path:
    """A private copy of the bundle to damage."""
    return Path(shutil.copytree(bundle_dir, tmp_path / "copy"))


SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from adaptive_csp import AdaptiveRunner, Decision, Policy

    class Alternate(Policy):  # a policy that switches level on every decision: cheapest, full, cheapest...
        name = "alternate"
        def __init__(self):
            self.n = 0
        def decide(self, readings, stats, ladder):
            self.n += 1
            return Decision(0 if self.n % 2 else len(ladder) - 1, "alternate")

    frames = np.random.default_rng(0).integers(0, 256, (6, 48, 64, 3), dtype=np.uint8)
    with AdaptiveRunner(sys.argv[1], policy=Alternate(), sensors=None, policy_tick_ms=0) as r:
        levels = [r.infer(f).level for f in frames]
        streamed = [p.level for p in r.stream(list(frames))]
        view = r.calibrate(cache=sys.argv[2], rounds=1)
        csv = r.export_csv(sys.argv[2] + "/telemetry.csv").read_text().splitlines()
        assert len(csv) == 1 + len(levels) + len(streamed), len(csv)  # a header and one row per frame
        default = AdaptiveRunner(sys.argv[1], sensors="auto", content=True)  # the bundle's own policy
        p = [default.infer(f) for f in frames][-1]  # content demand sees a scene change on every frame
        default.close()
    print(levels, streamed, r.engine.name, default.policy.name, len(view), p.class_name)
    assert len(set(levels)) == 2 and len(set(streamed)) == 2, (levels, streamed)
    assert "torch" not in sys.modules, "torch was imported"
""")


def test_a_bundle_runs_infer_stream_and_a_policy_switch_without_importing_torch(bundle_dir, tmp_path):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(bundle_dir), str(tmp_path / "cache")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "onnxruntime" in r.stdout and "balanced" in r.stdout


def test_a_bundle_loads_with_its_ladder_classes_and_spec(bundle_dir):
    b = load_bundle(bundle_dir)
    assert len(b.levels) == len(b.files) >= 2 and all(f.suffix == ".onnx" and f.is_file() for f in b.files)
    assert b.meta["task"] == "classify" and b.meta["class_names"] and b.meta["preprocess"]["input_size"]
    assert b.policy_file is not None and b.policy_file.name == "policy.toml"
    assert all(r.latency for r in b.levels.rungs)  # the profiled latencies per engine and batch


def test_a_missing_file_is_named(copy):
    (copy / "levels" / "03.onnx").unlink()
    with pytest.raises(BundleError, match=r"03\.onnx: missing"):
        load_bundle(copy)


def test_a_truncated_file_is_named(copy):
    f = copy / "levels" / "01.onnx"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(BundleError, match=r"01\.onnx: 100 bytes"):
        load_bundle(copy)


def test_a_checksum_mismatch_is_named(copy):
    f = copy / "levels" / "02.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"02\.onnx: SHA-256 does not match"):
        load_bundle(copy)
    assert len(load_bundle(copy, verify=False).files) > 0  # sizes still match: the unverified load trusts it


def test_a_newer_format_and_a_corrupt_manifest_are_refused(copy):
    m = json.loads((copy / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps({**m, "version": 99}))
    with pytest.raises(BundleError, match="version 99 is newer"):
        load_bundle(copy)
    (copy / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="manifest.json: the bundle's manifest is unreadable"):
        load_bundle(copy)
    with pytest.raises(BundleError, match="not a folder"):
        load_bundle(copy / "nowhere")


def test_a_bad_bundle_fails_the_runner_clearly(copy):
    from adaptive_csp import AdaptiveRunner
    from adaptive_csp.util.files import sha256_file

    (copy / "model.json").write_text(json.dumps({"task": "classify"}))  # well-formed JSON, no ladder
    m = json.loads((copy / MANIFEST).read_text())  # ...and a manifest that vouches for it: only the
    m["files"]["model.json"] = {"sha256": sha256_file(copy / "model.json"),  # description check can catch it
                                "bytes": (copy / "model.json").stat().st_size}
    (copy / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(ValueError, match="model.json: bad ladder"):
        AdaptiveRunner(str(copy), sensors=None)


def test_torch_was_never_imported_here():
    if os.environ.get(ENV) is None:
        pytest.skip("meaningful in the venv without torch (CI sets ADAPTIVE_CSP_BUNDLE)")
    assert "torch" not in sys.modules


def test_the_package_imports_lazily():
    code = ("import sys, adaptive_csp as ac\n"
            "assert 'torch' not in sys.modules and 'adaptive_csp.runtime' not in sys.modules\n"
            "ac.AdaptiveRunner, ac.load_bundle, ac.LevelLadder, ac.get_policy, ac.sim\n"
            "assert 'torch' not in sys.modules, 'a torch-free name imported torch'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
