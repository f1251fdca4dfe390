import pytest

from adaptive_csp.data import fashion_mnist as fm

pytestmark = pytest.mark.skipif(not (fm.DEFAULT_DIR / "train-images-idx3-ubyte.gz").exists(),
                                reason="Debian package dataset-fashion-mnist not installed")


def test_two_epoch_sandwich_run_end_to_end_and_resume(tmp_path):
    from adaptive_csp.train.sandwich import TrainCfg, train

    cfg = TrainCfg(epochs=2, full_only_epochs=1, subset=512, batch_size=64, threads=1, calib_images=256)
    model = train(cfg, tmp_path, progress=False)
    hist = model.meta["train"]["history"]
    assert [h["epoch"] for h in hist] == [1, 2]
    assert hist[1]["loss"] < hist[0]["loss"]  # the second epoch learned something
    assert (tmp_path / "last.safetensors").exists() and (tmp_path / "last.json").exists()
    # resume: a third epoch continues from the checkpoint instead of starting over
    model3 = train(cfg.model_copy(update={"epochs": 3}), tmp_path, progress=False)
    assert [h["epoch"] for h in model3.meta["train"]["history"]] == [1, 2, 3]


def test_train_cli_static_level(tmp_path):
    from adaptive_csp.cli import main

    rc = main(["train", "--out", str(tmp_path), "--epochs", "1", "--subset", "128", "--threads", "1",
               "--static-level", "[[0.5,1],[0.5,1],[0.5,1]]"])
    assert rc == 0
    from adaptive_csp.models.pretrained import load_model

    m = load_model(tmp_path / "model.safetensors")
    assert m.meta["class_names"][9] == "Ankle boot"
