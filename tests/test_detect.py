"""The detector: box coding, NMS, the elastic model against its exported levels, checkpoints, training."""

import random

import pytest
import torch
from conftest import randomize_bn

from adaptive_csp.detect.boxes import batched_nms, box_iou, decode, encode, nms, postprocess
from adaptive_csp.detect.checkpoint import load_detector, save_detector
from adaptive_csp.detect.loss import assign, distill_loss, fcos_loss
from adaptive_csp.detect.model import (
    DetCfg,
    Detector,
    anchor_points,
    decode_maps,
    detector_ladder,
    flatten_maps,
    get_detector_cfg,
)
from adaptive_csp.levels import Level
from adaptive_csp.models.pretrained import CheckpointError
from adaptive_csp.train.detect import sample_det_level


def _boxes(n: int, g: torch.Generator, size: float = 100.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 3 + 1
    return torch.cat([xy, xy + wh], 1)


def _nms_reference(boxes, scores, thr):
    """Brute force: walk boxes by descending score, keep one unless it overlaps a kept one by > thr."""
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i)):
        if all(float(box_iou(boxes[i:i + 1], boxes[k:k + 1])) <= thr for k in keep):
            keep.append(i)
    return keep


def test_encode_decode_round_trip():
    g = torch.Generator().manual_seed(0)
    boxes = _boxes(50, g)
    pts = (boxes[:, :2] + boxes[:, 2:]) / 2 + (torch.rand(50, 2, generator=g) - 0.5)  # inside each box
    strides = torch.tensor([8.0, 16.0, 32.0])[torch.randint(0, 3, (50,), generator=g)]
    d = encode(pts, boxes, strides)
    assert (d > 0).all()
    torch.testing.assert_close(decode(pts, d, strides), boxes)


def test_box_iou_known_values():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1.0, 50 / 150, 0.0]]))


@pytest.mark.parametrize("seed", range(5))
def test_nms_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    boxes, scores = _boxes(60, g, 60.0), torch.rand(60, generator=g)
    for thr in (0.3, 0.5, 0.7):
        assert nms(boxes, scores, thr).tolist() == _nms_reference(boxes, scores, thr)


def test_batched_nms_is_per_class():
    g = torch.Generator().manual_seed(1)
    boxes, scores = _boxes(40, g, 50.0), torch.rand(40, generator=g)
    labels = torch.randint(0, 3, (40,), generator=g)
    kept = set(batched_nms(boxes, scores, labels, 0.5).tolist())
    expect = set()
    for c in range(3):
        idx = (labels == c).nonzero().squeeze(1)
        expect |= {int(idx[k]) for k in _nms_reference(boxes[idx], scores[idx], 0.5)}
    assert kept == expect


def test_postprocess_thresholds_and_validates():
    out = torch.zeros(1, 3, 4 + 2)
    out[0, :, :4] = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [40, 40, 50, 50.0]])
    out[0, :, 4] = torch.tensor([0.9, 0.8, 0.1])
    out[0, 2, 5] = 0.7  # the third box is class 1
    (b, s, lab), = postprocess(out, score_thresh=0.3, iou_thresh=0.5)
    assert lab.tolist() == [0, 1] and s.tolist() == pytest.approx([0.9, 0.7])
    with pytest.raises(ValueError, match="N×A×"):
        postprocess(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="score_thresh"):
        postprocess(out, score_thresh=2.0)


def _tiny() -> Detector:
    torch.manual_seed(0)
    return randomize_bn(Detector(get_detector_cfg("csp_det_tiny")))


def _random_level(model: Detector, seed: int) -> Level:
    return sample_det_level(model, random.Random(seed))


