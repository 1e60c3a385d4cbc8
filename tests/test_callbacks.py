"""The callbacks of ``course/callbacks.py``, on real Paddle: early stopping, best checkpoint, gradient
clipping, the NaN guard and the progress bar. (The callback protocol itself, events and their
order, is tested in tests/test_train.py; VisualDLLogger in tests/test_visualdl_log.py.)"""
import json
import math
import os
import pty
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from course import (Callback, Checkpoint, History, MNIST, NaNGuard, fit, load_checkpoint, make_loader,
                    make_optimizer, set_seed)
from course.callbacks import BestCheckpoint, EarlyStopping, GradientClip
from course.events import ORDER

from _helpers import ROOT, course_env, run_course


# ------------------------------------------------ EarlyStopping, BestCheckpoint, GradientClip
class ScriptedValidation(Callback):
    """Replaces the measured validation metrics with a script (before History records them), to test
    the decisions exactly."""

    order = ORDER["History"] - 1

    def __init__(self, losses):
        self.losses = losses

    def after_epoch(self, state):
        loss = self.losses[state.epoch]
        state.val_metrics = {"loss": loss, "acc": 1 - loss, "n": 100}


def short_fit(callbacks, epochs):
    set_seed(0)
    model = MNIST()
    history = fit(model, make_loader("train", 64, subset=128), make_optimizer("sgd", 0.01, model.parameters()),
                  epochs, val_loader=make_loader("val", 100, subset=100), callbacks=callbacks)
    return model, history


def test_early_stopping_waits_patience_epochs_and_restores_the_best():
    snapshots = {}

    class Snapshot(Callback):
        order = 2

        def after_epoch(self, state):
            snapshots[state.epoch + 1] = state.model.fc.weight.numpy().copy()

    stopper = EarlyStopping("val_loss", patience=2)
    model, history = short_fit([ScriptedValidation([0.9, 0.5, 0.6, 0.55, 0.4, 0.3]), Snapshot(), stopper], 6)
    assert len(history.epochs) == 4  # best at epoch 2, no improvement in epochs 3 and 4
    assert history.stop_reason == "early stopping: val_loss has not improved for 2 epoch(s); best 0.5000 at epoch 2"
    np.testing.assert_array_equal(model.fc.weight.numpy(), snapshots[2])


def test_min_delta_and_accuracy_monitor():
    stopper = EarlyStopping("val_acc", patience=1, min_delta=0.05, restore_best=False)
    _, history = short_fit([ScriptedValidation([0.5, 0.48, 0.3]), stopper], 3)
    assert len(history.epochs) == 2 and "best 0.5000 at epoch 1" in history.stop_reason  # +0.02 < min_delta
    with pytest.raises(ValueError, match="val_loss' or 'val_acc"):
        EarlyStopping("accuracy")


def test_a_callback_reads_the_epoch_row_from_history():
    """The one documented way (TrainState's docstring): ``state.history.epochs[-1]`` in after_epoch."""
    seen = []

    class ReadRow(Callback):
        def after_epoch(self, state):
            seen.append(dict(state.history.epochs[-1]))

    _, with_val = short_fit([ReadRow()], 2)
    assert seen == with_val.epochs and [r["epoch"] for r in seen] == [1, 2]
    assert 0 <= seen[-1]["val_acc"] <= 1 and seen[-1]["val_loss"] > 0
    seen.clear()
    set_seed(0)
    model = MNIST()
    fit(model, make_loader("train", 64, subset=128), make_optimizer("sgd", 0.01, model.parameters()), 1,
        callbacks=[ReadRow()])
    assert math.isnan(seen[0]["val_loss"]) and math.isnan(seen[0]["val_acc"])  # no val_loader
    with pytest.raises(ValueError, match="pass val_loader to fit"):
        fit(model, make_loader("train", 64, subset=128), make_optimizer("sgd", 0.01, model.parameters()), 1,
            callbacks=[EarlyStopping()])


def test_best_checkpoint_keeps_the_best_epoch(tmp_path):
    path = tmp_path / "best.pdckpt"
    short_fit([ScriptedValidation([0.5, 0.2, 0.4]), BestCheckpoint(path, "val_loss")], 3)
    meta = load_checkpoint(path)["meta"]
    assert meta["epoch"] == 2 and meta["value"] == 0.2


