"""Transfer learning: ``train --init`` starts from the shipped grey model on RGB data with other classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adaptive_csp.data.images import ImageSet
from adaptive_csp.models.pretrained import pretrained
from adaptive_csp.models.transfer import adapt_model, adapt_norm, adapt_stem_weight

SAMPLE = np.load(__import__("adaptive_csp.data.fashion_mnist", fromlist=["SAMPLE_PATH"]).SAMPLE_PATH)


def _grey(n: int, invert: bool = False) -> torch.Tensor:
    """n×1×28×28 uint8 Fashion-MNIST sample images (inverted: dark items on light ground, other BN stats)."""
    x = torch.from_numpy(SAMPLE["images"][:n].copy())[:, None]
    return 255 - x if invert else x


def _rgb_set(n: int = 64, classes: int = 4) -> ImageSet:
    """Grey images stored as R = G = B, with 4 new classes (labels from the sample's, folded)."""
    labels = torch.from_numpy(SAMPLE["labels"][:n].astype(np.int64)) % classes
    return ImageSet(_grey(n, invert=True).repeat(1, 3, 1, 1), labels, tuple(f"c{k}" for k in range(classes)))


def _src_norm(src, x_uint8: torch.Tensor) -> torch.Tensor:
    pre = src.meta["preprocess"]
    m = torch.tensor(pre["mean"]).view(1, -1, 1, 1)
    s = torch.tensor(pre["std"]).view(1, -1, 1, 1)
    return (x_uint8.float() / 255 - m) / s


def test_adapted_model_gives_the_source_features_on_replicated_grey():
    src = pretrained()
    assert src.cfg.in_chans == 1
    net = adapt_model(src, num_classes=4, in_chans=3, input_size=(40, 40))
    assert net.cfg.in_chans == 3 and net.head.out_features == 4 and net.cfg.input_size == (40, 40)
    x = _src_norm(src, _grey(16))
    for lv in (src.levels[0], src.levels[len(src.levels) // 2], src.full_level()):  # eval, folded BN per level
        want = src.features(x, lv)[-1]
        got = net.features(x.repeat(1, 3, 1, 1), lv)[-1]
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # fully convolutional + global pooling: the user's own input size runs
    assert net(torch.zeros(2, 3, 64, 48)).shape == (2, 4)
    # the stem rules: grey -> RGB divides, RGB -> grey sums, same count copies, anything else is refused
    w = torch.randn(8, 1, 3, 3)
    torch.testing.assert_close(adapt_stem_weight(w, 3).sum(1, keepdim=True), w)
    torch.testing.assert_close(adapt_stem_weight(adapt_stem_weight(w, 3), 1), w)
    with pytest.raises(ValueError, match="3-channel stem to 2 channels"):
        adapt_stem_weight(torch.randn(8, 3, 3, 3), 2)
    assert adapt_norm([0.3], [0.4], 3) == ((0.3,) * 3, (0.4,) * 3)
    with pytest.raises(ValueError, match="num_classes"):
        adapt_model(src, num_classes=1)


def test_finetune_first_forward_reproduces_source_features_with_bn_reestimated(tmp_path, monkeypatch):
    import adaptive_csp.models.transfer as tr
    from adaptive_csp.train.sandwich import TrainCfg, train

    seen: dict = {}
    real = tr.adapt_model

    def spying_adapt(*a, **k):  # record the fine-tune's first forward (input, state, pre-head features)
        net = real(*a, **k)

        def pre(mod, args):
            if "x" not in seen:
                seen.update(x=args[0].detach().clone(), level=args[1], training=mod.training,
                            stem_w=mod.stem.conv.weight.detach().clone(),
                            stem_mean=mod.stem.bn.running_mean.clone(), bn_levels=set(mod.bn_stats))

        def post(mod, args, out):
            if "x" in seen and "feats" not in seen:  # inside the first forward (not BN re-estimation)
                seen["feats"] = out.detach().clone()

        net.register_forward_pre_hook(pre)
        net.stages[-1].register_forward_hook(post)
        return net

    monkeypatch.setattr(tr, "adapt_model", spying_adapt)
    data = _rgb_set()
    cfg = TrainCfg(init="pretrained", epochs=1, batch_size=32, threads=1, calib_images=64, camera_aug=False,
                   val_fraction=0.25)
    model = train(cfg, tmp_path, progress=False, dataset=data)

    src = pretrained()
    x = seen["x"]
    assert seen["training"] and seen["level"] == src.full_level()
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])  # replicated grey input
    src.train()
    want = src._features_sliced(x[:, :1].contiguous(), src.full_level())[-1]
    torch.testing.assert_close(seen["feats"], want, atol=1e-3, rtol=1e-3)  # float sums, train-mode BN
    # train-mode BN hides a scale on the stem, so its conv is checked before BN: R=G=B through the adapted
    # kernel equals grey through the source's (the re-estimated running stats then describe the same values)
    torch.testing.assert_close(F.conv2d(x, seen["stem_w"], padding=1),
                               F.conv2d(x[:, :1], src.stem.conv.weight, padding=1), atol=1e-4, rtol=1e-4)
    # BN re-estimated on the new (inverted) images before the first step: the stem's running mean is the
    # mean of its conv outputs over the calibration images, not the source's Fashion-MNIST statistics
    assert model.meta["train"]["init"]["bn_images"] == 48  # 64 images, a quarter held out for validation
    from adaptive_csp.data.images import holdout

    _, tr_set = holdout(data, 0.25, 0)
    calib = _src_norm(src, tr_set.images[:, :1]).repeat(1, 3, 1, 1)
    conv_mean = F.conv2d(calib, seen["stem_w"], padding=1).mean((0, 2, 3))
    torch.testing.assert_close(seen["stem_mean"], conv_mean, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(seen["stem_mean"], src.stem.bn.running_mean, atol=1e-2)
    full, cheap = model.full_level(), model.cheapest_level()
    assert seen["bn_levels"] == {full.key, cheap.key}  # the source's per-level statistics were dropped
    # the head has the new classes; the run says what it started from
    assert model.head.out_features == 4 and model.meta["class_names"] == ["c0", "c1", "c2", "c3"]
    init = model.meta["train"]["init"]
    assert init["from"] == "pretrained" and init["model"] == src.cfg.name and len(init["sha256"]) == 64
    assert model.meta["train"]["runs"][0]["init"] == "pretrained"
    assert model.meta["preprocess"]["mean"] == src.meta["preprocess"]["mean"] * 3  # the source's, replicated
    assert model.meta["train"]["cfg"]["lr"] == 0.005 and model.meta["train"]["cfg"]["full_only_epochs"] == 0


def _probe_setup() -> tuple[ImageSet, torch.nn.Module]:
    """96 RGB images in the source's normalisation and the adapted model, BN re-estimated on them."""
    from adaptive_csp.train.transfer import reestimate_bn

    src = pretrained()
    data = _rgb_set(96)
    data = ImageSet(data.images, data.labels, data.class_names, tuple(src.meta["preprocess"]["mean"]) * 3,
                    tuple(src.meta["preprocess"]["std"]) * 3)
    net = adapt_model(src, 4, 3)
    reestimate_bn(net, [data.normalized()])
    return data, net


def test_linear_probe_head_fits_the_features():
    from adaptive_csp.train.transfer import probe_head

    data, net = _probe_setup()
    acc = probe_head(net, data)
    with torch.no_grad():
        got = float((net(data.normalized(), net.full_level()).argmax(1) == data.labels).float().mean())
    assert got == pytest.approx(acc)  # the probe's weights are the head's
    assert acc > 0.5  # 4 classes: a fitted probe on trained features is far above chance on its own data


def test_probe_fits_one_head_for_the_full_and_the_cheapest_level():
    """The head is shared by every width (a narrow level reads its first columns): probed on the full
    level's features alone it leaves the cheapest level far off; probed on both, the cheapest level's loss
    on the probe's own images drops and the full level stays fitted."""
    from adaptive_csp.train.transfer import _pooled, probe_head

    data, net = _probe_setup()
    full, cheap = net.full_level(), net.cheapest_level()
    assert full.width != cheap.width  # the shipped model is elastic in width

    def loss(level) -> float:
        with torch.no_grad():
            return float(F.cross_entropy(net(data.normalized(), level), data.labels))
    feats = [_pooled(net, data), _pooled(net, data, level=cheap)]
    assert feats[1].shape[1] < feats[0].shape[1]
    probe_head(net, data, feats=feats[0])
    single = loss(full), loss(cheap)
    probe_head(net, data, feats=feats)
    joint = loss(full), loss(cheap)
    assert joint[1] < 0.5 * single[1]  # measured: 1.68 -> 0.33
    assert joint[0] < 0.25 * np.log(4)  # the full level stays fitted (0.09 -> 0.17; chance: 1.39)


def test_resolve_cfg_plans_from_the_data_size():
    from adaptive_csp.train.sandwich import TrainCfg, resolve_cfg

    small = resolve_cfg(TrainCfg(), 540)
    assert small.batch_size == 64 and small.epochs == -(-500 // 9)  # 9 steps an epoch → ≥ 500 steps
    big = resolve_cfg(TrainCfg(), 54000)
    assert big.batch_size == 128 and big.epochs == 30 and big.lr == 0.1 and big.full_only_epochs == 3
    assert resolve_cfg(TrainCfg(), 20).batch_size == 16
    ft = resolve_cfg(TrainCfg(init="pretrained"), 540)
    assert ft.lr == 0.005 and ft.full_only_epochs == 0 and ft.warmup_epochs == 0.25
    assert big.warmup_epochs == 1.0
    kept = resolve_cfg(TrainCfg(epochs=3, batch_size=8, lr=0.5, full_only_epochs=1), 540)
    assert (kept.epochs, kept.batch_size, kept.lr, kept.full_only_epochs) == (3, 8, 0.5, 1)


def test_train_cli_and_api_with_init_on_a_folder(tmp_path):
    cv2 = pytest.importorskip("cv2")
    import adaptive_csp as ac
    from adaptive_csp.cli import main
    from adaptive_csp.models.pretrained import load_model

    rng = np.random.default_rng(0)
    for k in range(3):
        (tmp_path / "data" / f"k{k}").mkdir(parents=True)
        for i in range(6):
            img = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
            cv2.imwrite(str(tmp_path / "data" / f"k{k}" / f"{i}.png"), img)
    rc = main(["train", "--data", str(tmp_path / "data"), "--init", "pretrained", "--out", str(tmp_path / "run"),
               "--epochs", "1", "--threads", "1", "--quiet", "--val-fraction", "0.2"])
    assert rc == 0
    m = load_model(tmp_path / "run" / "model")
    assert m.cfg.in_chans == 3 and m.cfg.num_classes == 3 and m.cfg.input_size == (20, 24)
    assert m.meta["train"]["init"]["from"] == "pretrained" and "--init pretrained" in m.meta["command"]
    # pretrained() also takes the path of a model you trained (a Path, or text with a "/")
    assert ac.pretrained(tmp_path / "run" / "model").cfg.in_chans == 3
    assert ac.pretrained(str(tmp_path / "run" / "model.safetensors")).head.out_features == 3
    with pytest.raises(ValueError, match="no shipped model 'nope'"):
        ac.pretrained("nope")
    # the same through the package: a folder path, keyword fields, the model saved in out_dir
    m2 = ac.train(out_dir=tmp_path / "api", dataset=tmp_path / "data", init="pretrained", epochs=1, threads=1,
                  progress=False, val_fraction=0.2)
    assert (tmp_path / "api" / "model.safetensors").exists() and m2.head.out_features == 3
    with pytest.raises(ValueError, match="conflicts with --init"):
        ac.train(out_dir=tmp_path / "bad", dataset=tmp_path / "data", init="pretrained", model="csp_small",
                 epochs=1, progress=False)
    with pytest.raises(ValueError, match="no checkpoint at"):
        ac.train(out_dir=tmp_path / "bad2", dataset=tmp_path / "data", init="nowhere/model", epochs=1,
                 progress=False)
