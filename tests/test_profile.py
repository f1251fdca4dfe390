import torch

from adaptive_csp.data.fashion_mnist import as_imageset, load_sample
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
                              progress=False)
    assert ladder[-1] == m.full_level()
    lat = [r.latency_ms_b32 for r in ladder.rungs[:-1]]
    assert lat == sorted(lat)
    assert 2 <= len(ladder) <= 6  # random weights: few rungs beat cheaper ones on accuracy
    accs = [r.accuracy for r in ladder.rungs]
    assert accs == sorted(accs)
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
