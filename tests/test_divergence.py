"""A loss that turns NaN / inf stops training at that step, keeping history and the last good checkpoint."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle.nn.functional as F
import pytest

from course import (Callback, Checkpoint, History, MNIST, NaNGuard, fit, load_checkpoint, make_loader,
                    make_optimizer, set_seed)

ROOT = Path(__file__).resolve().parent.parent


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
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("COURSE_SMOKE", None)
    done = subprocess.run([sys.executable, "-m", "course", "train", "--optimizer", "sgd", "--lr", "1e20",
                           "--schedule", "constant", "--train_subset", "640", "--eval_subset", "200",
                           "--out_dir", str(tmp_path), "--run_name", "boom", "--no-progress", "--no-visualdl"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "training diverged" in done.stdout and "Traceback" not in done.stderr
    metrics = json.loads((tmp_path / "boom" / "metrics.json").read_text())
    assert metrics["diverged"] is True and "diverged" in metrics["stop_reason"]


# ---- NaNGuard(check_every=N): the loss is checked on the device every step, read every N steps.
def run(bad_step, check_every, tmp_path):
    set_seed(0)
    model = MNIST()
    loader = make_loader("train", 64, subset=640)  # 10 steps per epoch
    history = History(1)
    fit(model, loader, make_optimizer("sgd", 0.01, model.parameters()), 3, loss_fn=PoisonAtStep(bad_step),
        callbacks=[history, NaNGuard(check_every), Checkpoint(tmp_path / "c.pdckpt")])
    return history


@pytest.mark.parametrize("check_every, updates", [(5, 1), (3, 2)])
def test_a_window_names_the_first_bad_step_exactly(tmp_path, check_every, updates):
    history = run(14, check_every, tmp_path)
    assert history.diverged
    assert "loss became non-finite (NaN or inf) at step 14 (epoch 2, batch 4)" in history.stop_reason
    assert f"Noticed {updates} update(s) later" in history.stop_reason
    assert [row["epoch"] for row in history.epochs] == [1]


def test_the_last_partial_window_is_read_before_the_epoch_is_saved(tmp_path):
    history = run(9, 4, tmp_path)  # windows 1-4, 5-8, then 9-10 is read at the epoch's end
    assert "at step 9 (epoch 1, batch 9)" in history.stop_reason
    assert history.epochs == [] and not (tmp_path / "c.pdckpt").exists()


def test_a_finite_run_is_not_stopped_and_check_every_is_validated(tmp_path):
    history = run(10**9, 4, tmp_path)
    assert not history.diverged and len(history.epochs) == 3
    with pytest.raises(ValueError, match="check_every"):
        NaNGuard(0)