def test_gradient_clip_matches_paddles_global_norm_clipping():
    loader = make_loader("train", 64, subset=320)
    results = []
    for use_callback in (True, False):
        set_seed(3)
        model = MNIST()
        clip = None if use_callback else paddle.nn.ClipGradByGlobalNorm(0.5)
        optimizer = paddle.optimizer.SGD(0.1, parameters=model.parameters(), grad_clip=clip)
        fit(model, loader, optimizer, 1, callbacks=[GradientClip(0.5)] if use_callback else [])
        results.append({k: v.numpy() for k, v in model.state_dict().items()})
    for key in results[0]:
        np.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-5, atol=1e-7, err_msg=key)


def test_gradient_clip_bounds_the_norm_and_reports_it():
    norms = []

    class ReadNorm(Callback):
        order = 5

        def after_backward(self, state):
            grads = [p.grad.numpy() for p in state.model.parameters() if p.grad is not None]
            norms.append((float(state.grad_norm), float(np.sqrt(sum((g ** 2).sum() for g in grads)))))

    set_seed(0)
    model = MNIST()
    fit(model, make_loader("train", 64, subset=320), make_optimizer("sgd", 0.1, model.parameters()), 1,
        callbacks=[GradientClip(0.01), ReadNorm()])
    assert all(after <= 0.01 * (1 + 1e-4) for _, after in norms)
    assert any(before > 0.01 for before, _ in norms)


# ------------------------------------------------ NaNGuard: a loss that turns NaN / inf stops training
# at that step, keeping history and the last good checkpoint.
class PoisonAtStep:
    """Cross-entropy, except the loss of global step ``bad_step`` (1-based) is inf."""

    def __init__(self, bad_step):
        self.bad_step, self.calls = bad_step, 0

    def __call__(self, y_hat, y):
        self.calls += 1
        loss = F.cross_entropy(y_hat, y)
        return loss * math.inf if self.calls == self.bad_step else loss


class Snapshot(Callback):
    def after_batch(self, state):
        self.weights = state.model.fc.weight.numpy().copy()
        self.step = state.step


def test_nan_guard_stops_at_the_bad_step_before_the_update(tmp_path):
    set_seed(0)
    model = MNIST()
    loader = make_loader("train", 64, subset=640)  # 10 steps per epoch
    snapshot, history = Snapshot(), History(1)
    ckpt = tmp_path / "c.pdckpt"
    fit(model, loader, make_optimizer("sgd", 0.01, model.parameters()), 3, loss_fn=PoisonAtStep(14),
        callbacks=[history, NaNGuard(), snapshot, Checkpoint(ckpt)])
    assert history.diverged
    assert "loss became inf at step 14 (epoch 2, batch 4)" in history.stop_reason
    assert "smaller learning rate" in history.stop_reason
    assert snapshot.step == 13 and len(history.losses) == 13  # history kept up to the last good step
    np.testing.assert_array_equal(model.fc.weight.numpy(), snapshot.weights)  # the bad step did not update
    assert load_checkpoint(ckpt)["meta"]["epoch"] == 1  # last good checkpoint left as it was


def test_cli_reports_a_diverging_run_and_records_it(tmp_path):
    done = run_course("train", "--optimizer", "sgd", "--lr", "1e20", "--schedule", "constant",
                      "--train_subset", "640", "--eval_subset", "200", "--out_dir", tmp_path, "--run_name", "boom",
                      "--no-progress", "--no-visualdl")
    assert done.returncode == 0, done.stderr
    assert "training diverged" in done.stdout and "Traceback" not in done.stderr
    metrics = json.loads((tmp_path / "boom" / "metrics.json").read_text())
    assert metrics["diverged"] is True and "diverged" in metrics["stop_reason"]


# ---- NaNGuard(check_every=N): the loss is checked on the device every step, read every N steps.
def run_poisoned(bad_step, check_every, tmp_path):
    set_seed(0)
    model = MNIST()
    loader = make_loader("train", 64, subset=640)  # 10 steps per epoch
    history = History(1)
    fit(model, loader, make_optimizer("sgd", 0.01, model.parameters()), 3, loss_fn=PoisonAtStep(bad_step),
        callbacks=[history, NaNGuard(check_every), Checkpoint(tmp_path / "c.pdckpt")])
    return history


