"""Early stopping with patience, best-checkpoint keeping and gradient-norm clipping, on real Paddle."""
import numpy as np
import paddle
import pytest

from course import MNIST, fit, load_checkpoint, make_loader, make_optimizer, set_seed
from course.callbacks import BestCheckpoint, EarlyStopping, GradientClip
from course.train import Callback


class ScriptedValidation(Callback):
    """Replaces the measured validation metrics with a script, to test the decisions exactly."""

    order = 1

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
