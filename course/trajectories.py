"""Optimizer paths on 2-D test surfaces, and learning rates on a 1-D parabola.

Pictures for the optimizer and learning-rate chapters: the from-scratch optimizers of
``course.scratch`` walk a surface whose gradient is known exactly, so what you see is the
update rule alone (no data, no noise). Figures go through ``course.plots.show_or_save``:
inline in Jupyter, a PNG when headless.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .plots import show_or_save

BLOWUP = 1e10  # |x| beyond this counts as diverged: no point iterating on to inf


@dataclass(frozen=True)
class Surface:
    """A 2-D function with its analytic gradient, a start point and a window to draw."""

    name: str
    f: Callable[[np.ndarray], float]            # xy (2,) -> value
    grad: Callable[[np.ndarray], np.ndarray]    # xy (2,) -> gradient (2,)
    start: tuple
    minimum: tuple | None                       # None: no minimum (the saddle falls away forever)
    xlim: tuple
    ylim: tuple
    log_levels: bool = False                    # contour levels spaced by ratio, for steep walls


# f = 0.1 x^2 + 2 y^2: curvature 0.2 along x, 4 along y, 20 times steeper across than along.
# The classic case for momentum and per-coordinate rates: one lr must suit both axes.
BOWL = Surface("elongated bowl", lambda p: 0.1 * p[0] ** 2 + 2 * p[1] ** 2,
               lambda p: np.array([0.2 * p[0], 4 * p[1]]), start=(-5.0, -2.0), minimum=(0.0, 0.0),
               xlim=(-5.5, 1.5), ylim=(-3.0, 3.0))

# f = x^2 - y^2: a saddle at the origin. Starting almost on the x axis, the gradient along y
# is tiny, so plain SGD lingers near the saddle; optimizers that rescale per coordinate leave fast.
SADDLE = Surface("saddle", lambda p: p[0] ** 2 - p[1] ** 2,
                 lambda p: np.array([2 * p[0], -2 * p[1]]), start=(-1.5, 1e-3), minimum=None,
                 xlim=(-2.0, 2.0), ylim=(-2.0, 2.0))

# Rosenbrock: a curved, flat-bottomed valley with its minimum at (1, 1). Easy to find the
# valley, slow to walk along it.
ROSENBROCK = Surface("Rosenbrock", lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2,
                     lambda p: np.array([-2 * (1 - p[0]) - 400 * p[0] * (p[1] - p[0] ** 2),
                                         200 * (p[1] - p[0] ** 2)]),
                     start=(-1.5, 2.0), minimum=(1.0, 1.0), xlim=(-2.0, 2.0), ylim=(-1.0, 3.0),
                     log_levels=True)

SURFACES = {"bowl": BOWL, "saddle": SADDLE, "rosenbrock": ROSENBROCK}


def walk(optimizer, surface: Surface, start=None, steps: int = 50) -> np.ndarray:
    """The points an optimizer visits on ``surface``, starting point first.

    Parameters
    ----------
    optimizer : course.scratch optimizer
        Used as given, so its state (``optimizer.sum_sq_`` ...) can be inspected afterwards;
        pass a fresh one for a fresh run.
    surface : Surface
    start : pair of float, optional
        Defaults to ``surface.start``.
    steps : int

    Returns
    -------
    numpy.ndarray, shape (n + 1, 2)
        ``n <= steps``: the walk stops early, at the last finite point, once a coordinate
        leaves ``BLOWUP`` or stops being a number, so a diverging run returns instead of crashing.
    """
    xy = np.array(surface.start if start is None else start, dtype=np.float64)
    path = [xy.copy()]
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected below, not warned about
        for _ in range(steps):
            params = {"xy": xy.copy()}
            optimizer.step(params, {"xy": surface.grad(xy)})
            if not (np.all(np.isfinite(params["xy"])) and np.all(np.abs(params["xy"]) < BLOWUP)):
                break
            xy = params["xy"]
            path.append(xy.copy())
    return np.array(path)


def plot_trajectories(surface: Surface, optimizers: dict, steps: int = 50, start=None, path=None):
    """Several optimizers' paths over the contour lines of ``surface``.

    ``optimizers`` maps a legend label to a ``course.scratch`` optimizer; each is run on a
    copy, so the same dict draws the same picture twice. Returns the saved PNG's path (or None).
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5))
    xs = np.linspace(*surface.xlim, 300)
    ys = np.linspace(*surface.ylim, 300)
    X, Y = np.meshgrid(xs, ys)
    Z = surface.f(np.stack([X, Y]))
    # Rosenbrock spans 0..2500: log-spaced levels show the valley floor, linear ones would not.
    levels = np.geomspace(max(Z.min(), 1e-2), Z.max(), 25) if surface.log_levels else 25
    ax.contour(X, Y, Z, levels=levels, colors="0.75", linewidths=0.8)
    for label, optimizer in optimizers.items():
        points = walk(copy.deepcopy(optimizer), surface, start, steps)
        n = len(points) - 1
        note = f"{n} steps" if n == steps else f"blew up after {n} steps"  # walk() stopped it early
        ax.plot(points[:, 0], points[:, 1], "o-", markersize=3, linewidth=1.2, label=f"{label} ({note})")
    if surface.minimum is not None:
        ax.plot(*surface.minimum, "k*", markersize=12, label="minimum")
    ax.set(xlim=surface.xlim, ylim=surface.ylim, xlabel="x", ylabel="y", title=f"{surface.name}: {steps} steps")
    ax.legend(loc="best", fontsize="small")
    return show_or_save(fig, path, f"trajectories-{surface.name.split()[-1].lower()}.png")


