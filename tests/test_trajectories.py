"""What a student should see in the optimizer pictures, asserted on the numbers behind them."""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from course.scratch import SGD, AdaGrad, Adam, Momentum, RAdam, RMSProp
from course.trajectories import (BOWL, DEFAULT_LRS, ROSENBROCK, SADDLE, SURFACES, gradient_descent_1d,
                                 plot_learning_rates, plot_trajectories, walk)


def crossings(values):
    """How often a coordinate changes sign: crossings of the valley floor / the minimum."""
    return int(np.sum(np.diff(np.sign(values)) != 0))


@pytest.mark.parametrize("key", SURFACES)
def test_analytic_gradients_match_finite_differences(key):
    surface, h = SURFACES[key], 1e-6
    for p in np.random.default_rng(0).uniform(-1.5, 1.5, size=(5, 2)):
        numeric = [(surface.f(p + h * e) - surface.f(p - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(surface.grad(p), numeric, rtol=1e-6, atol=1e-6)
    if surface.minimum is not None:
        np.testing.assert_allclose(surface.grad(np.array(surface.minimum)), 0.0, atol=1e-12)


def test_run_returns_the_path_from_the_start():
    path = walk(SGD(0.1), BOWL, steps=3)
    assert path.shape == (4, 2) and tuple(path[0]) == BOWL.start
    # one SGD step by hand: p - lr * grad(p)
    np.testing.assert_allclose(path[1], np.array(BOWL.start) - 0.1 * BOWL.grad(np.array(BOWL.start)))


def test_momentum_overshoots_the_narrow_axis_more_than_adam():
    mom = walk(Momentum(0.1, momentum=0.9), BOWL, steps=50)
    adam = walk(Adam(0.5), BOWL, steps=50)
    # y is the steep, narrow axis (curvature 4 vs 0.2): momentum keeps swinging across it
    assert crossings(mom[:, 1]) > 2 * crossings(adam[:, 1]) > 0
    # and each swing carries it further from the floor (y = 0) than Adam ever gets
    assert np.abs(mom[1:, 1]).max() > np.abs(adam[1:, 1]).max()
    for path in (mom, adam):  # both still head for the minimum
        assert np.linalg.norm(path[-1]) < 0.25 * np.linalg.norm(path[0])


def test_adagrad_step_size_only_shrinks_and_it_stalls_where_rmsprop_does_not():
    opt, point, rates = AdaGrad(0.1), BOWL.start, []
    for _ in range(50):  # one step at a time: walk() keeps the optimizer's state between calls
        point = walk(opt, BOWL, start=point, steps=1)[-1]
        rates.append(opt.lr / (np.sqrt(opt.sum_sq_["xy"]) + opt.epsilon))  # per-coordinate rate used
    rates = np.array(rates)
    assert np.all(np.diff(rates, axis=0) <= 0)          # never grows: the sum of g^2 only grows
    assert np.all(rates[-1] < 0.25 * rates[0])         # down to under a quarter in 50 steps
    adagrad = walk(AdaGrad(0.1), BOWL, steps=50)
    rmsprop = walk(RMSProp(0.1, rho=0.9), BOWL, steps=50)  # same lr, but a forgetting average
    np.testing.assert_allclose(adagrad[-1], point)
    assert np.linalg.norm(adagrad[-1]) > 5 * np.linalg.norm(rmsprop[-1])
    last_steps = lambda path: np.linalg.norm(np.diff(path[-11:], axis=0), axis=1).mean()
    assert last_steps(adagrad) < 0.5 * last_steps(rmsprop)


def test_sgd_lingers_at_the_saddle_while_adam_leaves():
    # from (-1.5, 0.001) the push along y is 2 * 0.001: SGD multiplies y by 1.1 per step, Adam
    # divides the gradient by its own size and moves ~lr per step
    sgd = walk(SGD(0.05), SADDLE, steps=50)
    adam = walk(Adam(0.05), SADDLE, steps=50)
    assert np.linalg.norm(sgd[-1]) < 0.2 and abs(adam[-1, 1]) > 2.0


@pytest.mark.filterwarnings("error")  # overflow must be caught, not warned about (nor crash)
def test_a_diverging_run_stops_early_with_finite_points():
    radam = walk(RAdam(0.1), ROSENBROCK, steps=300)
    adam = walk(Adam(0.1), ROSENBROCK, steps=300)
    # RAdam's first 5 steps are plain momentum SGD (rho_t <= 5): lr 0.1 times a gradient of ~1000
    assert len(radam) < 6 and np.all(np.isfinite(radam))
    distance = lambda point: np.linalg.norm(point - np.array(ROSENBROCK.minimum))
    assert len(adam) == 301 and distance(adam[-1]) < 0.5 * distance(adam[0])
    assert len(walk(SGD(1e308), BOWL, steps=10)) == 1    # the very first step overflows to inf


def test_learning_rate_verdicts_on_the_parabola():
    verdicts = {title: gradient_descent_1d(lr)[1] for title, lr in DEFAULT_LRS.items()}
    assert verdicts == {"too small": "converging", "good": "converged", "too large": "converging",
                        "diverging": "diverged"}
    xs, _ = gradient_descent_1d(0.9, x0=4.0, steps=20)
    np.testing.assert_allclose(xs, 4.0 * (1 - 2 * 0.9) ** np.arange(21))  # x_k = x0 (1 - 2 lr)^k
    assert crossings(xs) == 20                                              # too large: zig-zags
    assert abs(gradient_descent_1d(0.05)[0][-1]) > 100 * abs(gradient_descent_1d(0.4)[0][-1])


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("lr", [1.05, 1e3, 1e308])
def test_diverging_learning_rates_are_reported_not_crashed(lr):
    xs, verdict = gradient_descent_1d(lr, steps=5000)
    assert verdict == "diverged" and np.all(np.isfinite(xs))
    assert len(xs) < 5001  # stopped when |x| blew up instead of iterating on to inf


def test_figures_are_written_headless(out_dir, monkeypatch):
    monkeypatch.chdir(out_dir)
    opts = {"SGD": SGD(0.4), "Momentum": Momentum(0.1), "AdaGrad": AdaGrad(0.4), "RMSProp": RMSProp(0.1),
            "Adam": Adam(0.5), "RAdam": RAdam(0.1)}
    saved = [plot_trajectories(surface, opts, steps=30, path=out_dir / f"{key}.png")
             for key, surface in SURFACES.items()]
    saved.append(plot_trajectories(BOWL, opts, steps=5))   # no path: a default name in the current folder
    saved.append(plot_learning_rates(path=out_dir / "lr.png"))
    saved.append(plot_learning_rates({"tiny": 0.01}))
    assert [p.name for p in saved[3:]] == ["trajectories-bowl.png", "lr.png", "learning_rates.png"]
    for p in saved:
        image = mpimg.imread(p)
        assert image.shape[0] > 200 and image.shape[1] > 200
    assert plt.get_fignums() == []                         # every figure was closed
    assert not hasattr(opts["Adam"], "t_")                 # plotting ran on copies
