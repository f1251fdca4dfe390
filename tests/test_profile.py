import torch

from adaptive_csp.data.fashion_mnist import load_sample
from adaptive_csp.models import create_model
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


def test_profile_end_to_end_on_the_shipped_sample(tmp_path, monkeypatch):
    """Tiny profile on the 1000-image sample: a ladder ordered by measured cost, full level last,
    per-level BN for every rung, and a plot."""
    import adaptive_csp.train.profile as prof

    torch.manual_seed(0)
    m = create_model("csp_small").eval()
    small = [lv for lv in candidate_levels(m) if all(s.ratio == 0.5 for s in lv.stages)][:12]
    monkeypatch.setattr(prof, "candidate_levels", lambda model: small + [model.full_level()])
    s = load_sample()
    ladder, records = profile(m, s, s, min_rungs=3, max_rungs=5, calib_images=256, screen_val=200,
                              progress=False)
    assert ladder[-1] == m.full_level()
    lat = [r.latency_ms_b32 for r in ladder.rungs[:-1]]
    assert lat == sorted(lat)
    assert 3 <= len(ladder) <= 6
    assert all(r.level.key in m.bn_stats and r.macs and r.accuracy is not None for r in ladder.rungs)
    assert m.levels == ladder
    plot(records, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
