"""The one training loop (adaptive_csp.train.loop): its schedule, its history key, and resuming, also from
files written before both trainers shared it."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch

from adaptive_csp.train.loop import HISTORY_KEY, train_record, warmup_cosine


def _classifier_rate(step: int, lr: float, warm: int, total: int) -> float:
    """The classifier trainer's own schedule, as it was written before the shared loop."""
    if step < warm:
        return lr * (step + 1) / warm
    return 0.5 * lr * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def _detector_rate(step: int, lr: float, warmup: int, total: int) -> float:
    """The detector trainer's own schedule, as it was written before the shared loop."""
    return lr * min(1.0, (step + 1) / max(1, warmup)) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, total))))


@pytest.mark.parametrize("lr,warm,total", [(0.1, 40, 400), (0.005, 0, 37), (2e-3, 300, 1200), (0.05, 7, 7)])
def test_warmup_cosine_gives_each_trainers_rates_to_the_bit(lr, warm, total):
    for step in range(total + 3):
        assert warmup_cosine(step, lr, warm, total, start=warm) == _classifier_rate(step, lr, warm, total)
        assert warmup_cosine(step, lr, warm, total) == _detector_rate(step, lr, warm, total)


def test_train_record_reads_the_key_and_the_older_one():
    assert HISTORY_KEY == "train"
    assert train_record({"train": {"history": [1]}}) == {"history": [1]}
    assert train_record({"training": {"history": [2]}}) == {"history": [2]}  # detectors written before
    assert train_record({"train": {"history": [1]}, "training": {"history": [2]}}) == {"history": [1]}
    assert train_record({}) == {}


@pytest.mark.parametrize("name,kind", [("csp_small_fmnist", "model"), ("csp_wide_fmnist", "model"),
                                       ("csp_det_scenes", "detector"), ("csp_det_wide_scenes", "detector")])
def test_shipped_assets_load_and_their_training_record_is_read(name, kind):
    if kind == "model":
        from adaptive_csp.models.pretrained import pretrained

        model = pretrained(name)
    else:
        from adaptive_csp.detect.checkpoint import pretrained_detector

        model = pretrained_detector(name)
    rec = train_record(model.meta)
    assert rec["history"] and all("epoch" in h for h in rec["history"])


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_classifier_resumes_a_checkpoint_without_a_step_count(tmp_path):
    """A classifier checkpoint written before the shared loop has no "step": resuming it continues the
    schedule at the epoch's first step, and the run ends with the weights of one uninterrupted run."""
    from adaptive_csp.data.fashion_mnist import as_imageset, load_sample
    from adaptive_csp.train.sandwich import TrainCfg, train

    data = as_imageset(load_sample())
    tr, va = data.take(slice(0, 64)), data.take(slice(64, 96))
    cfg = TrainCfg(epochs=2, full_only_epochs=1, batch_size=32, threads=1, calib_images=32, warmup_epochs=0.5,
                   n_random=1)
    one = _weights(train(cfg, tmp_path / "one", progress=False, dataset=tr, val_dataset=va))

    def stop_in_epoch_2(step, model):
        if step == 3:  # the first step of epoch 2: epoch 1's checkpoint is on disk
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "two", progress=False, dataset=tr, val_dataset=va, on_step=stop_in_epoch_2)
    last = tmp_path / "two" / "last.json"
    meta = json.loads(last.read_text())
    assert meta["epoch"] == 1
    meta.pop("step")  # as the classifier wrote it before
    last.write_text(json.dumps(meta))
    model = train(cfg, tmp_path / "two", progress=False, dataset=tr, val_dataset=va)
    assert [h["epoch"] for h in model.meta[HISTORY_KEY]["history"]] == [1, 2]
    assert _same(_weights(model), one)


