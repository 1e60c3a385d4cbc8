"""make_optimizer / make_scheduler: every name, the documented learning rates, and the errors."""
import math

import numpy as np
import paddle
import pytest

from course import ConfigError, compat, make_optimizer, make_scheduler
from course.config import OPTIMIZERS, SCHEDULES, Config

PADDLE_CLASS = {"sgd": "SGD", "momentum": "Momentum", "adagrad": "Adagrad", "rmsprop": "RMSProp",
                "adam": "Adam", "adamw": "AdamW", "radam": "RAdam"}
E, EPOCHS = 10, 4  # steps per epoch, epochs: T = 40 steps


def test_every_optimizer_name_is_covered_here():
    assert set(PADDLE_CLASS) == set(OPTIMIZERS)
    assert {"inverse_time", "exponential", "warmup", "onecycle", "cosine", "step", "constant"} == set(SCHEDULES)


def _linear(seed=0):
    paddle.seed(seed)
    return paddle.nn.Linear(3, 2)


def _one_step(optimizer, layer, grad_scale=1.0):
    x = paddle.ones([4, 3])
    loss = grad_scale * layer(x).sum()
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()


NO_RADAM = pytest.mark.skipif(not compat.has("radam"), reason=f"paddle.optimizer.RAdam needs Paddle 3.0 or "
                              f"later; this is Paddle {paddle.__version__}")


@pytest.mark.parametrize("name", [pytest.param(n, marks=NO_RADAM) if n == "radam" else n for n in OPTIMIZERS])
def test_make_optimizer_builds_the_paddle_class_and_trains(name):
    layer = _linear()
    before = layer.weight.numpy().copy()
    opt = make_optimizer(name, 0.1, layer.parameters())
    assert type(opt).__name__ == PADDLE_CLASS[name]
    _one_step(opt, layer)
    assert not np.allclose(layer.weight.numpy(), before)
    # Config accepts the same names, so the CLI does too
    assert Config(optimizer=name).optimizer == name


def test_make_optimizer_passes_momentum_and_accepts_a_scheduler():
    layer = _linear()
    assert make_optimizer("momentum", 0.1, layer.parameters(), momentum=0.5)._momentum == 0.5
    scheduler = make_scheduler("cosine", 0.1, E, EPOCHS)
    # Optimizer.get_lr() is the current rate (unlike LRScheduler.get_lr(), see rates())
    assert make_optimizer("adam", scheduler, layer.parameters()).get_lr() == pytest.approx(0.1)


