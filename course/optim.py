"""Optimizers and learning-rate schedules by name, over ``paddle.optimizer``.

Every name here is also a choice of ``--optimizer`` / ``--schedule`` (``course.config``).
A wrong name or value raises ``ConfigError`` naming the valid choices or range.
``course.scratch`` has a from-scratch NumPy twin of each optimizer.
"""
from __future__ import annotations

import math
import numbers

import paddle

from . import compat
from .config import OPTIMIZERS, REGULARIZERS, SCHEDULES
from .errors import ConfigError

# Schedule options (keyword arguments of make_scheduler) and the schedules that read them;
# giving an option to a schedule that ignores it is an error, not a silent no-op.
SCHEDULE_OPTIONS = {"decay": ("inverse_time",), "gamma": ("step", "exponential"), "warmup_steps": ("warmup",)}


def _number(name: str, value, low: float = 0.0, high: float = math.inf, closed: str = "") -> float:
    """``value`` as a float if it is a real number in the range, else a ConfigError naming the range.

    The range is open unless ``closed`` contains "low" and/or "high".
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        above = value >= low if "low" in closed else value > low
        below = value <= high if "high" in closed else value < high
        if above and below:
            return float(value)
    interval = f"{'[' if 'low' in closed else '('}{low:g}, {high:g}{']' if 'high' in closed else ')'}"
    raise ConfigError(f"{name} must be a number in {interval}, got {value!r}.")


def _count(name: str, value) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}.")


def make_optimizer(name: str, lr, parameters, weight_decay: float = 0.0, momentum: float = 0.9,
                   regularizer: str = "l2"):
    """A ``paddle.optimizer`` instance, with Paddle's defaults for everything not named here.

    Parameters
    ----------
    name : str
        One of ``sgd, momentum, adagrad, rmsprop, adam, adamw, radam`` (``radam``: Paddle 3.0 or later;
        on Paddle 2.6 a ``ConfigError`` that says so).
    lr : float or paddle.optimizer.lr.LRScheduler
        A positive learning rate, or a schedule from ``make_scheduler``.
    parameters : list of paddle Tensors
        Usually ``model.parameters()``.
    weight_decay : float, default 0
        Coefficient of the weight penalty on every parameter. Its gradient is added to the
        parameter's gradient before the update (decoupled, subtracted from the weights, for ``adamw``).
        A parameter whose ``ParamAttr`` has its own regularizer keeps that one instead (Paddle's rule).
    momentum : float, default 0.9
        The momentum coefficient, in [0, 1); read by ``momentum`` only.
    regularizer : {"l2", "l1"}, default "l2"
        ``l2``: penalty ``weight_decay / 2 * sum(w ** 2)``, gradient ``weight_decay * w`` (``L2Decay``);
        ``l1``: penalty ``weight_decay * sum(|w|)``, gradient ``weight_decay * sign(w)`` (``L1Decay``).
        ``adamw`` supports only ``l2``.
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}.")
    check_available(name)
    if not isinstance(lr, paddle.optimizer.lr.LRScheduler):
        lr = _number("lr", lr)
    weight_decay = _number("weight_decay", weight_decay, closed="low")
    if name == "momentum":  # the others ignore it, as before: no error for a value they never read
        momentum = _number("momentum", momentum, high=1.0, closed="low")
    if regularizer not in REGULARIZERS:
        raise ConfigError(f"unknown regularizer {regularizer!r}; choose one of: {', '.join(REGULARIZERS)}.")
    if name == "adamw" and regularizer != "l2":
        raise ConfigError("adamw decouples an L2 decay and cannot apply L1; use --regularizer l2 with adamw, "
                          "or L1 with another optimizer (e.g. adam).")
    # None, not 0.0: Paddle then skips the regularizer entirely.
    decay = None
    if weight_decay:
        decay = (paddle.regularizer.L1Decay if regularizer == "l1" else paddle.regularizer.L2Decay)(weight_decay)
    if name == "sgd":
        return paddle.optimizer.SGD(lr, parameters=parameters, weight_decay=decay)
    if name == "momentum":
        return paddle.optimizer.Momentum(lr, momentum=momentum, parameters=parameters, weight_decay=decay)
    if name == "adagrad":
        return paddle.optimizer.Adagrad(lr, parameters=parameters, weight_decay=decay)
    if name == "rmsprop":
        return paddle.optimizer.RMSProp(lr, parameters=parameters, weight_decay=decay)
    if name == "adam":
        return paddle.optimizer.Adam(lr, parameters=parameters, weight_decay=decay)
    if name == "radam":
        return paddle.optimizer.RAdam(lr, parameters=parameters, weight_decay=decay)
    # adamw: its own weight_decay default is 0.01; pass ours (0.0 = off) explicitly.
    return paddle.optimizer.AdamW(lr, parameters=parameters, weight_decay=weight_decay)


