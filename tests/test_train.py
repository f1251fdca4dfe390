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
    model3 = train(cfg.model_copy(update={"epochs": 3}), tmp_path, progress=False, command="resume it")
    assert [h["epoch"] for h in model3.meta["train"]["history"]] == [1, 2, 3]
    # every invocation is recorded with where it started, not only the last one
    runs = model3.meta["train"]["runs"]
    assert [(r["command"], r["start_epoch"], r["device"]) for r in runs] == [(None, 0, "cpu"), ("resume it", 2, "cpu")]


def test_train_cli_static_level(tmp_path):
    from adaptive_csp.cli import main

    rc = main(["train", "--out", str(tmp_path), "--epochs", "1", "--subset", "128", "--threads", "1",
               "--static-level", "[[0.5,1],[0.5,1],[0.5,1]]"])
    assert rc == 0
    from adaptive_csp.models.pretrained import load_model

    m = load_model(tmp_path / "model.safetensors")
    assert m.meta["class_names"][9] == "Ankle boot"
    # the recorded command can be pasted into a shell: its JSON argument keeps its quotes
    assert "--static-level '[[0.5,1],[0.5,1],[0.5,1]]'" in m.meta["command"]
    assert m.meta["train"]["runs"][0]["command"] == m.meta["command"]


def test_plan_epochs_fits_the_budget():
    from adaptive_csp.train.sandwich import TrainCfg, plan_epochs

    cfg = TrainCfg(epochs=50, full_only_epochs=1, n_random=2, budget_minutes=10)
    assert plan_epochs(cfg.model_copy(update={"budget_minutes": None}), [{"seconds": 30}]) == 50
    assert plan_epochs(cfg, []) == 50
    # after the full-only epoch (30 s), a sandwich epoch is costed at 4 × 30 s: 570 s left → 4 more
    assert plan_epochs(cfg, [{"seconds": 30}]) == 1 + 4
    # from then on at the last epoch's time: 600 − 30 − 120 = 450 s at 120 s each → 3 more
    assert plan_epochs(cfg, [{"seconds": 30}, {"seconds": 120}]) == 2 + 3
    assert plan_epochs(cfg, [{"seconds": 30}, {"seconds": 1}]) == 50  # never beyond cfg.epochs
    assert plan_epochs(cfg, [{"seconds": 700}]) == 1  # over budget: stop, never below what is done


def test_the_budget_is_replanned_in_steps_during_an_epoch():
    from adaptive_csp.train.sandwich import TrainCfg, _budget_steps

    cfg = TrainCfg(budget_minutes=1, epochs=50, full_only_epochs=0)
    # 1 of 10 steps took 10 s, validation guessed at 0.2 × 100 s: 60 − 10 − 20 = 30 s → this epoch ends at step 4
    assert _budget_steps(cfg, [], 0.0, 10.0, 1, 10, 0) == (1, 4)
    assert _budget_steps(cfg, [], 15.0, 10.0, 1, 10, 0) == (1, 2)  # time spent before (a transfer's probe)
    assert _budget_steps(cfg, [], 0.0, 70.0, 2, 10, 0) == (1, 2)  # over budget: stop after the steps done
    # 1 s steps, validation guessed at 2 s: this epoch's rest costs 9 + 2 s, then 12 s an epoch; what is
    # left after the whole epochs starts a last, partial epoch only when it holds a quarter epoch (2 steps)
    def at(seconds, hist=()):
        return _budget_steps(cfg.model_copy(update={"budget_minutes": seconds / 60}), list(hist), 0.0, 1.0, 1, 10, 0)
    assert at(60) == (5, 50)  # 59 − 11 = 48 = 4 × 12
    assert at(65) == (6, 53)  # 64 − 11 − 48 = 5 s: 2 s validation + 3 steps
    assert at(63) == (5, 50)  # 3 s: 1 step, under a quarter epoch
    # an epoch already spent 15 s, 5 s of it validating: 60 − 15 − 1 − (9 + 5) = 30 s = 2 epochs of 15 s
    assert at(60, [{"seconds": 15, "train_seconds": 10}]) == (3, 30)
    assert _budget_steps(cfg.model_copy(update={"budget_minutes": 100}), [], 0.0, 1.0, 1, 10, 0) == (50, 500)
    # a full-only epoch plans the sandwich epochs after it at (2 + n_random) × its step time
    fo = TrainCfg(budget_minutes=2, epochs=50, full_only_epochs=1, n_random=2)
    assert _budget_steps(fo, [], 0.0, 1.0, 1, 10, 0)[0] < _budget_steps(cfg.model_copy(update={"budget_minutes": 2}),
                                                                       [], 0.0, 1.0, 1, 10, 0)[0]


def test_budget_ends_the_run_early_and_anneals_the_rate(tmp_path):
    import json

    from adaptive_csp.train.sandwich import TrainCfg, train

    # 0.02 min = 1.2 s: after the first epoch the plan shrinks to what is done, so the run stops
    cfg = TrainCfg(epochs=5, full_only_epochs=1, subset=256, batch_size=64, threads=1, calib_images=128,
                   budget_minutes=0.02)
    model = train(cfg, tmp_path, progress=False)
    hist = model.meta["train"]["history"]
    assert len(hist) < 5 and hist[-1]["planned_epochs"] == len(hist)
    assert all(h["seconds"] > 0 for h in hist)
    # a generous budget trains every epoch and the learning rate ends near zero (cosine over the plan)
    cfg2 = cfg.model_copy(update={"epochs": 2, "budget_minutes": 60, "batch_size": 16, "warmup_epochs": 0})
    model2 = train(cfg2, tmp_path / "b", progress=False)
    assert [h["planned_epochs"] for h in model2.meta["train"]["history"]] == [2, 2]
    lr = json.loads((tmp_path / "b" / "last.json").read_text())["param_groups"][0]["lr"]
    assert lr < 0.02 * model2.meta["train"]["cfg"]["lr"]  # the resolved rate (cfg2.lr is None: planned)
