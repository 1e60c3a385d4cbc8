"""NaNGuard(check_every=N): the loss is checked on the device every step, read every N steps."""
import math

import paddle.nn.functional as F
import pytest

from course import Checkpoint, History, MNIST, NaNGuard, fit, make_loader, make_optimizer, set_seed


class PoisonAtStep:
    """Cross-entropy, except the loss of global step ``bad_step`` (1-based) is inf."""

    def __init__(self, bad_step):
        self.bad_step, self.calls = bad_step, 0

    def __call__(self, y_hat, y):
        self.calls += 1
        loss = F.cross_entropy(y_hat, y)
        return loss * math.inf if self.calls == self.bad_step else loss


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
