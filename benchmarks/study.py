"""The power-aware study (issue #7): CSP with int8, structured pruning and DVFS, alone and combined.

Usage: ``python benchmarks/study.py [--quick] [--threads 1] [--json runs/study.json]`` (~4.5 min here)

Prints the README's study table on Fashion-MNIST and this CPU:

* plain net and CSP (each trained alone at its full size), each fp32, + int8 (torch.ao FX, x86, calibrated
  on 512 validation images), + structured pruning (50 % of the channels of every prunable group removed
  by L1 importance, then KD fine-tuning: ``--ft-epochs`` × ``--ft-images`` training images), + DVFS
  (the joint policy choosing the frequency for the fixed model);
* the shared-weight CSP's full level, and its adaptive ladder under the ``battery`` preset in the
  ``drone`` scenario, without and with DVFS (the joint (level, frequency) policy), and with the int8 rungs
  that are Pareto-better on this device (validation accuracy, batch-1 latency).

Columns: test top-1 (10 000 images; adaptive rows: frame-weighted over the levels the policy ran),
MACs, parameters, serialised size, median latency at batch 1 and 32 on this CPU (interleaved, warm,
``--threads`` threads), energy per inference from the simulator's device model (the drone's device
class at the frequency used; whole board, idle floor included), and the drone run's battery life and
deadline misses.  Every row runs the same drone: the work per frame is fixed so that the shared-weight
CSP's full level keeps the board 70 % busy at f_max (the scenario's ``busy_at_full``), so a slower
model is busier and can miss deadlines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians, reexec_with_malloc_tunables  # noqa: E402

reexec_with_malloc_tunables()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from adaptive_csp.control.dvfs import joint_policy  # noqa: E402
from adaptive_csp.data.fashion_mnist import DatasetNotFound, Split, augment, load_sample, load_split  # noqa: E402
from adaptive_csp.levels import Level, LevelLadder, Rung  # noqa: E402
from adaptive_csp.models import create_model  # noqa: E402
from adaptive_csp.models.pretrained import load_model, pretrained  # noqa: E402
from adaptive_csp.nn.prune import count_params, finetune, prune_static  # noqa: E402
from adaptive_csp.quant import INT8, install_int8, module_bytes, quantize_static  # noqa: E402
from adaptive_csp.sim import DeviceModel, load_scenario, simulate  # noqa: E402
from adaptive_csp.sim.device import DeviceClass, get_device_class  # noqa: E402
from adaptive_csp.sim.scenario import Scenario  # noqa: E402
from adaptive_csp.train.int8_profile import int8_ladder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CL = torch.channels_last


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- inputs -------------------------------------------------------------------------------------------------
def load_or(path: str, fallback, label: str):
    p = Path(path)
    if p.with_suffix(".safetensors").exists() or p.exists():
        return load_model(p), f"{label} ({p})"
    return fallback(), f"{label} (NOT TRAINED: {p} missing)"


def splits(quick: bool) -> tuple[Split, Split, Split, str]:
    try:
        train, val, test = load_split("train"), load_split("val"), load_split("test")
        note = "Fashion-MNIST: val 5 000 (calibration, selection), test 10 000 (reported)"
    except DatasetNotFound:
        s = load_sample()
        train, val, test = s, Split(s.images[:500], s.labels[:500]), Split(s.images[500:], s.labels[500:])
        note = "DATASET MISSING: shipped 1 000-image sample only (not comparable)"
    if quick:
        val = Split(val.images[:500], val.labels[:500])
        test = Split(test.images[:1000], test.labels[:1000])
        note += " [--quick: val 500, test 1 000]"
    return train, val, test, note


@torch.inference_mode()
def accuracy(net, split: Split, bs: int = 500, channels_last: bool = True) -> float:
    correct = 0
    for i in range(0, len(split), bs):
        x = split.normalized(slice(i, i + bs))
        if channels_last:
            x = x.contiguous(memory_format=CL)
        correct += int((net(x).argmax(1) == split.labels[i:i + bs]).sum())
    return correct / len(split)


def macs_of(net) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(torch.zeros(1, 1, 28, 28))
    return fc.get_total_flops() // 2


class Entry:
    """One module to measure: fp32 (channels_last weights and input) or int8 (contiguous input)."""

    def __init__(self, name: str, net, *, int8: bool = False, macs: int | None = None,
                 params: int | None = None):
        self.name, self.int8 = name, int8
        self.net = net if int8 else net.to(memory_format=CL)
        self.macs = macs if macs is not None else macs_of(net)
        self.params = params if params is not None else count_params(net)
        self.bytes = module_bytes(net)
        self.b1 = self.b32 = float("nan")
        self.test = self.val = float("nan")

    def x(self, bs: int) -> torch.Tensor:
        x = torch.randn(bs, 1, 28, 28)
        return x if self.int8 else x.contiguous(memory_format=CL)


def time_all(entries: list[Entry], rounds: int, iters1: int, iters32: int) -> None:
    for bs, iters, attr in ((1, iters1, "b1"), (32, iters32, "b32")):
        xs = [e.x(bs) for e in entries]
        with torch.inference_mode():
            ms = interleaved_medians([lambda e=e, x=x: e.net(x) for e, x in zip(entries, xs, strict=True)],
                                     rounds=rounds, iters=iters, warmup=max(5, iters))
        for e, m in zip(entries, ms, strict=True):
            setattr(e, attr, m)


# --- simulation helpers ----------------------------------------------------------------------------------
def one_rung(e: Entry, acc: float) -> LevelLadder:
    return LevelLadder([Rung(level=Level([(1.0, 0)]), macs=e.macs, params=e.params, latency_ms=e.b1,
                             latency_ms_b32=e.b32, accuracy=acc)])


def sim_row(policy, ladder: LevelLadder, scn, device) -> dict:
    r = simulate(policy=policy, scenario=scn, ladder=ladder, record=True)
    tr = r.trace
    dev = DeviceModel.from_ladder(ladder, device)  # one image per inference (no work scaling)
    lv = tr["level"].astype(int)
    f = tr["frequency"].astype(float)
    n = tr["processed"].astype(float)
    tot = max(1.0, n.sum())
    e_inf = sum(dev.energy_j(int(a), float(b)) * c for a, b, c in zip(lv, f, n, strict=True)) / tot

    def w(vals):
        v = np.asarray([vals[i] for i in lv], dtype=float)
        return float((v * n).sum() / tot)

    rungs = ladder.rungs
    return {
        "policy": r.policy, "battery_h": (r.battery_life_s or float("nan")) / 3600.0,
        "misses_pct": r.deadline_miss_pct, "accuracy": r.mean_accuracy, "energy_mj": 1000.0 * e_inf,
        "macs": w([x.macs for x in rungs]), "b1": w([x.latency_ms for x in rungs]),
        "b32": w([x.latency_ms_b32 for x in rungs]), "mean_f": float((f * n).sum() / tot),
        "mean_level": r.mean_level, "level_switches": r.level_switches, "freq_switches": r.frequency_switches,
        "p95_ms": r.p95_latency_ms, "energy_j": r.energy_j,
    }


# --- the result -------------------------------------------------------------------------------------------
@dataclass
class StudyResult:
    """Everything the study measured; :func:`render` prints it, :meth:`to_dict` is the ``--json`` record."""

    notes: dict[str, str]  # data, plain, csp, elastic
    threads: int
    policy: str
    prune_ratio: float
    scenario: Scenario  # as configured (before the work per frame was fixed)
    device: DeviceClass
    work: float  # inferences per frame
    rows: list[dict]
    prune: dict[str, dict]
    ladder: LevelLadder  # the shared-weight CSP's fp32 levels
    levels_fp32: list[Entry]
    levels_int8: list[Entry]
    mixed: LevelLadder  # the ladder with the int8 rungs that joined
    joined: list[Rung]  # those int8 rungs
    seconds: float

    def to_dict(self) -> dict:
        n = self.notes
        return {"rows": self.rows, "prune": self.prune, "levels": [
            {"level": self.ladder[i].key, "fp32": vars_(f), "int8": vars_(q)}
            for i, (f, q) in enumerate(zip(self.levels_fp32, self.levels_int8, strict=True))
        ], "mixed_ladder": self.mixed.to_dict(), "notes": [n["data"], n["plain"], n["csp"], n["elastic"]],
            "threads": self.threads}


# --- computing ----------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small subsets, few repeats (smoke run)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the README table: 1)")
    ap.add_argument("--csp", default="auto",
                    help="shared-weight CSP checkpoint; auto: the shipped model if its ladder is profiled, "
                         "else runs/csp_small/profiled, else runs/csp_small/model")
    ap.add_argument("--csp-static", default="runs/static_full/model", help="CSP trained alone (full level)")
    ap.add_argument("--plain", default="runs/plain_small/model", help="plain net trained alone")
    ap.add_argument("--prune-ratio", type=float, default=0.5)
    ap.add_argument("--ft-images", type=int, default=20000)
    ap.add_argument("--ft-epochs", type=int, default=2)
    ap.add_argument("--calib", type=int, default=512, help="validation images for int8 calibration")
    ap.add_argument("--scenario", default="drone")
    ap.add_argument("--policy", default="battery")
    ap.add_argument("--json", default="runs/study.json")
    return ap.parse_args(argv)


def os_path(p: str) -> str:
    return str(ROOT / p) if not Path(p).is_absolute() else p


def load_models(a: argparse.Namespace, train: Split) -> tuple[object, object, object, dict[str, str]]:
    """The shared-weight CSP (BN statistics estimated for levels without), the CSP and plain net trained
    alone (each falling back when not trained), all in eval mode; and their notes."""
    if a.csp == "auto":  # the shipped model once it carries a profiled ladder, else the training run
        from adaptive_csp.models.pretrained import shipped_ladder

        profiled = all(r.latency_ms for r in shipped_ladder().rungs)
        a.csp = ("adaptive_csp/assets/csp_small_fmnist" if profiled else "runs/csp_small/profiled"
                 if (ROOT / "runs/csp_small/profiled.safetensors").exists() else "runs/csp_small/model")
    elastic, el_note = load_or(os_path(a.csp), pretrained, "shared-weight CSP")
    csp_m, csp_note = load_or(os_path(a.csp_static), lambda: elastic, "CSP trained alone")
    plain_m, plain_note = load_or(os_path(a.plain), lambda: create_model("plain_small").eval(), "plain")
    for m in (elastic, csp_m, plain_m):
        m.eval()
    missing = [lv for lv in elastic.levels if lv.key not in elastic.bn_stats]
    if missing and len(elastic.levels) > 1:
        log(f"calibrating BN for {len(missing)} ladder levels without statistics")
        elastic.calibrate_bn(missing, [train.normalized(slice(i, i + 256)) for i in range(0, 2048, 256)])
    return elastic, csp_m, plain_m, {"plain": plain_note, "csp": csp_note, "elastic": el_note}


def static_entries(models: dict, a: argparse.Namespace, train: Split, val: Split,
                   calib: list[torch.Tensor]) -> tuple[dict[str, Entry], dict[str, dict]]:
    """Per model trained alone: fp32, int8 and pruned + fine-tuned entries; the pruning summary."""
    entries: dict[str, Entry] = {}
    prune_info = {}
    for tag, m in models.items():
        net = m.export(-1)
        entries[f"{tag}"] = Entry(tag, net)
        log(f"{tag}: int8 (FX, x86)")
        q = quantize_static(net, calib)
        entries[f"{tag}+int8"] = Entry(f"{tag}+int8", q, int8=True, macs=entries[tag].macs,
                                       params=entries[tag].params)
        log(f"{tag}: prune {a.prune_ratio:.0%} + fine-tune {a.ft_epochs} x {a.ft_images} images")
        pruned, rep = prune_static(net, a.prune_ratio)
        acc0 = accuracy(pruned, val)
        ft_data = TensorDataset(train.normalized(slice(0, a.ft_images)), train.labels[:a.ft_images])
        ft = finetune(pruned, ft_data, teacher=net, augment=augment, images=a.ft_images, epochs=a.ft_epochs)
        prune_info[tag] = {"params_before": rep["params_before"], "params_after": rep["params_after"],
                           "val_before_ft": acc0, "val_after_ft": accuracy(pruned, val), **ft}
        entries[f"{tag}+prune"] = Entry(f"{tag}+prune", pruned)
    return entries, prune_info


def level_entries(elastic, calib: list[torch.Tensor]) -> tuple[list[Entry], list[Entry]]:
    """Every ladder level exported, fp32 and int8."""
    lv_fp, lv_q = [], []
    for i in range(len(elastic.levels)):
        net = elastic.export(i)
        lv_fp.append(Entry(f"L{i}", net, macs=elastic.macs(i), params=elastic.params(i)))
        lv_q.append(Entry(f"L{i}+int8", quantize_static(net, calib), int8=True, macs=lv_fp[-1].macs,
                          params=lv_fp[-1].params))
    return lv_fp, lv_q


def int8_rungs(elastic, lv_fp: list[Entry], lv_q: list[Entry],
               calib: list[torch.Tensor]) -> tuple[LevelLadder, list[Rung], LevelLadder, LevelLadder]:
    """The int8 rungs that are Pareto-better here (on validation accuracy), installed and checked.

    Returns the mixed ladder, its int8 rungs, and the fp32 and mixed ladders with test accuracy."""
    lad = elastic.levels

    def rung(i: int, e: Entry, acc: float) -> Rung:
        return Rung(level=lad[i], macs=e.macs, params=e.params, latency_ms=e.b1, latency_ms_b32=e.b32,
                    accuracy=acc, extra={"test_accuracy": e.test})

    fp_val = [rung(i, e, e.val) for i, e in enumerate(lv_fp)]
    q_val = [rung(i, e, e.val) for i, e in enumerate(lv_q)]
    mixed = int8_ladder(fp_val, q_val)
    joined = [r for r in mixed.rungs if r.extra.get("precision") == INT8]

    def test_ladder(ld: LevelLadder) -> LevelLadder:  # same rungs, test accuracy for reporting
        return LevelLadder(Rung(level=r.level, macs=r.macs, params=r.params, latency_ms=r.latency_ms,
                                latency_ms_b32=r.latency_ms_b32, accuracy=r.extra["test_accuracy"],
                                extra=r.extra) for r in ld.rungs)

    fp_ladder = test_ladder(LevelLadder(fp_val))
    q_ladder = test_ladder(mixed)
    if joined:  # the runner runs them like any other level: install and check one
        elastic.levels = mixed
        install_int8(elastic, calib)
        with torch.inference_mode():
            k = next(i for i, r in enumerate(mixed.rungs) if r.extra.get("precision") == INT8)
            assert getattr(elastic.prepared(k), "precision", None) == INT8
    return mixed, joined, fp_ladder, q_ladder


def drone(name: str, full_b1_ms: float):
    """The scenario, its device class (with the scenario's thermal resistance), the work per frame that
    keeps the board ``busy_at_full`` at the shared-weight CSP's full level, and the scenario with it fixed."""
    scn0 = load_scenario(name)
    dc = get_device_class(scn0.device)
    if scn0.thermal.r_k_per_w is not None:
        dc = dc.with_(r_k_per_w=scn0.thermal.r_k_per_w)
    full_s = full_b1_ms * dc.latency_scale / 1000.0
    work = scn0.work_per_frame(full_s) if scn0.busy_at_full else (scn0.inferences_per_frame or 1.0)
    return scn0, dc, work, scn0.with_(busy_at_full=None, inferences_per_frame=work)


def row(name: str, e: Entry | None, sim: dict, size: int, acc: float | None = None, **kw) -> dict:
    """One table row: the entry's own figures (an adaptive row: the simulation's frame-weighted ones)."""
    return {
        "name": name, "accuracy": acc if acc is not None else sim["accuracy"],
        "macs": e.macs if e is not None else sim["macs"], "params": kw.get("params", e.params if e else None),
        "bytes": size, "b1": e.b1 if e is not None else sim["b1"],
        "b32": e.b32 if e is not None else sim["b32"], **{f"sim_{k}": v for k, v in sim.items()},
    }


def drone_rows(a: argparse.Namespace, entries: dict[str, Entry], elastic, lad: LevelLadder, lv_fp: list[Entry],
               lv_q: list[Entry], ladders: tuple[LevelLadder, LevelLadder], joined: list[Rung], scn,
               dc) -> list[dict]:
    """Every configuration run through the same drone simulation."""
    rows: list[dict] = []
    fp_ladder, q_ladder = ladders
    dvfs = lambda inner: joint_policy(inner, device=dc)  # noqa: E731
    for tag, label in (("plain", "plain net"), ("csp", "CSP")):
        for suffix, what in (("", ""), ("+int8", " + int8"), ("+prune", f" + pruning ({a.prune_ratio:.0%})")):
            e = entries[tag + suffix]
            rows.append(row(f"{label}{what}", e, sim_row("static-max", one_rung(e, e.test), scn, dc), e.bytes,
                            e.test))
        for suffix, what in (("", ""), ("+prune", " + pruning")):
            e = entries[tag + suffix]
            rows.append(row(f"{label}{what} + DVFS", e, sim_row(dvfs("static-max"), one_rung(e, e.test), scn, dc),
                            e.bytes, e.test))
    el_bytes = module_bytes(elastic)
    e = lv_fp[-1]
    rows.append(row("shared-weight CSP, full level", e, sim_row("static-max", one_rung(e, e.test), scn, dc),
                    el_bytes, e.test))
    par = count_params(elastic)
    rows.append(row(f"adaptive ladder ({len(lad)} levels), {a.policy}", None, sim_row(a.policy, fp_ladder, scn, dc),
                    el_bytes, params=par))
    rows.append(row(f"adaptive ladder, {a.policy} + DVFS", None, sim_row(dvfs(a.policy), fp_ladder, scn, dc),
                    el_bytes, params=par))
    if joined:
        index = {lv: i for i, lv in enumerate(lad)}
        qb = el_bytes + sum(lv_q[index[r.level]].bytes for r in joined)  # float weights + one module each
        rows.append(row(f"adaptive ladder + {len(joined)} int8 rungs, {a.policy} + DVFS", None,
                        sim_row(dvfs(a.policy), q_ladder, scn, dc), qb, params=par))
    return rows


def compute(a: argparse.Namespace) -> StudyResult:
    """Run the study: quantise, prune and fine-tune, time, score and simulate every configuration."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    t_start = time.perf_counter()
    if a.quick:
        a.ft_images = min(a.ft_images, 2000)
    train, val, test, data_note = splits(a.quick)
    calib = [val.normalized(slice(i, min(a.calib, i + 128))) for i in range(0, min(a.calib, len(val)), 128)]
    elastic, csp_m, plain_m, notes = load_models(a, train)
    entries, prune_info = static_entries({"plain": plain_m, "csp": csp_m}, a, train, val, calib)
    lad = elastic.levels
    lv_fp, lv_q = level_entries(elastic, calib)
    log("int8 levels quantised; timing")
    all_e = list(entries.values()) + lv_fp + lv_q
    if a.quick:
        time_all(all_e, rounds=3, iters1=5, iters32=2)
    else:
        time_all(all_e, rounds=9, iters1=20, iters32=4)
    log("accuracy")
    for e in all_e:
        e.test = accuracy(e.net, test, channels_last=not e.int8)
    for e in lv_fp + lv_q:
        e.val = accuracy(e.net, val, channels_last=not e.int8)
    mixed, joined, fp_ladder, q_ladder = int8_rungs(elastic, lv_fp, lv_q, calib)
    scn0, dc, work, scn = drone(a.scenario, lv_fp[-1].b1)
    log(f"simulating {a.scenario} ({scn0.device}), work per frame {work:.2f} inferences")
    rows = drone_rows(a, entries, elastic, lad, lv_fp, lv_q, (fp_ladder, q_ladder), joined, scn, dc)
    return StudyResult(notes={"data": data_note, **notes}, threads=torch.get_num_threads(), policy=a.policy,
                       prune_ratio=a.prune_ratio, scenario=scn0, device=dc, work=work, rows=rows,
                       prune=prune_info, ladder=lad, levels_fp32=lv_fp, levels_int8=lv_q, mixed=mixed,
                       joined=joined, seconds=time.perf_counter() - t_start)


# --- rendering ----------------------------------------------------------------------------------------------
def render(r: StudyResult) -> None:
    """Print the study's tables (the README's) from a result."""
    render_table(r)
    render_levels(r)
    render_details(r)
    print(f"\n(total {r.seconds:.0f} s)")


def render_table(r: StudyResult) -> None:
    n, scn0, dc = r.notes, r.scenario, r.device
    print(f"\n## Power-aware study — {n['data']}; {r.threads} threads; int8: torch.ao FX (x86 backend)")
    print(f"checkpoints: {n['plain']}; {n['csp']}; {n['elastic']}")
    print(f"drone: {scn0.description}; device model {dc.name} ({dc.assumptions}); work per frame fixed at "
          f"{r.work:.2f} inferences (shared-weight CSP full level {100 * scn0.busy_at_full if scn0.busy_at_full else 0:.0f} % "
          "busy at f_max)\n")
    print("| configuration | top-1 % | MMACs | params k | size KB | b1 ms | b32 ms | mJ/inf | drone battery h "
          "| drone misses % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for w in r.rows:
        print(f"| {w['name']} | {100 * w['accuracy']:.2f} | {w['macs'] / 1e6:.1f} | {w['params'] / 1e3:.0f} | "
              f"{w['bytes'] / 1024:.0f} | {w['b1']:.2f} | {w['b32']:.1f} | {w['sim_energy_mj']:.1f} | "
              f"{w['sim_battery_h']:.2f} | {w['sim_misses_pct']:.2f} |")
    print("\nmJ/inf: one inference on the drone's device class at the frequency the policy used (whole board, "
          "idle floor included; adaptive rows: mean over processed frames). b1 / b32: median ms per batch on "
          "this CPU at f_max; adaptive rows: frame-weighted over the levels run.")


def render_levels(r: StudyResult) -> None:
    lad = r.ladder
    print(f"\n### Ladder levels, fp32 vs int8 ({len(lad)} levels; int8 joins where ≥3 % faster at batch 1 and val "
          "accuracy within 0.2 pt)")
    print("| level | MMACs | fp32 b1 | int8 b1 | fp32 b32 | int8 b32 | fp32 val % | int8 val % | fp32 test % | "
          "int8 test % | in ladder |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    chosen = {x.level: x.extra.get("precision", "fp32") for x in r.mixed.rungs}
    for i, (f, q) in enumerate(zip(r.levels_fp32, r.levels_int8, strict=True)):
        print(f"| {i} {lad[i].key} | {f.macs / 1e6:.1f} | {f.b1:.2f} | {q.b1:.2f} | {f.b32:.1f} | {q.b32:.1f} | "
              f"{100 * f.val:.2f} | {100 * q.val:.2f} | {100 * f.test:.2f} | {100 * q.test:.2f} | "
              f"{chosen.get(lad[i], '—')} |")
    if r.joined:
        print(f"\nint8 rungs in the ladder: {', '.join(x.level.key for x in r.joined)}")
    else:
        print("\nint8 rungs in the ladder: none — no level's int8 module was ≥3 % faster at batch 1 with val "
              "accuracy within 0.2 pt of its fp32 level, so the adaptive rows run fp32 only")


def render_details(r: StudyResult) -> None:
    print("\n### Pruning")
    for tag, p in r.prune.items():
        print(f"- {tag}: params {p['params_before']:,} → {p['params_after']:,}; val {100 * p['val_before_ft']:.2f} % "
              f"right after pruning → {100 * p['val_after_ft']:.2f} % after fine-tuning ({p['images']} images, "
              f"{p['seconds']:.0f} s)")
    print("\n### Simulation details")
    for w in r.rows:
        print(f"- {w['name']}: policy {w['sim_policy']}, mean level {w['sim_mean_level']:.2f}, mean f "
              f"{w['sim_mean_f']:.2f}, level switches {w['sim_level_switches']}, frequency switches "
              f"{w['sim_freq_switches']}, p95 {w['sim_p95_ms']:.1f} ms, energy {w['sim_energy_j']:.0f} J")


# --- main ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    result = compute(a)
    render(result)
    out = result.to_dict()
    if a.json:
        p = Path(os_path(a.json))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(out, indent=1, default=float))
    return out


def vars_(e: Entry) -> dict:
    return {k: getattr(e, k) for k in ("macs", "params", "bytes", "b1", "b32", "val", "test")}


if __name__ == "__main__":
    main()
