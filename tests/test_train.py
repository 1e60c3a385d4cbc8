"""The loop: it learns, accuracy is sample-weighted, callbacks and events, determinism, stopping."""
import math

import numpy as np
import paddle.nn.functional as F
import pytest

from course import (EVENTS, Callback, History, MNIST, StopTraining, evaluate, fit, make_loader,
                    make_optimizer, set_seed)
from course import TrainState


def small_run(seed=0, epochs=1, callbacks=(), subset=1024, log_every=4):
    set_seed(seed)
    model = MNIST()
    loader = make_loader("train", 64, seed=seed, subset=subset)
    optimizer = make_optimizer("adam", 0.002, model.parameters())
    history = History(log_every)
    fit(model, loader, optimizer, epochs, callbacks=[history, *callbacks])
    return model, history


def test_training_lowers_the_loss_and_learns():
    model, history = small_run(epochs=2)
    assert len(history.losses) == 2 * 16 // 4
    assert history.losses[-1] < 0.6 * history.losses[0]
    result = evaluate(model, make_loader("test", 500, subset=1000))
    assert result["acc"] > 0.7 and result["n"] == 1000


def test_evaluate_is_sample_weighted_not_a_mean_of_batch_means():
    set_seed(1)
    model = MNIST()
    loader = make_loader("test", 300, subset=1000)  # batches of 300, 300, 300, 100
    result = evaluate(model, loader)
    X, y = loader.X, loader.y
    logits = model(X)
    exact_acc = int((logits.numpy().argmax(-1) == y.numpy()[:, 0]).sum()) / 1000
    exact_loss = float(F.cross_entropy(logits, y))
    assert result["acc"] == pytest.approx(exact_acc, abs=1e-9)
    assert result["loss"] == pytest.approx(exact_loss, rel=1e-5)
    batch_means = [float((model(x).argmax(-1) == t[:, 0]).astype("float32").mean()) for x, t in loader]
    assert np.mean(batch_means) != pytest.approx(exact_acc, abs=1e-6)  # the course's mean differs
    assert model.training  # mode restored


def test_same_seed_gives_the_same_loss_sequence_bit_for_bit():
    _, first = small_run(seed=7, log_every=1)
    _, second = small_run(seed=7, log_every=1)
    _, other = small_run(seed=8, log_every=1)
    assert first.losses == second.losses
    assert first.losses != other.losses


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name in EVENTS:
            return lambda state: self.events.append(name)
        return super().__getattribute__(name)


def test_events_fire_in_order():
    recorder = Recorder()
    small_run(subset=128, callbacks=[recorder])
    per_batch = ["before_batch", "after_loss", "after_backward", "after_batch"]
    assert recorder.events == ["before_fit", "before_epoch", *per_batch * 2, "after_epoch", "after_fit"]


def test_unknown_events_are_errors():
    with pytest.raises(TypeError, match="after_los is not a training event"):
        class Typo(Callback):
            def after_los(self, state):
                pass
    state = TrainState(MNIST(), None, F.cross_entropy, [])
    with pytest.raises(ValueError, match="unknown training event"):
        state.fire("after_step")


def test_stop_training_ends_fit_cleanly_and_keeps_history():
    class StopAfterThree(Callback):
        def after_batch(self, state):
            if state.step == 3:
                raise StopTraining("enough")

    class FitEnded(Callback):
        ended = False

        def after_fit(self, state):
            FitEnded.ended = True

    _, history = small_run(epochs=3, callbacks=[StopAfterThree(), FitEnded()], log_every=1)
    assert history.stop_reason == "enough" and len(history.losses) == 3 and FitEnded.ended


def test_keyboard_interrupt_returns_the_history_so_far(capsys):
    class CtrlC(Callback):
        def after_batch(self, state):
            if state.step == 5:
                raise KeyboardInterrupt

    _, history = small_run(callbacks=[CtrlC()], log_every=1)
    assert len(history.losses) == 5 and "interrupted" in history.stop_reason
    assert "Training interrupted" in capsys.readouterr().out


def test_validation_metrics_recorded_each_epoch():
    set_seed(0)
    model = MNIST()
    history = fit(model, make_loader("train50k", 64, subset=256), make_optimizer("sgd", 0.01, model.parameters()),
                  2, val_loader=make_loader("val", 500, subset=500))
    assert [row["epoch"] for row in history.epochs] == [1, 2]
    assert all(0 <= row["val_acc"] <= 1 and math.isfinite(row["val_loss"]) for row in history.epochs)
    assert history.epochs[0]["lr"] == pytest.approx(0.01)
