"""No hidden global state: library calls leave the caller's device, random generators, warnings
filters and environment alone, and reused objects start each fit afresh."""
import random
import subprocess
import sys

import numpy as np
import paddle
import pytest

from course import (MNIST, BestCheckpoint, Callback, Config, EarlyStopping, fit, make_loader, make_optimizer, set_seed,
                    train_run)

TINY = Config(train_subset=256, eval_subset=200, num_epochs=1, visualdl=False, progress=False, log_every=2,
              seed=7, device="cpu")


def _draws():
    return paddle.rand([4]).numpy().tolist(), np.random.rand(4).tolist(), [random.random() for _ in range(4)]


def test_train_run_leaves_device_and_global_random_state_unchanged(tmp_path):
    paddle.set_device("cpu")
    set_seed(123)
    expected = _draws()           # what the generators give next, from this state ...
    set_seed(123)
    device_before = paddle.get_device()
    train_run(TINY.replace(out_dir=str(tmp_path)))   # reseeds with 7 and sets the device inside
    assert paddle.get_device() == device_before
    assert _draws() == expected   # ... is still what they give after a train_run


def test_train_run_is_reproducible_whatever_the_caller_did_before(tmp_path):
    set_seed(1)
    first = train_run(TINY.replace(out_dir=str(tmp_path), run_name="a"))
    np.random.rand(1000), paddle.rand([1000]), random.random()   # the caller draws in between
    second = train_run(TINY.replace(out_dir=str(tmp_path), run_name="b"))
    assert first["epochs"][0]["train_loss"] == second["epochs"][0]["train_loss"]
    assert first["test"] == second["test"]


def test_import_course_installs_no_warnings_filter():
    # Paddle, NumPy and matplotlib add filters of their own when imported: load them first
    # (zlib before Paddle: on Paddle 2.6 zlib second would crash, course.compat).
    code = ("import zlib, warnings, paddle, matplotlib.pyplot, visualdl, tqdm.auto; before = list(warnings.filters); "
            "import course, course.train, course.run, course.sweep; "
            "assert warnings.filters == before, 'import course changed warnings.filters'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_first_public_name_loads_paddle_without_its_ccache_warning():
    # A notebook's first `from course import ...` must not open with Paddle's "No ccache found"
    # warning, and the filter that hides it must not outlive that import.
    code = ("import warnings; before = list(warnings.filters); from course import MNIST; "
            "assert warnings.filters == before, 'the import left a warnings filter behind'")
    done = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ccache" not in done.stderr


def test_a_peek_does_not_change_the_next_shuffle():
    loader = make_loader("train50k", 64, seed=3, subset=640)
    peeked = make_loader("train50k", 64, seed=3, subset=640)
    next(iter(peeked))             # 2.6.2 looks at one batch before training
    for _ in peeked():             # and a loop left early (break) counts no more than a peek
        break
    assert peeked.epoch == 0
    a, b = [y.numpy() for _, y in loader], [y.numpy() for _, y in peeked]
    assert all(np.array_equal(x, z) for x, z in zip(a, b))
    # A finished pass is an epoch: the lesson's own loop gets a new order each epoch.
    assert loader.epoch == peeked.epoch == 1
    again = [y.numpy() for _, y in loader]
    assert not all(np.array_equal(x, z) for x, z in zip(a, again))


def test_fit_sets_the_epoch_whatever_the_loader_saw_before():
    def first_labels(peeks):
        loader = make_loader("train50k", 64, seed=0, subset=256)
        for _ in range(peeks):
            next(iter(loader))
        seen = []

        class Spy(Callback):
            def before_batch(self, state):
                if state.batch_idx == 0:
                    seen.append(state.y.numpy().ravel().tolist())

        set_seed(0)
        model = MNIST()
        fit(model, loader, make_optimizer("sgd", 0.01, model.parameters()), 2, callbacks=[Spy()])
        return seen

    assert first_labels(0) == first_labels(3)


@pytest.mark.parametrize("make", [lambda p: EarlyStopping("val_acc", patience=1, restore_best=False),
                                  lambda p: BestCheckpoint(p / "best.pdckpt", monitor="val_acc")])
def test_a_reused_callback_forgets_the_last_fits_best(tmp_path, make):
    callback = make(tmp_path)
    train = make_loader("train50k", 64, seed=0, subset=256)
    val = make_loader("val", 200, subset=200)
    set_seed(0)
    model = MNIST()
    fit(model, train, make_optimizer("adam", 0.003, model.parameters()), 2, val_loader=val, callbacks=[callback])
    assert callback.monitor_.best > 0.3
    callback.monitor_.best = 2.0   # a best no run can beat: a reset must forget it
    set_seed(0)
    fresh = MNIST()
    fit(fresh, train, make_optimizer("adam", 0.003, fresh.parameters()), 1, val_loader=val, callbacks=[callback])
    assert callback.monitor_.best < 1.0 and callback.monitor_.best_epoch == 1
    if isinstance(callback, EarlyStopping):
        assert callback.wait_ == 0


def test_check_content_leaves_numpy_global_random_state_alone(capsys):
    model = MNIST()
    np.random.seed(5)
    expected = np.random.rand(3)
    np.random.seed(5)
    model(paddle.zeros([2, 1, 28, 28]), check_content=True)
    assert "output channel" in capsys.readouterr().out
    assert np.array_equal(np.random.rand(3), expected)


def test_smoke_mode_is_read_at_the_entry_point_only(monkeypatch):
    from course.data import get_MNIST_dataloader as library
    from data_process import get_MNIST_dataloader as lesson

    monkeypatch.setenv("COURSE_SMOKE", "1")
    assert library(seed=0)[0].num_samples == 60_000            # the library reads no environment
    assert library(seed=0, smoke=True)[0].num_samples == 2000  # it is told
    train, test = lesson(seed=0)                                # the lesson-facing entry point reads it
    assert (train.num_samples, test.num_samples) == (2000, 1000)
    assert lesson(seed=0, smoke=False)[0].num_samples == 60_000
