"""Deploying without torch: cold start, memory and steady-state latency, full package against a bundle.

    python benchmarks/bundle.py                 # 7 fresh processes per row, then the steady-state table
    python benchmarks/bundle.py --runs 11 --frame 640x480

**Cold start** is process start → first prediction, timed by the parent around a fresh interpreter
(``subprocess.run``), rows interleaved run by run, medians; each child reports its peak RSS (``VmHWM``
of ``/proc/self/status``: ``getrusage``'s ``ru_maxrss`` survives ``exec`` on Linux and would report the
parent's) and whether torch was imported.  Every row predicts one BGR camera frame (``--frame``,
default 320×240) with ``sensors=None``:

* ``full package``: ``AdaptiveRunner(ac.pretrained())`` (engine ``auto`` = ONNX Runtime; every level's
  session built up front, ``prepare=True``, the default; ONNX files from the engine's disk cache, warm);
* ``bundle``: ``AdaptiveRunner("DIR")`` on the exported bundle (every session built up front);
* ``bundle, lazy sessions``: the same with ``prepare=False`` (a level's session is built when first run);
* ``bundle, lazy sessions, without OpenCV``: as installed without the optional OpenCV (frames resized by
  numpy; ``cv2`` blocked in the child);
* ``onnxruntime + numpy alone``: the floor — import both, one session, one run (no preprocessing).

**Steady state**: ``runner.infer`` on the same frame in one process, the full package's ORT runner and the
bundle's runner at the cheapest and the full rung (``static-min`` / ``static-max``), 1 thread, warm,
interleaved rounds, medians (:func:`adaptive_csp.util.timing.interleaved_medians`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent("""
    import json, resource, sys
    kind, path, h, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if kind == "nocv":
        sys.modules["cv2"] = None  # the torch-free install without the optional OpenCV: numpy resizing
    import numpy as np
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "floor":
        import onnxruntime as ort
        o = ort.SessionOptions(); o.intra_op_num_threads = 1
        s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
        s.run(None, {s.get_inputs()[0].name: np.zeros((1, 1, 28, 28), np.float32)})
    else:
        from adaptive_csp import AdaptiveRunner
        if kind == "full":
            import adaptive_csp as ac
            model = ac.pretrained()
        else:
            model = path
        r = AdaptiveRunner(model, sensors=None, prepare=kind not in ("lazy", "nocv"), engine_options={"threads": 1})
        r.infer(frame)
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]  # this image's peak RSS
    rss = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rss": rss, "torch": "torch" in sys.modules}))
""")

ROWS = (("full", "full package, AdaptiveRunner(ac.pretrained())"), ("bundle", 'bundle, AdaptiveRunner("DIR")'),
        ("lazy", "bundle, lazy sessions (prepare=False)"), ("nocv", "bundle, lazy sessions, without OpenCV"),
        ("floor", "onnxruntime + numpy alone (one session)"))


def cold(bundle: Path, runs: int, h: int, w: int) -> dict[str, list[tuple[float, float, bool]]]:
    out: dict[str, list] = {k: [] for k, _ in ROWS}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(runs):
        for kind, _ in ROWS:
            path = str(bundle / "levels" / "07.onnx") if kind == "floor" else str(bundle)
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", CHILD, kind, path, str(h), str(w)], capture_output=True,
                               text=True, env=env)
            wall = time.perf_counter() - t0
            if r.returncode:
                sys.exit(f"{kind}: {r.stderr[-2000:]}")
            doc = json.loads(r.stdout.strip().splitlines()[-1])
            out[kind].append((wall, doc["rss"], doc["torch"]))
    return out


def steady(bundle: Path, h: int, w: int, rounds: int) -> list[tuple[str, float, float]]:
    import numpy as np

    import adaptive_csp as ac
    from adaptive_csp.util.timing import interleaved_medians

    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    model = ac.pretrained()
    rows = []
    for policy in ("static-min", "static-max"):
        full = ac.AdaptiveRunner(model, policy=policy, sensors=None, engine="onnxruntime",
                                 engine_options={"threads": 1})
        bun = ac.AdaptiveRunner(str(bundle), policy=policy, sensors=None, engine_options={"threads": 1})
        assert full.infer(frame).level == bun.infer(frame).level
        a, b = interleaved_medians([lambda r=full: r.infer(frame), lambda r=bun: r.infer(frame)], rounds, 200, 20)
        rows.append((f"{policy} (level {full.level})", a, b))
        full.close(), bun.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="fresh processes per cold-start row")
    ap.add_argument("--frame", default="320x240", help="camera frame WxH")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds of the steady-state timing")
    ap.add_argument("--bundle", default=None, help="an exported bundle (default: export the shipped model now)")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.frame.lower().split("x"))
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"frame {w}×{h} BGR")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(a.bundle) if a.bundle else None
        if bundle is None:
            import adaptive_csp as ac

            bundle = ac.export_bundle(ac.pretrained(), Path(tmp) / "bundle")
            subprocess.run([sys.executable, "-c", CHILD, "full", "", str(h), str(w)], capture_output=True)  # warm
        size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        print(f"bundle: {len(list((bundle / 'levels').glob('*.onnx')))} levels, {size / 2**20:.2f} MiB on disk")
        res = cold(bundle, a.runs, h, w)
        print(f"\ncold start, process start -> first prediction ({a.runs} fresh processes each, medians)")
        print(f"  {'':<46} {'wall s':>7} {'max RSS MiB':>12}  torch imported")
        for kind, label in ROWS:
            walls, rss, tor = zip(*res[kind])
            print(f"  {label:<46} {statistics.median(walls):7.3f} {statistics.median(rss):12.0f}  {any(tor)}")
        print(f"\nsteady state, runner.infer, 1 thread, {a.rounds} interleaved rounds of 200 calls (medians, ms)")
        print(f"  {'rung':<22} {'full package ORT':>17} {'bundle':>8} {'ratio':>7}")
        for name, f, b in steady(bundle, h, w, a.rounds):
            print(f"  {name:<22} {f:17.4f} {b:8.4f} {b / f:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