@pytest.mark.skipif(compat.has("radam"), reason=f"Paddle {paddle.__version__} has paddle.optimizer.RAdam")
def test_radam_on_a_paddle_without_it_is_a_one_line_error_naming_the_version(tmp_path, capsys):
    from course.cli import main

    with pytest.raises(ConfigError) as error:
        make_optimizer("radam", 0.1, _linear().parameters())
    message = str(error.value)
    assert "\n" not in message and "optimizer 'radam' needs Paddle 3.0 or later (paddle.optimizer.RAdam)" in message
    assert f"this is Paddle {paddle.__version__}" in message
    assert main(["train", "--optimizer", "radam", "--out_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs Paddle 3.0 or later" in err
    assert list(tmp_path.iterdir()) == []  # refused before a run directory was made


@pytest.mark.parametrize("name, factor", [("sgd", 1 - 0.5 * 0.2), ("adamw", 1 - 0.5 * 0.2)])
def test_weight_decay_shrinks_weights_when_the_gradient_is_zero(name, factor):
    # sgd: w <- w - lr * (0 + wd * w);  adamw (decoupled): w <- w * (1 - lr * wd), then a zero Adam step
    layer = _linear()
    before = layer.weight.numpy().copy()
    _one_step(make_optimizer(name, 0.5, layer.parameters(), weight_decay=0.2), layer, grad_scale=0.0)
    np.testing.assert_allclose(layer.weight.numpy(), before * factor, rtol=1e-6)
    layer = _linear()
    _one_step(make_optimizer(name, 0.5, layer.parameters()), layer, grad_scale=0.0)
    np.testing.assert_allclose(layer.weight.numpy(), before, rtol=1e-6)  # weight_decay=0: off


def rates(lr, n):
    """The learning rate used by each of the first n batches (read, then step, like LRSchedule).

    Read it as ``lr()`` (what the optimizer reads), never ``lr.get_lr()``: on a Paddle
    scheduler that *computes the next* value, recursively for CosineAnnealingDecay.
    """
    if not isinstance(lr, paddle.optimizer.lr.LRScheduler):
        return [lr] * n
    out = []
    for _ in range(n):
        out.append(lr())
        lr.step()
    return out


def test_constant():
    assert make_scheduler("constant", 0.01, E, EPOCHS) == 0.01


def test_onecycle_warms_up_to_lr_then_anneals():
    r = rates(make_scheduler("onecycle", 0.01, E, EPOCHS), E * EPOCHS)
    assert r[0] == pytest.approx(0.01 / 25)
    assert max(r) == pytest.approx(0.01) and abs(int(np.argmax(r)) - 0.3 * E * EPOCHS) <= 1
    assert r[-1] == pytest.approx(0.01 * 1e-4, rel=1e-6, abs=1e-8)


def test_cosine_halves_at_mid_run():
    r = rates(make_scheduler("cosine", 0.01, E, EPOCHS), E * EPOCHS)
    assert r[0] == pytest.approx(0.01) and r[20] == pytest.approx(0.005) and r[39] < 1e-4


@pytest.mark.parametrize("gamma, expected", [(None, 0.8), (0.5, 0.5)])
def test_step_is_a_stair_per_epoch(gamma, expected):
    r = rates(make_scheduler("step", 0.01, E, EPOCHS, gamma=gamma), E * EPOCHS)
    assert r[0] == r[E - 1] == pytest.approx(0.01)
    assert r[E] == pytest.approx(0.01 * expected) and r[2 * E] == pytest.approx(0.01 * expected ** 2)


def test_inverse_time_default_halves_after_one_epoch():
    r = rates(make_scheduler("inverse_time", 0.01, E, EPOCHS), E * EPOCHS)
    assert [r[0], r[E], r[2 * E], r[3 * E]] == pytest.approx([0.01, 0.01 / 2, 0.01 / 3, 0.01 / 4])
    assert r[5] == pytest.approx(0.01 / 1.5)  # smooth, not a stair


@pytest.mark.parametrize("decay", [0.25, 0.0])
def test_inverse_time_with_decay(decay):
    r = rates(make_scheduler("inverse_time", 0.01, E, EPOCHS, decay=decay), 9)
    assert r == pytest.approx([0.01 / (1 + decay * k) for k in range(9)])


@pytest.mark.parametrize("gamma", [None, 0.9])
def test_exponential_is_smooth_and_multiplies_by_gamma_per_epoch(gamma):
    g = 0.5 if gamma is None else gamma
    r = rates(make_scheduler("exponential", 0.01, E, EPOCHS, gamma=gamma), E * EPOCHS)
    assert [r[0], r[E], r[3 * E]] == pytest.approx([0.01, 0.01 * g, 0.01 * g ** 3])
    assert r[E // 2] == pytest.approx(0.01 * math.sqrt(g))


@pytest.mark.parametrize("warmup_steps, W", [(None, 4), (10, 10), (40, 40)])
def test_warmup_is_linear_from_zero_then_constant(warmup_steps, W):
    r = rates(make_scheduler("warmup", 0.01, E, EPOCHS, warmup_steps=warmup_steps), E * EPOCHS)
    assert r[:W] == pytest.approx([0.01 * k / W for k in range(W)])  # default W = 10% of 40 steps
    assert r[W:] == pytest.approx([0.01] * (E * EPOCHS - W))


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_schedule_builds_with_defaults_and_drives_an_optimizer(name):
    lr = make_scheduler(name, 0.01, E, EPOCHS)
    r = rates(lr, E * EPOCHS)
    assert all(0 <= v <= 0.01 + 1e-12 and math.isfinite(v) for v in r)
    assert max(r) == pytest.approx(0.01, rel=0.05)  # every schedule reaches (about) the given lr
    assert type(make_optimizer("sgd", lr, _linear().parameters())).__name__ == "SGD"
    assert Config(schedule=name).schedule == name


def test_unknown_names_list_the_choices():
    with pytest.raises(ConfigError) as err:
        make_optimizer("adamax", 0.1, _linear().parameters())
    assert "'adamax'" in str(err.value) and ", ".join(OPTIMIZERS) in str(err.value)
    with pytest.raises(ConfigError) as err:
        make_scheduler("linear", 0.1, E, EPOCHS)
    assert "'linear'" in str(err.value) and ", ".join(SCHEDULES) in str(err.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=0.0), r"lr must be a number in \(0, inf\), got 0.0"),
    (dict(lr=-0.1), r"lr must be a number in \(0, inf\)"),
    (dict(lr=float("nan")), r"lr must be a number"),
    (dict(lr="0.1"), r"lr must be a number"),
    (dict(lr=True), r"lr must be a number"),
    (dict(weight_decay=-1e-4), r"weight_decay must be a number in \[0, inf\), got -0.0001"),
    (dict(momentum=1.0), r"momentum must be a number in \[0, 1\), got 1.0"),
])
def test_make_optimizer_rejects_bad_values(kwargs, message):
    kwargs = {"name": "momentum", "lr": 0.1, **kwargs}
    with pytest.raises(ConfigError, match=message):
        make_optimizer(parameters=_linear().parameters(), **kwargs)


def test_momentum_is_checked_only_where_it_is_used():
    assert type(make_optimizer("adam", 0.1, _linear().parameters(), momentum=1.0)).__name__ == "Adam"


@pytest.mark.parametrize("args, kwargs, message", [
    (("cosine", 0.0, E, EPOCHS), {}, r"lr must be a number in \(0, inf\)"),
    (("cosine", 0.1, 0, EPOCHS), {}, r"steps_per_epoch must be a whole number >= 1, got 0"),
    (("onecycle", 0.1, E, 1.5), {}, r"num_epochs must be a whole number >= 1, got 1.5"),
    (("inverse_time", 0.1, E, EPOCHS), dict(decay=-0.1), r"decay must be a number in \[0, inf\)"),
    (("exponential", 0.1, E, EPOCHS), dict(gamma=0.0), r"gamma must be a number in \(0, 1\], got 0.0"),
    (("step", 0.1, E, EPOCHS), dict(gamma=1.5), r"gamma must be a number in \(0, 1\], got 1.5"),
    (("warmup", 0.1, E, EPOCHS), dict(warmup_steps=0), r"warmup_steps must be a whole number >= 1, got 0"),
    (("warmup", 0.1, E, EPOCHS), dict(warmup_steps=41), r"warmup_steps must be at most the 40 steps"),
    (("cosine", 0.1, E, EPOCHS), dict(decay=0.1), r"decay applies to the schedule\(s\) inverse_time, not 'cosine'"),
    (("warmup", 0.1, E, EPOCHS), dict(gamma=0.5), r"gamma applies to the schedule\(s\) step, exponential"),
    (("constant", 0.1, E, EPOCHS), dict(warmup_steps=5), r"warmup_steps applies to the schedule\(s\) warmup"),
])
def test_make_scheduler_rejects_bad_values(args, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_scheduler(*args, **kwargs)