def check_available(name: str) -> None:
    """Raise a one-line ``ConfigError`` when the installed Paddle lacks optimizer ``name``
    (``radam``: Paddle 3.0 and later; Paddle 2.6 has no ``paddle.optimizer.RAdam``)."""
    if name in compat.FEATURES:
        compat.require(name, what=f"optimizer {name!r}")


def make_scheduler(name: str, lr: float, steps_per_epoch: int, num_epochs: int, *,
                   decay: float | None = None, gamma: float | None = None, warmup_steps: int | None = None):
    """The learning rate for ``make_optimizer``: a float (``constant``) or an ``LRScheduler``
    stepped once per batch (wrap it in ``course.callbacks.LRSchedule``).

    With ``k`` the number of batches already trained, ``E = steps_per_epoch`` and
    ``T = steps_per_epoch * num_epochs``, the rate used for batch ``k`` is:

    ``constant``
        ``lr``.
    ``onecycle``
        warm up from lr/25 to ``lr`` over the first 30% of steps, then cosine-anneal to 1e-4 x lr.
    ``cosine``
        ``lr * (1 + cos(pi * k / T)) / 2``: from ``lr`` to 0.
    ``step``
        ``lr * gamma ** (k // E)``: a stair, x``gamma`` (default 0.8) at each epoch's end.
    ``inverse_time``
        ``lr / (1 + decay * k)``; ``decay`` defaults to ``1 / E``, so the rate is lr/2 after
        one epoch, lr/3 after two, ... (the 1/t decay of ``course.scratch.SGD``).
    ``exponential``
        ``lr * gamma ** (k / E)``: a smooth curve through x``gamma`` (default 0.5) per epoch.
    ``warmup``
        ``lr * k / W`` for ``k < W``, then ``lr``: a linear warm-up from 0, then constant.
        ``W = warmup_steps`` defaults to 10% of ``T`` (at least 1). Constant afterwards on purpose,
        so the warm-up's effect can be seen on its own (``onecycle`` is warm-up + cosine).
    """
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}.")
    given = {"decay": decay, "gamma": gamma, "warmup_steps": warmup_steps}
    for option, value in given.items():
        if value is not None and name not in SCHEDULE_OPTIONS[option]:
            raise ConfigError(f"{option} applies to the schedule(s) {', '.join(SCHEDULE_OPTIONS[option])}, "
                              f"not {name!r}.")
    lr = _number("lr", lr)
    steps_per_epoch = _count("steps_per_epoch", steps_per_epoch)
    total = steps_per_epoch * _count("num_epochs", num_epochs)
    L = paddle.optimizer.lr
    if name == "constant":
        return lr
    if name == "onecycle":
        return L.OneCycleLR(max_learning_rate=lr, total_steps=total, end_learning_rate=lr * 1e-4)
    if name == "cosine":
        return L.CosineAnnealingDecay(lr, T_max=total)
    if name == "step":
        gamma = 0.8 if gamma is None else _number("gamma", gamma, high=1.0, closed="high")
        return L.StepDecay(lr, step_size=steps_per_epoch, gamma=gamma)
    if name == "inverse_time":
        decay = 1.0 / steps_per_epoch if decay is None else _number("decay", decay, closed="low")
        return L.InverseTimeDecay(lr, gamma=decay)
    if name == "exponential":
        gamma = 0.5 if gamma is None else _number("gamma", gamma, high=1.0, closed="high")
        # Paddle multiplies by its gamma at every step(); we step per batch, so take the E-th root.
        return L.ExponentialDecay(lr, gamma=gamma ** (1.0 / steps_per_epoch))
    # warmup
    warmup_steps = max(1, round(0.1 * total)) if warmup_steps is None else _count("warmup_steps", warmup_steps)
    if warmup_steps > total:
        raise ConfigError(f"warmup_steps must be at most the {total} steps of the run, got {warmup_steps}.")
    return L.LinearWarmup(lr, warmup_steps=warmup_steps, start_lr=0.0, end_lr=lr)