def gradient_descent_1d(lr: float, x0: float = 4.0, steps: int = 20):
    """Gradient descent on the parabola f(x) = x^2 (gradient 2x, minimum at 0).

    Each step multiplies x by ``1 - 2 lr``: it shrinks for 0 < lr < 1 (zig-zagging when
    lr > 0.5) and grows for lr > 1.

    Returns
    -------
    xs : numpy.ndarray
        The iterates, ``x0`` first; fewer than ``steps + 1`` if the run blew up.
    verdict : str
        ``"converged"`` (within 1e-3 of 0, relative to ``|x0|``), ``"converging"`` (closer than it
        started, not there yet) or ``"diverged"`` (farther away, or beyond ``BLOWUP`` / not finite).
    """
    x = np.float64(x0)
    xs = [x]
    blew_up = False
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            x = x - lr * 2 * x
            if not (np.isfinite(x) and abs(x) < BLOWUP):
                blew_up = True
                break
            xs.append(x)
    xs = np.array(xs)
    if blew_up or abs(xs[-1]) > abs(x0):
        verdict = "diverged"
    elif abs(xs[-1]) <= 1e-3 * abs(x0):
        verdict = "converged"
    else:
        verdict = "converging"
    return xs, verdict


DEFAULT_LRS = {"too small": 0.05, "good": 0.4, "too large": 0.9, "diverging": 1.05}


def plot_learning_rates(lrs: dict | None = None, x0: float = 4.0, steps: int = 20, path=None):
    """One panel per learning rate: gradient descent's iterates on f(x) = x^2.

    ``lrs`` maps a panel title to a learning rate (default ``DEFAULT_LRS``: too small, good,
    too large but still converging, diverging). Returns the saved PNG's path (or None).
    """
    import matplotlib.pyplot as plt

    lrs = DEFAULT_LRS if lrs is None else lrs
    fig, axes = plt.subplots(1, len(lrs), figsize=(3.6 * len(lrs), 3.6), sharey=True, squeeze=False)
    reach = 1.5 * abs(x0)
    grid = np.linspace(-reach, reach, 200)
    for ax, (title, lr) in zip(axes[0], lrs.items()):
        xs, verdict = gradient_descent_1d(lr, x0, steps)
        ax.plot(grid, grid ** 2, color="0.6")
        shown = xs[np.abs(xs) <= reach]  # a diverging run leaves the window: draw what fits
        ax.plot(shown, shown ** 2, "o-", color="#e4007f", markersize=4, linewidth=1)
        ax.plot(xs[0], xs[0] ** 2, "ks", markersize=6)
        ax.set(title=f"{title}: lr={lr:g}\n{verdict} after {len(xs) - 1} steps, x={xs[-1]:.3g}",
               xlabel="x", ylim=(-0.5, reach ** 2))
    axes[0][0].set_ylabel("f(x) = x²")
    fig.tight_layout()
    return show_or_save(fig, path, "learning_rates.png")
