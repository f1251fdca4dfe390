"""The ONNX cache heals: damaged files are rebuilt without an exception, an unwritable cache falls back to a
private folder, two processes racing to build one level end with one good file (issue #22, item 2)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from adaptive_csp import AdaptiveRunner, pretrained  # noqa: E402
from adaptive_csp.engines.cache import cached_file  # noqa: E402
from adaptive_csp.engines.ort_engine import OrtEngine  # noqa: E402

FRAME = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)


@pytest.fixture(scope="module")
def model():
    return pretrained()


def _cached(cache: Path) -> list[Path]:
    return sorted((cache / "onnx").glob("*.onnx"))


def _reference(model, cache: Path) -> list[np.ndarray]:
    eng = OrtEngine(model, threads=1, cache=cache, int8=()).prepare()
    x = np.random.default_rng(1).standard_normal((2, *eng.shape), dtype=np.float32)
    out = [eng.run(x, i) for i in range(len(eng.ladder))]
    eng.close()
    return out


@pytest.mark.parametrize("damage", ["truncated", "emptied", "garbage", "no digest"])
def test_a_damaged_cache_file_heals_without_an_exception(model, tmp_path, damage, caplog):
    want = _reference(model, tmp_path)
    files = _cached(tmp_path)
    assert len(files) == len(model.levels) and all(Path(f"{f}.sha256").is_file() for f in files)
    victim = files[len(files) // 2]
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    elif damage == "emptied":
        victim.write_bytes(b"")
    elif damage == "garbage":
        victim.write_bytes(os.urandom(victim.stat().st_size))
    else:
        Path(f"{victim}.sha256").unlink()
    with caplog.at_level("WARNING", logger="adaptive_csp.engines"):
        with AdaptiveRunner(model, sensors=None, engine="onnxruntime", engine_options={"cache": tmp_path, "int8": ()}) as r:
            r.infer(FRAME)  # every session was built (prepare=True): no exception
            x = np.random.default_rng(1).standard_normal((2, *r.engine.shape), dtype=np.float32)
            got = [r.engine.run(x, i) for i in range(len(r.ladder))]
    assert "rebuilding" in caplog.text and victim.name in caplog.text
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)
    assert _cached(tmp_path) == files  # healed in place


def test_a_digest_that_passes_but_a_file_that_does_not_load_is_rebuilt(model, tmp_path, caplog):
    _reference(model, tmp_path)
    victim = _cached(tmp_path)[0]
    victim.write_bytes(b"not a model")
    from adaptive_csp.util.files import sha256_file

    Path(f"{victim}.sha256").write_text(sha256_file(victim))  # another tool rewrote both
    with caplog.at_level("WARNING", logger="adaptive_csp.engines"):
        eng = OrtEngine(model, threads=1, cache=tmp_path, int8=()).prepare()
    assert "failed to load" in caplog.text and sum(eng.built) == 1
    assert victim.stat().st_size > 1000


def test_a_read_only_cache_directory_works(model, tmp_path, caplog):
    if os.geteuid() == 0:
        ro = Path("/proc/acsp-cache-that-cannot-exist")  # root ignores file modes; /proc refuses new entries
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
    with caplog.at_level("WARNING", logger="adaptive_csp.engines"):
        with AdaptiveRunner(model, sensors=None, engine="onnxruntime", engine_options={"cache": ro}) as r:
            pred = r.infer(FRAME)
    assert pred.level == len(r.ladder) - 1 or pred.level >= 0
    assert caplog.text.count("cannot be written") == 1  # one warning, not one per level


RACE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from adaptive_csp.engines.cache import cached_file

    def build(tmp: Path) -> None:  # slow, so the two processes overlap
        import time
        with open(tmp, "wb") as f:
            for i in range(40):
                f.write(bytes([i]) * 50_000)
                f.flush()
                time.sleep(0.005)
    print(cached_file(Path(sys.argv[1]), "level.bin", build))
""")


def test_two_processes_racing_to_build_one_file_end_with_one_good_file(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    seen, whole = 0, 40 * 50_000
    while any(p.poll() is None for p in procs):  # a reader during the race never sees a partial file
        try:
            size = (tmp_path / "level.bin").stat().st_size
        except FileNotFoundError:
            continue
        seen += 1
        assert size == whole, f"a reader saw level.bin at {size} of {whole} bytes while it was being built"
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["level.bin", "level.bin.sha256"]  # no temp left
    data = (tmp_path / "level.bin").read_bytes()
    assert data == b"".join(bytes([i]) * 50_000 for i in range(40))
    path, built = cached_file(tmp_path, "level.bin", lambda p: pytest.fail("an intact file is rebuilt"))
    assert not built