@pytest.mark.parametrize("check_every, updates", [(5, 1), (3, 2)])
def test_a_window_names_the_first_bad_step_exactly(tmp_path, check_every, updates):
    history = run_poisoned(14, check_every, tmp_path)
    assert history.diverged
    assert "loss became non-finite (NaN or inf) at step 14 (epoch 2, batch 4)" in history.stop_reason
    assert f"Noticed {updates} update(s) later" in history.stop_reason
    assert [row["epoch"] for row in history.epochs] == [1]


def test_the_last_partial_window_is_read_before_the_epoch_is_saved(tmp_path):
    history = run_poisoned(9, 4, tmp_path)  # windows 1-4, 5-8, then 9-10 is read at the epoch's end
    assert "at step 9 (epoch 1, batch 9)" in history.stop_reason
    assert history.epochs == [] and not (tmp_path / "c.pdckpt").exists()


def test_a_finite_run_is_not_stopped_and_check_every_is_validated(tmp_path):
    history = run_poisoned(10**9, 4, tmp_path)
    assert not history.diverged and len(history.epochs) == 3
    with pytest.raises(ValueError, match="check_every"):
        NaNGuard(0)


# ------------------------------------------------ ProgressBar: a bar in a terminal, no carriage-return frames
# when the output is a file (make demo > log, nohup, CI). Both run the real train_run in a subprocess.
PROGRESS_RUN = ("from course import Config, train_run; train_run(Config(train_subset=640, eval_subset=128, "
         "num_epochs=2, batch_size=32, visualdl=False, out_dir={out!r}))")


def _env():
    return course_env(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), COURSE_SMOKE="0")


@pytest.mark.slow
def test_a_log_file_gets_the_epoch_lines_and_no_progress_frames(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "wb") as out:
        subprocess.run([sys.executable, "-c", PROGRESS_RUN.format(out=str(tmp_path / "runs"))], stdout=out,
                       stderr=subprocess.STDOUT, env=_env(), cwd=tmp_path, check=True, timeout=300)
    text = log.read_bytes().decode()
    assert "\r" not in text and "batch/s" not in text and "it/s" not in text
    assert "epoch 1/2 | train loss" in text and "epoch 2/2 | train loss" in text
    assert "test: loss" in text


@pytest.mark.slow
def test_a_terminal_gets_the_bar(tmp_path):
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", PROGRESS_RUN.format(out=str(tmp_path / "runs"))], stdout=follower,
                            stderr=follower, env=_env(), cwd=tmp_path)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=300) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "\r" in text and "batch" in text  # tqdm's frames
    assert "epoch 2/2 | train loss" in text


def _fit_without_tqdm(monkeypatch, *callbacks, num_epochs=2):
    from course import History, MNIST, fit, make_loader, make_optimizer, set_seed

    for name in ("tqdm", "tqdm.auto", "tqdm.autonotebook"):  # what an environment without tqdm has
        monkeypatch.setitem(sys.modules, name, None)
    set_seed(0)
    model = MNIST()
    fit(model, make_loader("train50k", 64, subset=256), make_optimizer("adam", 0.001, model.parameters()),
        num_epochs, val_loader=make_loader("val", 200, subset=200), callbacks=[History(2), *callbacks])


def test_without_tqdm_the_bar_is_a_plain_line_per_epoch(monkeypatch):
    import io

    from course import ProgressBar

    out = io.StringIO()
    _fit_without_tqdm(monkeypatch, ProgressBar(enabled=True, file=out))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("epoch 1/2 | train loss") and "| val loss" in lines[0] and "4 batches in" in lines[0]
    assert "pip install tqdm" in lines[0] and "pip install" not in lines[1]  # said once
    assert lines[1].startswith("epoch 2/2 | train loss")


def test_without_tqdm_the_epoch_lines_of_print_metrics_are_not_repeated(monkeypatch, capsys):
    from course import PrintMetrics, ProgressBar

    _fit_without_tqdm(monkeypatch, ProgressBar(enabled=True), PrintMetrics(), num_epochs=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("epoch 1/1 | train loss"), lines
