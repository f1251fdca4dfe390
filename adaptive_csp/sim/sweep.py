"""Scenario × policy × parameter grids, on a local process pool or on Ray.

Every job is self-contained (policy spec + overrides, scenario spec, seed, the ladder as JSON), runs
:func:`~adaptive_csp.sim.simulate` without traces, and returns its summary dict; results come back in
job order.  Because the simulation is a pure function of (policy, scenario, ladder, seed), the backends
return identical results for identical seeds.  Ray is the optional ``sweep`` extra.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from adaptive_csp.levels import LevelLadder

__all__ = ["Job", "make_jobs", "run_job", "run_jobs", "parse_grid", "parse_value", "BACKENDS"]

BACKENDS = ("local", "ray", "serial")


@dataclass(frozen=True)
class Job:
    policy: str
    scenario: str | dict
    seed: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    ladder_json: str | None = None
    duration_s: float | None = None

    @property
    def label(self) -> str:
        if not self.overrides:
            return self.policy
        return self.policy + "[" + ",".join(f"{k}={v}" for k, v in sorted(self.overrides.items())) + "]"


_SCALAR: TypeAdapter[Any] = TypeAdapter(bool | int | float | str | None)


def parse_value(text: str) -> Any:
    """A command-line value read as a JSON scalar (``70``, ``0.5``, ``true``, ``null``, ``"x"``), else the text.

    The policy's own validation (pydantic :class:`PolicyConfig`, a baseline's constructor) judges it.
    """
    try:
        return _SCALAR.validate_json(text.strip())
    except ValidationError:
        return text.strip()


def parse_grid(specs: Iterable[str]) -> list[tuple[str | None, str, list[Any]]]:
    """``["up_threshold=70,80,90", "unity:t_warning_c=60,70"]`` → [(policy or None, param, values)]."""
    out = []
    for spec in specs:
        if "=" not in spec:
            raise ValueError(f"grid entry {spec!r} is not PARAM=V1,V2,... (optionally POLICY:PARAM=...)")
        key, vals = spec.split("=", 1)
        pol, _, param = key.rpartition(":")
        values = [parse_value(v) for v in vals.split(",") if v.strip()]
        if not param or not values:
            raise ValueError(f"grid entry {spec!r} has no parameter name or no values")
        out.append((pol or None, param.strip(), values))
    return out


def make_jobs(
    policies: Sequence[str],
    scenarios: Sequence[str | dict],
    grid: Sequence[tuple[str | None, str, list[Any]]] = (),
    seeds: Sequence[int | None] = (None,),
    ladder: LevelLadder | None = None,
    duration_s: float | None = None,
) -> list[Job]:
    """The cross product scenario × policy × (that policy's grid) × seed, in a stable order."""
    lj = ladder.to_json() if ladder is not None else None
    jobs = []
    for scn in scenarios:
        for pol in policies:
            axes = [(p, vals) for (who, p, vals) in grid if who in (None, pol)]
            names = [p for p, _ in axes]
            for combo in itertools.product(*(vals for _, vals in axes)):
                for seed in seeds:
                    jobs.append(Job(pol, scn, seed, dict(zip(names, combo, strict=True)), lj, duration_s))
    return jobs


def run_job(job: Job) -> dict[str, Any]:
    """Run one job in this process; the summary dict plus the job's label and overrides."""
    from adaptive_csp.sim.simulate import simulate

    ladder = LevelLadder.from_json(job.ladder_json) if job.ladder_json else None
    r = simulate(job.policy, job.scenario, ladder=ladder, seed=job.seed, overrides=job.overrides,
                 record=False, duration_s=job.duration_s)  # fmt: skip
    d = r.summary()
    d["label"] = job.label
    d["params"] = dict(job.overrides)
    return d


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def run_jobs(jobs: Sequence[Job], backend: str = "local", workers: int | None = None,
             progress: bool = False, ray_address: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Run jobs on ``backend`` (``local`` process pool, ``ray``, or ``serial``); results in job order.

    Ray: starts a local Ray with ``workers`` CPUs, or joins the cluster at ``ray_address`` (or the
    ``RAY_ADDRESS`` environment variable), e.g. ``"auto"`` on a cluster node.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    jobs = list(jobs)
    if not jobs:
        return []
    workers = max(1, int(workers or os.cpu_count() or 1))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="run", leave=False)
    try:
        if backend == "serial" or (backend == "local" and (workers == 1 or len(jobs) == 1)):
            out = []
            for j in jobs:
                out.append(run_job(j))
                if bar:
                    bar.update(1)
            return out
        if backend == "local":
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as ex:
                out = []
                for res in ex.map(run_job, jobs):
                    out.append(res)
                    if bar:
                        bar.update(1)
                return out
        return _run_ray(jobs, workers, bar, ray_address)
    finally:
        if bar:
            bar.close()


def _run_ray(jobs: list[Job], workers: int, bar: Any, address: str | None = None) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise RuntimeError("the ray backend needs Ray: pip install 'adaptive-csp[sweep]'") from None
    started = False
    if not ray.is_initialized():
        root = _package_root()
        env = {
            "env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        }
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            ray.init(address=address, runtime_env=env, log_to_driver=False, ignore_reinit_error=True)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, runtime_env=env,
                     ignore_reinit_error=True)  # fmt: skip
        started = True
    try:
        remote = ray.remote(num_cpus=1)(run_job)
        refs = [remote.remote(j) for j in jobs]
        out: list[dict[str, Any] | None] = [None] * len(refs)
        index = {r: i for i, r in enumerate(refs)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for r in done:
                out[index[r]] = ray.get(r)
                if bar:
                    bar.update(1)
        return out  # type: ignore[return-value]
    finally:
        if started:
            ray.shutdown()
