"""Exporting a bundle (needs torch): its levels give the ONNX Runtime engine's outputs, for a classifier and a
detector, through the engine and through the runner; the CLI writes one.  (Running it without torch:
tests/test_bundle_runtime.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import adaptive_csp as ac  # noqa: E402
from adaptive_csp.engines.ort_engine import OrtEngine  # noqa: E402
from adaptive_csp.runtime.bundle import load_bundle  # noqa: E402


def _same_outputs(model, bundle_dir, rng) -> None:
    ref, got = OrtEngine(model, threads=1), OrtEngine(load_bundle(bundle_dir), threads=1)
    assert len(got.ladder) == len(ref.ladder)
    for i in range(len(ref.ladder)):
        x = rng.standard_normal((3, *ref.shape), dtype=np.float32)
        a, b = ref.run(x, i), got.run(x, i)
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5, err_msg=f"level {i}")
    ref.close(), got.close()


def test_classifier_bundle_equals_the_ort_engine_at_every_level(tmp_path):
    model = ac.pretrained()
    out = ac.export_bundle(model, tmp_path / "b")
    _same_outputs(model, out, np.random.default_rng(0))
    doc = json.loads((out / "model.json").read_text())
    assert doc["class_names"] == model.meta["class_names"] and doc["ladder"] == model.levels.to_dict()
    assert doc["preprocessing_recipe"]["order"]  # how to feed a level from another runtime


def test_detector_bundle_equals_the_ort_engine_and_the_runner(tmp_path):
    det = ac.pretrained_detector()
    out = ac.export_bundle(det, tmp_path / "det")
    _same_outputs(det, out, np.random.default_rng(1))
    b = load_bundle(out)
    assert b.task == "detect" and b.meta["postprocess"]["score_thresh"] > 0
    frame = np.random.default_rng(2).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    with ac.AdaptiveRunner(det, policy="static-max", sensors=None, engine="onnxruntime") as r1, \
            ac.AdaptiveRunner(str(out), policy="static-max", sensors=None) as r2:
        d1, d2 = r1.infer(frame), r2.infer(frame)
    assert d1.level == d2.level and len(d1) == len(d2)
    np.testing.assert_allclose(d2.boxes, d1.boxes, atol=1e-3)
    assert list(d2.labels) == list(d1.labels)


def test_export_refuses_a_folder_that_is_not_a_bundle_and_replaces_an_old_bundle(tmp_path):
    model = ac.pretrained()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder or a bundle"):
        ac.export_bundle(model, tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    out = ac.export_bundle(model, tmp_path / "b", policy="battery")
    first = (out / "manifest.json").read_text()
    ac.export_bundle(model, out, policy="thermal")  # over an older bundle: replaced whole
    assert (out / "manifest.json").read_text() != first and "thermal" in (out / "policy.toml").read_text().lower()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_cli_export_bundle(tmp_path, capsys):
    from adaptive_csp.cli import main

    assert main(["export", "--bundle", str(tmp_path / "b")]) == 0
    assert len(load_bundle(tmp_path / "b").files) == len(ac.pretrained().levels)
    assert main(["export", "--bundle", str(tmp_path / "b"), "--policy", "nope"]) == 2
    assert "policy 'nope'" in capsys.readouterr().err


def test_an_int8_rung_goes_into_the_bundle_quantised(tmp_path):
    """A rung marked int8 is exported as the engine's static QDQ int8 file (calibrated on ``calib``) and runs
    from the bundle exactly as the full package's engine runs it."""
    import dataclasses

    from adaptive_csp.data.fashion_mnist import as_imageset, load_sample
    from adaptive_csp.levels import LevelLadder

    model = ac.pretrained()
    model.int8_calib = None  # only calib= calibrates here
    last = len(model.levels) - 1
    plain = [dataclasses.replace(r, extra={k: v for k, v in r.extra.items() if k != "precision"})
             for r in model.levels.rungs]  # the shipped int8 marks cleared: only the last rung is int8 here
    model.levels = LevelLadder([dataclasses.replace(r, extra={**r.extra, "precision": "int8"}) if i == last else r
                                for i, r in enumerate(plain)])
    calib = [as_imageset(load_sample()).normalized(slice(0, 64))]
    with pytest.raises(ValueError, match=f"rung {last} is marked int8: pass calib="):
        ac.export_bundle(model, tmp_path / "nocalib")
    out = ac.export_bundle(model, tmp_path / "b", calib=calib)
    b = load_bundle(out)
    assert b.precisions[last] == "int8" and set(b.precisions[:last]) == {"fp32"}
    ref, got = OrtEngine(model, threads=1, calib=calib), OrtEngine(b, threads=1)
    x = np.random.default_rng(3).standard_normal((4, *ref.shape), dtype=np.float32)
    np.testing.assert_allclose(got.run(x, last), ref.run(x, last), atol=1e-5, rtol=0)
    assert got.precision(last) == "int8"
    fp32 = OrtEngine(ac.pretrained(), threads=1).run(x, last)
    assert not np.allclose(got.run(x, last), fp32, atol=1e-5)  # the quantised file ran, not the float one


def test_every_public_name_resolves():
    for name in ac.__all__:
        assert getattr(ac, name) is not None, name
    assert callable(ac.train) or hasattr(ac.train, "train")
