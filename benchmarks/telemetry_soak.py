"""Soak: many ``runner.infer`` calls with telemetry to a rotating file; memory and disk stay bounded.

    python benchmarks/telemetry_soak.py                  # 50 000 calls, max_bytes 1 MiB, 3 backups

RSS (``VmRSS``) is read after a warm-up of ``--warm`` calls and at the end; the files' total size is checked
against ``max_bytes × (backups + 1)`` after every 1 000 calls.  The shipped model, engine ``auto``,
``sensors="auto"``, one 28×28 frame.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=50_000)
    ap.add_argument("--warm", type=int, default=5_000)
    ap.add_argument("--max-bytes", type=int, default=1 << 20)
    ap.add_argument("--backups", type=int, default=3)
    a = ap.parse_args(argv)
    import numpy as np

    from adaptive_csp import AdaptiveRunner
    from adaptive_csp.runtime.telemetry_file import TelemetryFile

    frame = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    bound = a.max_bytes * (a.backups + 1)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "run.jsonl"
        tf = TelemetryFile(log, max_bytes=a.max_bytes, backups=a.backups)
        with AdaptiveRunner(sensors="auto", telemetry=tf) as r:
            t0 = time.perf_counter()
            worst = 0
            for i in range(a.calls):
                r.infer(frame)
                if i + 1 == a.warm:
                    rss0 = rss_mib()
                if (i + 1) % 1000 == 0:
                    worst = max(worst, sum(p.stat().st_size for p in Path(tmp).glob("run.jsonl*")))
            secs = time.perf_counter() - t0
            rss1 = rss_mib()
        files = sorted(p.name for p in Path(tmp).glob("run.jsonl*"))
        total = sum(p.stat().st_size for p in Path(tmp).glob("run.jsonl*"))
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, engine {r.engine.name}")
        print(f"{a.calls} calls in {secs:.1f} s; records written {tf.written}, dropped {tf.dropped}")
        print(f"RSS after {a.warm} calls {rss0:.1f} MiB, at the end {rss1:.1f} MiB: growth "
              f"{100 * (rss1 / rss0 - 1):+.2f} % (target < 5 %)")
        print(f"files {files}: {total / 2**20:.2f} MiB now, at most {worst / 2**20:.2f} MiB at a check; bound "
              f"{bound / 2**20:.2f} MiB ({'met' if worst <= bound and total <= bound else 'MISSED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
