"""The learning-rate range test: exponential schedule, stop on explosion, a sensible suggestion,
the given optimizer's rate swept, model and optimizer restored."""
import json
import math

import numpy as np
import paddle
import pytest

from course import MNIST, ConfigError, make_loader, make_optimizer, set_seed
from course.lr_finder import LRRangeTest, lr_range_test, plot_lr_finder, suggest_lr

from _helpers import run_course


def test_schedule_is_exponential_from_start_to_end():
    finder = LRRangeTest(1e-5, 1e-1, num_steps=5)
    assert [round(math.log10(finder.lr_at(k)), 6) for k in range(5)] == [-5, -4, -3, -2, -1]


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = np.logspace(-5, 0, 60)
    loss = np.concatenate([np.full(20, 2.3), np.linspace(2.3, 0.3, 20), [0.3, 0.3], np.linspace(0.3, 5, 18)])
    # After the blow-up the loss "falls" again (dead ReLUs settle at ln 10): not a candidate.
    loss[-5:] = np.linspace(5, 2.3, 5)
    suggestion = suggest_lr(lrs, loss)
    assert lrs[20] <= suggestion <= lrs[39]


def _toy(seed=0):
    """A linear classifier on 8 fixed batches: small enough to replay the test by hand."""
    paddle.seed(seed)
    model = paddle.nn.Linear(6, 3)
    rng = np.random.default_rng(seed)
    batches = [(paddle.to_tensor(rng.normal(size=(16, 6)).astype("float32")),
                paddle.to_tensor(rng.integers(0, 3, size=(16, 1)).astype("int64"))) for _ in range(8)]
    return model, batches


def _train(model, optimizer, batches, lrs=None):
    """The losses of plain steps, ``optimizer.set_lr(lrs[k])`` before step k when given."""
    losses = []
    for k, (X, y) in enumerate(batches):
        if lrs is not None:
            optimizer.set_lr(lrs[k])
        loss = paddle.nn.functional.cross_entropy(model(X), y)
        losses.append(float(loss))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    return losses


def _state(optimizer):
    return {k: v.numpy().copy() for k, v in optimizer.state_dict().items()}


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_the_given_optimizers_rate_is_swept_step_by_step(name):
    # The test's losses are those of a loop that sets each rate on this optimizer before its step.
    model, batches = _toy()
    optimizer = make_optimizer(name, 0.5, model.parameters())
    result = lr_range_test(model, batches, optimizer, 1e-3, 1.0, num_steps=8, restore=False, diverge_factor=1e9)
    assert optimizer.get_lr() == result.lrs[-1]  # restore=False: left at the last rate tried
    assert len(result.lrs) == 8 and result.lrs[0] == pytest.approx(1e-3) and result.lrs[-1] == pytest.approx(1.0)
    replay_model, _ = _toy()
    replay = _train(replay_model, make_optimizer(name, 0.5, replay_model.parameters()), batches, result.lrs)
    np.testing.assert_allclose(result.losses, replay, rtol=1e-5)
    constant_model, _ = _toy()
    constant = _train(constant_model, make_optimizer(name, 0.5, constant_model.parameters()), batches)  # never set
    assert not np.allclose(result.losses, constant, rtol=1e-3)


