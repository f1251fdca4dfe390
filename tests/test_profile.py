import torch

from adaptive_csp.data.fashion_mnist import as_imageset, load_sample
from adaptive_csp.engines import have_onnxruntime
from adaptive_csp.models import create_model, get_model_cfg
from adaptive_csp.train.profile import candidate_levels, pareto, plot, profile, thin


def test_pareto_and_thin():
    pts = [(1.0, 0.80), (2.0, 0.85), (1.5, 0.79), (3.0, 0.85), (4.0, 0.90)]
    assert pareto(pts) == [0, 1, 4]
    costs = [1, 2, 3, 4, 5, 6, 7, 8]
    kept = thin(list(range(8)), costs, 4)
    assert kept[0] == 0 and kept[-1] == 7 and len(kept) == 4


def test_candidates_cover_depth_and_ratio_without_duplicates():
    m = create_model("csp_small")
    cands = candidate_levels(m)
    assert len(cands) == len(set(cands)) == 1 + 63 * 4
    assert m.full_level() in cands
    w = create_model("csp_wide")
    wc = candidate_levels(w)
    assert len(wc) == len(set(wc)) and w.full_level() in wc and w.cheapest_level() in wc
    assert {lv.width for lv in wc} == set(w.cfg.widths)


def test_profile_end_to_end_on_the_shipped_sample(tmp_path, monkeypatch):
    """Tiny profile on the 1000-image sample: a ladder ordered by measured cost, full level last,
    per-level BN for every rung, and a plot."""
    import adaptive_csp.train.profile as prof

    torch.manual_seed(0)
    m = create_model(get_model_cfg("csp_small", widths=(0.5, 1.0))).eval()
    every = candidate_levels(m)
    small = every[::len(every) // 14]  # every width, several ratios and depths
    assert {lv.width for lv in small} == {0.5, 1.0}
    assert len({s.ratio for lv in small for s in lv.stages}) > 1
    monkeypatch.setattr(prof, "candidate_levels", lambda model: small + [model.full_level()])
    s = as_imageset(load_sample())
    ladder, records = profile(m, s, s, min_rungs=3, max_rungs=5, calib_images=256, screen_val=200,
                              progress=False, latency_threads=1, latency_rounds=2)
    assert ladder[-1] == m.full_level()
    lat = [r.latency_ms_b32 for r in ladder.rungs[:-1]]
    assert lat == sorted(lat)
    keys = {"torch:b1", "torch:b32"} | ({"ort:b1", "ort:b32"} if have_onnxruntime() else set())
    assert all(set(r.latency) == keys for r in ladder.rungs)  # measured on each engine at batch 1 and 32
    assert all(r.latency_ms == r.latency["torch:b1"] for r in ladder.rungs)
    for key in keys:  # the front is kept per (engine, batch): every view buys accuracy with each step
        eng, b = key.split(":b")
        v = ladder.view(eng, int(b))
        assert v.view_key == key and v.parent_index(-1) == ladder.full
        accs, lats = [r.accuracy for r in v.rungs], [r.latency_ms for r in v.rungs]
        assert accs == sorted(accs) and lats == sorted(lats)
    fronts = [set(ladder.view(k.split(":b")[0], int(k.split(":b")[1])).parent_indices) for k in keys]
    assert set().union(*fronts) == set(range(len(ladder)))  # no rung is dominated in every view
    assert 2 <= len(ladder) <= 4 * 5 + 1  # random weights: few rungs beat cheaper ones on accuracy
    assert all(r.level.key in m.bn_stats and r.macs and r.accuracy is not None for r in ladder.rungs)
    assert m.levels == ladder
    plot(records, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_monotone_keeps_a_ladder_that_always_buys_accuracy():
    from adaptive_csp.levels import Level, Rung
    from adaptive_csp.train.profile import monotone

    lv = [Level([(0.5, b)]) for b in range(5)]
    rungs = [Rung(lv[0], latency_ms_b32=1.0, accuracy=0.90), Rung(lv[1], latency_ms_b32=2.0, accuracy=0.92),
             Rung(lv[2], latency_ms_b32=3.0, accuracy=0.915),  # slower but worse: dropped
             Rung(lv[3], latency_ms_b32=5.0, accuracy=0.93), Rung(lv[4], latency_ms_b32=4.0, accuracy=0.925)]
    lad = monotone(rungs, lv[3])
    assert list(lad) == [lv[0], lv[1], lv[4], lv[3]]
    accs, lats = [r.accuracy for r in lad.rungs], [r.latency_ms_b32 for r in lad.rungs]
    assert accs == sorted(accs) and lats == sorted(lats) and lad[-1] == lv[3]


def test_union_front_keeps_each_engines_front():
    from adaptive_csp.levels import Level, Rung
    from adaptive_csp.train.profile import union_front

    lv = [Level([(0.5, b)]) for b in range(5)]
    acc = [0.90, 0.91, 0.92, 0.93, 0.95]
    t32 = [1.0, 2.5, 2.0, 3.0, 5.0]  # lv1 dominated by lv2 in torch at batch 32 ...
    o1 = [1.0, 1.2, 1.5, 1.4, 2.0]  # ... but on ORT's batch-1 front, where lv2 is dominated by lv3
    rungs = [Rung(lv[i], latency_ms_b32=t32[i], accuracy=acc[i],
                  latency={"torch:b32": t32[i], "ort:b1": o1[i]}) for i in range(5)]
    lad = union_front(rungs, lv[4], ["torch:b32", "ort:b1"])
    assert list(lad) == [lv[0], lv[2], lv[1], lv[3], lv[4]]  # the union, ordered by batch-32 torch latency
    assert [lad[i] for i in lad.view("torch", 32).parent_indices] == [lv[0], lv[2], lv[3], lv[4]]
    assert [lad[i] for i in lad.view("ort", 1).parent_indices] == [lv[0], lv[1], lv[3], lv[4]]
    assert list(union_front(rungs, lv[4], [])) == [lv[0], lv[2], lv[3], lv[4]]  # no keys: as before


def _saved_small(tmp_path):
    from adaptive_csp.models.pretrained import save_model

    torch.manual_seed(0)
    m = create_model("csp_small").eval()
    m.meta = {"preprocess": {"input_size": list(m.cfg.input_size), "in_chans": 1, "color": "grey",
                             "mean": [0.5], "std": [0.25]}, "profile": {"candidates": 3}}
    return save_model(m, tmp_path / "m"), m


def test_latency_only_writes_the_json_and_leaves_the_weights(tmp_path):
    import hashlib
    import json

    from adaptive_csp.models.pretrained import load_model
    from adaptive_csp.train.profile import latency_only

    tpath, m = _saved_small(tmp_path)
    before = hashlib.sha256(tpath.read_bytes()).hexdigest()
    old = json.loads(tpath.with_suffix(".json").read_text())
    ladder, path = latency_only(tpath, engines=("torch",), batches=(1, 2), threads=1, rounds=1)
    assert path == tpath.with_suffix(".json") and hashlib.sha256(tpath.read_bytes()).hexdigest() == before
    doc = json.loads(path.read_text())
    assert doc["profile"]["candidates"] == 3 and doc["profile"]["latency"]["threads"] == 1
    assert doc["profile"]["latency"]["keys"] == ["torch:b1", "torch:b2"]
    for new, was in zip(doc["ladder"]["rungs"], old["ladder"]["rungs"], strict=True):
        assert set(new.pop("latency")) == {"torch:b1", "torch:b2"} and new == was  # nothing else changed
    back = load_model(tpath)  # verifies the weights' SHA-256 against the JSON
    assert back.levels == ladder and back.levels.view("torch", 2).view_key == "torch:b2"


def test_latency_only_cli_and_the_device_cache(tmp_path, monkeypatch, capsys):
    import json

    from adaptive_csp.cli import main
    from adaptive_csp.engines import make_engine
    from adaptive_csp.runtime.calibrate import LatencyCache

    tpath, m = _saved_small(tmp_path)
    monkeypatch.setenv("ADAPTIVE_CSP_CACHE", str(tmp_path / "cache"))
    jtext = tpath.with_suffix(".json").read_text()
    assert main(["profile", str(tpath), "--latency-only", "--latency-cache", "--engines", "torch",
                 "--batches", "1", "--latency-threads", "1", "--latency-rounds", "1"]) == 0
    assert tpath.with_suffix(".json").read_text() == jtext  # --latency-cache leaves the model's JSON alone
    assert "torch:b1" in capsys.readouterr().out
    torch.set_num_threads(1)
    keys = LatencyCache.entry_keys(make_engine(m, "torch"))
    got = LatencyCache().get(keys, ["torch:b1"])
    assert got is not None and all(g["torch:b1"] > 0 for g in got)
    assert main(["profile", str(tpath), "--latency-only", "--out", str(tmp_path / "copy"), "--engines", "torch",
                 "--batches", "1", "--latency-threads", "1", "--latency-rounds", "1"]) == 0
    doc = json.loads((tmp_path / "copy.json").read_text())
    assert "adaptive-csp profile" in doc["profile"]["latency"]["command"]
    assert (tmp_path / "copy.safetensors").read_bytes() == tpath.read_bytes()
    assert main(["profile", str(tpath)]) == 2  # a full profile needs --out


def _tied(lats, accs):
    from adaptive_csp.levels import Level, Rung

    lv = [Level([(0.5, b)]) for b in range(len(lats))]
    return lv, [Rung(lv[i], latency_ms_b32=lats[i], accuracy=accs[i], latency={"torch:b32": lats[i]})
                for i in range(len(lats))]


def test_ties_keep_the_cheaper_rung_and_views_keep_it():
    from adaptive_csp.train.profile import monotone, union_front

    lv, rungs = _tied([1.0, 2.0, 4.0, 8.0], [1.0, 1.0, 1.0, 1.0])  # every candidate at 100 %
    for lad in (union_front(rungs, lv[3], ["torch:b32"]), monotone(rungs, lv[3])):
        assert list(lad) == [lv[0], lv[3]]  # the cheapest of the tied, then the full level
        assert [lad[i] for i in lad.view("torch", 32).parent_indices] == [lv[0], lv[3]]
    lv, rungs = _tied([1.0, 2.0, 4.0], [0.9, 0.95, 0.95])  # a rung tied with the full one is kept
    assert list(union_front(rungs, lv[2], ["torch:b32"])) == [lv[0], lv[1], lv[2]]


def test_spread_fills_min_rungs_within_tolerance_without_losing_accuracy():
    from adaptive_csp.levels import LevelLadder
    from adaptive_csp.train.profile import spread, union_front

    lv, rungs = _tied([1.0, 2.0, 3.0, 4.0, 8.0, 16.0], [1.0, 1.0, 0.9, 1.0, 1.0, 1.0])
    strict = union_front(rungs, lv[5], ["torch:b32"])
    assert list(strict) == [lv[0], lv[5]]
    lad = spread(strict, rungs, 4, 0.01)
    assert list(lad) == [lv[0], lv[1], lv[3], lv[5]]  # log-spread: the middle of 1..16 first (4), then of 1..4
    assert list(spread(strict, rungs, 9, 0.01)) == [lv[0], lv[1], lv[3], lv[4], lv[5]]  # 0.9 is 10 points off
    assert list(spread(strict, rungs, 9, 0.2)) == [lv[0], lv[1], lv[3], lv[4], lv[5]]  # and below its neighbours
    assert len(lad.view("torch", 32)) == 4  # the view offers every tied rung (higher index = better)
    assert spread(strict, rungs, 2, 0.01) is not None and list(spread(strict, rungs, 2, 0.01)) == list(strict)
    lv2, noisy = _tied([1.0, 2.0, 4.0, 8.0], [0.98, 0.975, 0.985, 0.99])
    assert list(spread(LevelLadder([noisy[0], noisy[3]]), noisy, 4, 0.01)) == [lv2[0], lv2[2], lv2[3]]
    # lv1 beats the full level (so it is off the ladder); lv2 and lv3 lie 10 points below it
    lv3, over = _tied([1.0, 2.0, 4.0, 8.0, 16.0], [0.90, 1.0, 0.90, 0.90, 0.99])
    strict = union_front(over, lv3[4], ["torch:b32"])
    assert list(strict) == [lv3[0], lv3[4]]
    assert list(spread(strict, over, 4, 0.01)) == [lv3[0], lv3[4]]  # outside a 1-point tolerance
    assert list(spread(strict, over, 4, 0.2)) == [lv3[0], lv3[2], lv3[3], lv3[4]]  # inside a 20-point one


def test_near_front_refines_each_front_first_then_a_spread():
    from adaptive_csp.train.profile import near_front

    pts = [(1.0, 0.5), (2.0, 0.8), (3.0, 0.79), (4.0, 0.6), (5.0, 0.9), (6.0, 0.88)]
    assert near_front([pts], 0.0, None) == [0, 1, 4]
    assert near_front([pts], 0.03, None) == [0, 1, 4, 2, 5]  # within 3 points of the best at most as slow
    assert near_front([pts], 0.03, 3) == [0, 1, 4]  # the cap keeps the strict front


def test_profile_with_every_candidate_tied_keeps_a_spread_from_the_cheapest(monkeypatch):
    """Every candidate scores 100 %: the ladder starts at the cheapest candidate and --min-rungs holds."""
    import adaptive_csp.train.profile as prof
    import adaptive_csp.train.sandwich as sw

    torch.manual_seed(0)
    m = create_model("csp_small").eval()
    every = candidate_levels(m)
    monkeypatch.setattr(prof, "candidate_levels", lambda model: every[::40] + [model.full_level()])
    monkeypatch.setattr(sw, "evaluate", lambda *a, **k: 1.0)
    s = as_imageset(load_sample()).take(slice(0, 32))
    ladder, records = profile(m, s, s, min_rungs=4, calib_images=32, screen_val=16, refine=5, progress=False,
                              latency_threads=1, latency_rounds=1, engines=("torch",))
    refined = [r for r in records if "val_acc" in r]
    assert len(refined) < len(records)  # only the candidates near the screened front are refined
    cheapest = min(refined, key=lambda r: r["latency_ms_b32"])["level"]
    assert ladder[0] == cheapest and ladder[-1] == m.full_level()
    assert len(ladder) == 4 and len(ladder.view("torch", 32)) == 4
    assert all(r.accuracy == 1.0 for r in ladder.rungs)