@pytest.mark.parametrize("seed", range(4))
def test_elastic_forward_equals_exported_level(seed):
    model = _tiny()
    lv = _random_level(model, seed)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        sliced = decode_maps(model.raw(x, lv), model.cfg.strides)  # eval-mode slicing: shared BN stats
        static = model.export(lv)(x)
    torch.testing.assert_close(static, sliced, rtol=1e-4, atol=1e-4)
    a = sum(h * w for h, w in [(32 // s, 32 // s) for s in model.cfg.strides])
    assert static.shape == (2, a, 4 + model.cfg.num_classes)
    assert ((static[..., 4:] >= 0) & (static[..., 4:] <= 1)).all()


def test_calibrated_level_uses_its_own_bn_statistics():
    model = _tiny()
    lv = model.cheapest_level()
    x = torch.randn(8, 3, 64, 64) * 2 + 1
    model.calibrate_bn([lv], [x])
    model.train()
    with torch.no_grad():
        batch_stats = decode_maps(model.raw(x, lv), model.cfg.strides)  # training BN = this batch's stats
    model.eval()
    with torch.no_grad():  # equal up to BN's unbiased running variance
        calibrated = (model(x, lv) - batch_stats).abs().mean()
        shared = (decode_maps(model.raw(x, lv), model.cfg.strides) - batch_stats).abs().mean()
    assert calibrated < 0.1 * shared


def test_default_ladder_is_ordered_by_macs_with_full_last():
    cfg = get_detector_cfg("csp_det")
    ladder = detector_ladder(cfg)
    macs = [r.macs for r in ladder.rungs]
    assert macs == sorted(macs) and len(set(macs)) == len(macs)
    assert ladder[-1] == Level([(cfg.split_ratio, d) for d in cfg.depths])
    assert ladder[0].width == cfg.widths[0]
    assert macs[0] / macs[-1] < 0.25


def test_level_validation_names_the_problem():
    model = _tiny()
    with pytest.raises(ValueError, match="stages"):
        model.resolve(Level([(0.5, 1)] * 3))
    with pytest.raises(ValueError, match="width"):
        model.resolve(Level([(0.5, 0)] * len(model.cfg.depths), 0.6))
    with pytest.raises(ValueError, match="N×3×H×W"):
        model.eval()(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="increasing"):
        DetCfg(name="x", backbone=get_detector_cfg("csp_det").backbone, ranges=(32.0, 16.0))


def test_checkpoint_round_trip(tmp_path):
    model = _tiny()
    model.meta.update(preprocess={"input_size": [32, 32], "in_chans": 3, "color": "rgb"}, class_names=["a", "b", "c"])
    model.calibrate_bn([model.cheapest_level()], [torch.randn(4, 3, 32, 32)])
    save_detector(model, tmp_path / "det")
    back = load_detector(tmp_path / "det")
    x = torch.randn(1, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        for lv in (model.cheapest_level(), model.full_level()):
            torch.testing.assert_close(back(x, lv), model(x, lv))
    assert back.meta["class_names"] == ["a", "b", "c"] and back.levels == model.levels
    (tmp_path / "det.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_detector(tmp_path / "det")


def test_assignment_respects_box_centre_and_level_range():
    cfg = get_detector_cfg("csp_det")
    pts, sts = anchor_points([(12, 12), (6, 6), (3, 3)], cfg.strides)
    bounds = torch.tensor([0.0, *cfg.ranges, float("inf")])
    lvl = torch.cat([torch.full((n,), i) for i, n in enumerate((144, 36, 9))])
    box = torch.tensor([[20.0, 20.0, 44.0, 40.0], [56.0, 50.0, 90.0, 90.0]])
    idx, ltrb = assign(pts, sts, bounds[lvl], bounds[lvl + 1], box, cfg.center_radius)
    pos = idx >= 0
    assert set(idx[pos].tolist()) == {0, 1}
    p, b = pts[pos], box[idx[pos]]
    assert ((p[:, 0] > b[:, 0]) & (p[:, 0] < b[:, 2]) & (p[:, 1] > b[:, 1]) & (p[:, 1] < b[:, 3])).all()
    torch.testing.assert_close(ltrb[pos], torch.cat([p - b[:, :2], b[:, 2:] - p], 1))
    d = ltrb[pos].max(1).values
    assert ((d > bounds[lvl[pos]]) & (d <= bounds[lvl[pos] + 1])).all()
    empty, _ = assign(pts, sts, bounds[lvl], bounds[lvl + 1], torch.zeros(0, 4), 1.5)
    assert (empty == -1).all()


def _tiny_batch(n: int, seed: int):
    """A fresh csp_det_tiny in train mode (torch seed 0) and n random 32-px images with 2 boxes each."""
    torch.manual_seed(0)
    cfg = get_detector_cfg("csp_det_tiny")
    model = Detector(cfg).train()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    boxes = [_boxes(2, g, 20.0).clamp(max=32) for _ in range(n)]
    labels = [torch.randint(0, 3, (2,), generator=g) for _ in range(n)]
    return cfg, model, x, boxes, labels


def test_short_training_lowers_the_loss():
    cfg, model, x, boxes, labels = _tiny_batch(8, 0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        total = 0.0
        for lv in (model.full_level(), model.cheapest_level()):
            loss, _ = fcos_loss(model.raw(x, lv), boxes, labels, cfg)
            loss.backward()
            total += float(loss)
        opt.step()
        losses.append(total)
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5])


def test_postprocess_multi_label_keeps_a_second_class_for_the_same_box():
    out = torch.zeros(1, 2, 4 + 3)
    out[0, :, :4] = torch.tensor([[0, 0, 10, 10], [30, 30, 40, 40.0]])
    out[0, 0, 4:] = torch.tensor([0.8, 0.5, 0.1])  # one box, two plausible classes
    (_, s1, l1), = postprocess(out, score_thresh=0.3)
    (b2, s2, l2), = postprocess(out, score_thresh=0.3, multi_label=True)
    assert l1.tolist() == [0] and s1.tolist() == pytest.approx([0.8])
    assert l2.tolist() == [0, 1] and s2.tolist() == pytest.approx([0.8, 0.5])
    torch.testing.assert_close(b2[0], b2[1])


def test_cls_ce_adds_a_softmax_cross_entropy_over_the_positives_class_logits():
    cfg, model, x, boxes, labels = _tiny_batch(4, 1)
    maps = model.raw(x, model.full_level())
    base, parts0 = fcos_loss(maps, boxes, labels, cfg)
    assert "ce" not in parts0  # off by default: the loss is what it was
    with_ce, parts = fcos_loss(maps, boxes, labels, cfg, cls_ce=0.5)
    # by hand: the positives (assign), their class logits, their box's label
    o = flatten_maps(maps)
    pts, sts = anchor_points([tuple(m.shape[-2:]) for m in maps], cfg.strides)
    bounds = [0.0, *cfg.ranges, float("inf")]
    lvl = torch.cat([torch.full((m.shape[-2] * m.shape[-1],), i) for i, m in enumerate(maps)])
    logits, targets = [], []
    for i, (b, lb) in enumerate(zip(boxes, labels)):
        idx, _ = assign(pts, sts, torch.tensor(bounds[:-1])[lvl], torch.tensor(bounds[1:])[lvl], b, cfg.center_radius)
        p = (idx >= 0).nonzero().squeeze(1)
        logits.append(o[i, p, 5:])
        targets.append(lb[idx[p]])
    logits, targets = torch.cat(logits), torch.cat(targets)
    assert len(targets) > 0
    ce = torch.nn.functional.cross_entropy(logits, targets, reduction="sum") / len(targets)
    assert parts["ce"] == pytest.approx(float(ce), rel=1e-5)
    assert float(with_ce) == pytest.approx(float(base) + 0.5 * float(ce), rel=1e-5)


def test_distill_loss_is_zero_at_the_teacher_and_pulls_scores_toward_it():
    torch.manual_seed(0)
    cfg = get_detector_cfg("csp_det_tiny")
    model = Detector(cfg).train()
    x = torch.randn(2, 3, 32, 32)
    teacher = [m.detach() for m in model.raw(x, model.full_level())]
    assert float(distill_loss([t.clone() for t in teacher], teacher, 3.0)) == pytest.approx(0.0, abs=1e-9)
    student = [(t + torch.randn_like(t)).requires_grad_() for t in teacher]
    loss = distill_loss(student, teacher, 3.0)
    assert loss.item() > 0
    loss.backward()
    gap = sum(float((torch.sigmoid(s[:, 4:]) - torch.sigmoid(t[:, 4:])).abs().sum()) for s, t in zip(student, teacher))
    stepped = [(s - 5.0 * s.grad).detach() for s in student]
    after = sum(float((torch.sigmoid(s[:, 4:]) - torch.sigmoid(t[:, 4:])).abs().sum()) for s, t in zip(stepped, teacher))
    assert after < gap  # one descent step moves centre-ness and class scores toward the teacher's
    assert all(float(s.grad[:, :4].abs().sum()) == 0 for s in student)  # box distances are left to the ground truth


def test_kd_step_adds_the_full_levels_detached_maps_as_targets_of_the_lower_levels():
    from adaptive_csp.train.detect import _step

    cfg, model, x, boxes, labels = _tiny_batch(4, 1)
    levels = [model.full_level(), model.cheapest_level()]
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the step leaves the weights, keeps the gradients
    agg: dict = {}
    _step(model, opt, x, boxes, labels, levels, agg, kd=0.7)
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert "kd" in agg
    # by hand: each level's ground-truth loss, plus kd × distillation of the cheapest toward the full level's
    # detached maps (no gradient reaches the full level through its role as teacher)
    model.zero_grad(set_to_none=True)
    full = model.raw(x, levels[0])
    l_full, parts = fcos_loss(full, boxes, labels, cfg)
    cheap = model.raw(x, levels[1])
    l_cheap, _ = fcos_loss(cheap, boxes, labels, cfg)
    kd = distill_loss(cheap, [m.detach() for m in full], parts["pos"] * len(boxes))
    assert agg["kd"] == pytest.approx(float(kd), rel=1e-5)
    (l_full + l_cheap + 0.7 * kd).backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)  # _step clips too
    want = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert float(norm) > 0 and got.keys() == want.keys()
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-4, atol=1e-6)