def test_restore_puts_back_parameters_accumulators_and_rate_of_a_used_optimizer():
    model, batches = _toy()
    optimizer = paddle.optimizer.Adam(0.01, parameters=model.parameters())
    _train(model, optimizer, batches[:3])  # moments and beta powers now hold something
    params, state = {k: v.numpy().copy() for k, v in model.state_dict().items()}, _state(optimizer)
    lr_range_test(model, batches, optimizer, 1e-3, 1.0, num_steps=8, diverge_factor=1e9)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), params[k], err_msg=k)
    after = _state(optimizer)
    assert sorted(after) == sorted(state)
    for k in state:
        np.testing.assert_array_equal(after[k], state[k], err_msg=k)
    assert optimizer.get_lr() == 0.01


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_after_the_test_a_fresh_optimizer_trains_as_if_it_had_not_run(name):
    model, batches = _toy()
    optimizer = make_optimizer(name, 0.05, model.parameters())
    lr_range_test(model, batches, optimizer, 1e-3, 1.0, num_steps=8, diverge_factor=1e9)
    assert _state(optimizer) == {} and optimizer.get_lr() == 0.05
    after_test = _train(model, optimizer, batches)
    untouched_model, _ = _toy()
    untouched = _train(untouched_model, make_optimizer(name, 0.05, untouched_model.parameters()), batches)
    np.testing.assert_allclose(after_test, untouched, rtol=1e-6)


def test_an_optimizer_with_a_schedule_or_a_name_or_options():
    model, batches = _toy()
    scheduled = paddle.optimizer.SGD(paddle.optimizer.lr.StepDecay(0.1, 2), parameters=model.parameters())
    with pytest.raises(ConfigError, match="LRScheduler.*float learning rate"):
        lr_range_test(model, batches, scheduled, num_steps=4)
    with pytest.raises(ConfigError, match="optimizer_options only go with an optimizer name"):
        lr_range_test(model, batches, make_optimizer("sgd", 0.1, model.parameters()), num_steps=4,
                      optimizer_options={"momentum": 0.9})
    with pytest.raises(ConfigError, match="paddle.optimizer optimizer"):
        lr_range_test(model, batches, 0.01, num_steps=4)
    with pytest.warns(DeprecationWarning, match="takes an optimizer object now"):  # names: one more release
        result = lr_range_test(model, batches, "momentum", 1e-3, 1.0, num_steps=4, optimizer_options={"momentum": 0.5})
    assert len(result.lrs) == 4


@pytest.mark.slow
def test_range_test_on_the_cnn(out_dir):
    set_seed(0)
    model = MNIST()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    optimizer = paddle.optimizer.Adam(parameters=model.parameters())
    result = lr_range_test(model, make_loader("train", 64, subset=6400), optimizer, 1e-5, 10.0, num_steps=150)
    assert "exploded" in result.stop_reason and len(result.lrs) < 150  # Adam at lr ~1 blows up
    assert np.all(np.diff(result.lrs) > 0)
    assert 1e-4 < result.suggestion < result.min_loss_lr < 1.0
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)  # restored
    assert plot_lr_finder(result, path=out_dir / "lr_finder.png").exists()


@pytest.mark.slow
def test_cli_lr_find_writes_a_run_directory_or_the_given_path_never_the_current_folder(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = run_course("lr-find", "--num_steps", "30", "--start_lr", "1e-4", "--out_dir", tmp_path / "runs",
                      "--run_name", "finder", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert "suggested learning rate for adam:" in done.stdout
    run_dir = tmp_path / "runs" / "finder"
    assert f"plot: {run_dir / 'lr_finder.png'}; numbers: {run_dir / 'lr_finder.json'}" in done.stdout
    assert (run_dir / "lr_finder.png").read_bytes().startswith(b"\x89PNG")
    record = json.loads((run_dir / "lr_finder.json").read_text())
    assert record["settings"]["num_steps"] == 30 and len(record["lrs"]) == len(record["losses"]) <= 30
    assert f"{record['suggestion']:.3g}" in done.stdout
    assert list(cwd.iterdir()) == []  # nothing in the current folder

    done = run_course("lr-find", "--num_steps", "30", "--start_lr", "1e-4", "--out", tmp_path / "f.png", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert f"plot: {tmp_path / 'f.png'}" in done.stdout and (tmp_path / "f.png").exists()
    assert list(cwd.iterdir()) == []
    bad = run_course("lr-find", "--start_lr", "1", "--end_lr", "0.1", timeout=120)
    assert bad.returncode == 2 and "start_lr must be smaller" in bad.stderr
