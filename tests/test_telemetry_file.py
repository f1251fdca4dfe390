"""Telemetry that survives a crash (issue #22, item 3): appended from a background thread, rotated by size,
bounded in memory, and a disk that fails never reaches the caller."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from adaptive_csp.runtime.telemetry import Telemetry
from adaptive_csp.runtime.telemetry_file import TelemetryFile

SERVE = textwrap.dedent("""
    import sys, time
    import numpy as np
    import torch
    from adaptive_csp import AdaptiveRunner
    torch.set_num_threads(1)
    frame = np.zeros((28, 28), np.uint8)
    r = AdaptiveRunner(sensors=None, engine="torch", telemetry=sys.argv[1])
    print("ready", flush=True)
    while True:  # a camera loop until killed
        r.infer(frame)
        print(r.telemetry.records[-1][0], flush=True)  # the record's time (the runner's monotonic clock)
        time.sleep(0.002)
""")


def test_after_kill_9_the_file_holds_every_record_up_to_the_last_second(tmp_path):
    log = tmp_path / "run.jsonl"
    p = subprocess.Popen([sys.executable, "-c", SERVE, str(log)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        times: list[float] = []
        t0 = time.monotonic()  # at least 2.5 s and 60 records (a loaded machine serves slower), at most 60 s
        while (time.monotonic() - t0 < 2.5 or len(times) <= 60) and time.monotonic() - t0 < 60:
            times.append(float(p.stdout.readline()))
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
    assert p.returncode == -signal.SIGKILL
    on_disk = [json.loads(line)["time"] for line in log.read_text().splitlines()]
    assert len(times) > 50
    older = [t for t in times if t <= times[-1] - 1.0]
    assert older and set(older) <= set(on_disk), f"{len(set(older) - set(on_disk))} records lost"
    assert on_disk == sorted(on_disk) and len(set(on_disk)) == len(on_disk)  # in order, each once


def _records(n: int, t0: float = 0.0) -> list[tuple]:
    return [(t0 + i, i % 3, 1.5, "balanced: ok", {"cpu_percent": 12.0}, 1, ("cls", [i % 2], [0.9]))
            for i in range(n)]


def test_rotation_bounds_the_files_and_keeps_the_newest(tmp_path):
    tel = Telemetry(class_names=["a", "b"])
    tf = TelemetryFile(tmp_path / "t.jsonl", max_bytes=4096, backups=2, flush_s=10).start(tel.row)
    for rec in _records(400):
        tf.put(rec)
        if rec[0] % 25 == 0:
            tf.flush()
    tf.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["t.jsonl", "t.jsonl.1", "t.jsonl.2"]
    assert sum(f.stat().st_size for f in files) <= 4096 * 3 and all(f.stat().st_size <= 4096 for f in files)
    last = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert last[-1]["time"] == 399 and last[-1]["class"] == "b" and last[-1]["score"] == 0.9
    assert last[-1] == json.loads(json.dumps(tel.row(_records(400)[-1])))  # what export_jsonl writes
    assert tf.written == 400 and tf.dropped == 0


def test_a_disk_that_fails_never_reaches_the_caller_and_memory_stays_bounded(tmp_path):
    (tmp_path / "not-a-dir").write_text("x")
    tel = Telemetry()
    tf = TelemetryFile(tmp_path / "not-a-dir" / "t.jsonl", max_pending=100, flush_s=10).start(tel.row)
    for rec in _records(250):
        tf.put(rec)
    assert tf.flush() == 0  # NotADirectoryError logged, not raised
    assert tf.status()["pending"] == 100 and tf.dropped == 150
    tf.path = tmp_path / "later.jsonl"  # the disk comes back: what waited is written
    assert tf.flush() == 100
    assert [json.loads(x)["time"] for x in tf.path.read_text().splitlines()] == list(range(150, 250))
    tf.close()


def test_the_runner_writes_its_records_and_closes_the_file(tmp_path):
    from adaptive_csp import AdaptiveRunner

    log = tmp_path / "r.jsonl"
    frame = np.zeros((28, 28), np.uint8)
    with AdaptiveRunner(sensors=None, engine="torch", telemetry=log) as r:
        for _ in range(5):
            r.infer(frame)
        assert r.stats()["telemetry_file"]["path"] == str(log)
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(rows) == 5 and rows == [json.loads(json.dumps(x)) for x in r.telemetry.rows()]
    assert Path(f"{log}.1").exists() is False