def test_classifier_stopped_by_sigterm_inside_an_epoch_resumes_to_the_weights_of_one_run(tmp_path):
    """SIGTERM in the middle of a sandwich epoch: a checkpoint with the epoch's order and offset, no model
    file, then a resume that ends with exactly the weights (and step count) of an uninterrupted run."""
    from adaptive_csp.data.fashion_mnist import as_imageset, load_sample
    from adaptive_csp.train.sandwich import TrainCfg, train

    data = as_imageset(load_sample())
    tr, va = data.take(slice(0, 64)), data.take(slice(64, 96))
    cfg = TrainCfg(epochs=2, full_only_epochs=1, batch_size=16, threads=1, calib_images=32, warmup_epochs=0.5,
                   n_random=1)  # 4 steps an epoch; epoch 2 draws random levels (the rng must be restored)
    one = train(cfg, tmp_path / "one", progress=False, dataset=tr, val_dataset=va)

    def sigterm_at_6(step, model):
        if step == 6:  # the second step of epoch 2
            os.kill(os.getpid(), signal.SIGTERM)

    stopped = train(cfg, tmp_path / "two", progress=False, dataset=tr, val_dataset=va, on_step=sigterm_at_6)
    assert stopped.meta[HISTORY_KEY]["stopped_at_step"] == 6
    meta = json.loads((tmp_path / "two" / "last.json").read_text())
    assert meta["epoch"] == 1 and meta["step"] == 6 and meta["offset"] == 32 and len(meta["perm"]) == 64
    assert signal.getsignal(signal.SIGTERM) is not None  # the handler was put back
    torch.manual_seed(1)
    model = train(cfg, tmp_path / "two", progress=False, dataset=tr, val_dataset=va)
    assert "stopped_at_step" not in model.meta[HISTORY_KEY]
    assert [h["epoch"] for h in model.meta[HISTORY_KEY]["history"]] == [1, 2]
    assert _same(_weights(model), _weights(one))
    assert json.loads((tmp_path / "two" / "last.json").read_text())["step"] == 8


def test_an_api_run_stopped_by_sigterm_writes_no_model(tmp_path, monkeypatch):
    import adaptive_csp.train.sandwich as sw
    from adaptive_csp.data.fashion_mnist import as_imageset, load_sample
    from adaptive_csp.train.api import train

    inner = sw.train

    def stop_at_2(*a, **k):
        return inner(*a, **k, on_step=lambda step, m: step == 2 and os.kill(os.getpid(), signal.SIGTERM))

    monkeypatch.setattr(sw, "train", stop_at_2)
    data = as_imageset(load_sample()).take(slice(0, 64))
    train(out_dir=tmp_path, dataset=data, epochs=1, batch_size=16, threads=1, calib_images=16)
    assert (tmp_path / "last.safetensors").exists() and not (tmp_path / "model.safetensors").exists()


def test_detector_stopped_by_sigterm_resumes_to_the_weights_of_one_run(tmp_path, monkeypatch):
    """SIGTERM inside an epoch: a checkpoint with the epoch's order and offset, then a resume that ends
    with exactly the weights of an uninterrupted run."""
    pytest.importorskip("pycocotools")
    from test_detect_train import _scenes

    import adaptive_csp.train.detect as det

    cfg = det.DetTrainCfg(model="csp_det_tiny", epochs=2, batch_size=16, n_random=1, warmup_steps=2,
                          calib_images=16, threads=1, device="cpu")
    data = (_scenes(48, 0), _scenes(16, 1))  # 3 steps an epoch
    torch.manual_seed(0)
    one = _weights(det.train_detector(cfg, tmp_path / "one", progress=False, data=data))

    step = det._step
    seen = []

    def step_then_sigterm(*a, **k):
        step(*a, **k)
        seen.append(1)
        if len(seen) == 4:  # the first step of epoch 2
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(det, "_step", step_then_sigterm)
    torch.manual_seed(0)
    det.train_detector(cfg, tmp_path / "two", progress=False, data=data)
    meta = json.loads((tmp_path / "two" / "last.json").read_text())
    assert meta["epoch"] == 1 and meta["step"] == 4 and meta["offset"] == 16 and len(meta["perm"]) == 48
    assert signal.getsignal(signal.SIGTERM) is not None  # the handler was put back
    monkeypatch.setattr(det, "_step", step)
    torch.manual_seed(1)  # a different init: the weights must come from the checkpoint
    model = det.train_detector(cfg, tmp_path / "two", progress=False, data=data)
    assert _same(_weights(model), one)
    saved = json.loads((tmp_path / "two" / "model.json").read_text())
    assert "training" not in saved and [h["epoch"] for h in saved[HISTORY_KEY]["history"]] == [1, 2]
    assert [r["start_step"] for r in saved[HISTORY_KEY]["runs"]] == [0, 4]
