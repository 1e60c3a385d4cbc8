"""Optimizers and learning-rate schedules by name, over ``paddle.optimizer``.

Used by: ``python -m course train`` and notebooks/00_quickstart.ipynb.
"""
from __future__ import annotations

import paddle

from .config import OPTIMIZERS, SCHEDULES
from .errors import ConfigError


def make_optimizer(name: str, lr, parameters, weight_decay: float = 0.0, momentum: float = 0.9):
    """A ``paddle.optimizer`` instance. ``lr`` is a float or an ``LRScheduler``.

    ``weight_decay`` is L2 decay added to the gradient (decoupled for ``adamw``).
    """
    decay = weight_decay or None
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
    if name == "adamw":
        return paddle.optimizer.AdamW(lr, parameters=parameters, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}.")


def make_scheduler(name: str, lr: float, steps_per_epoch: int, num_epochs: int):
    """The learning rate for ``make_optimizer``: a float (``constant``) or an ``LRScheduler``
    stepped once per batch (wrap it in ``course.callbacks.LRSchedule``).

    ``onecycle``: warm up from lr/25 to ``lr`` over the first 30% of steps, then
    cosine-anneal to 1e-4 x lr. ``cosine``: cosine from ``lr`` to 0. ``step``: x0.8 per epoch.
    """
    total = steps_per_epoch * num_epochs
    if name == "constant":
        return lr
    if name == "onecycle":
        return paddle.optimizer.lr.OneCycleLR(max_learning_rate=lr, total_steps=total,
                                              end_learning_rate=lr * 1e-4)
    if name == "cosine":
        return paddle.optimizer.lr.CosineAnnealingDecay(lr, T_max=total)
    if name == "step":
        return paddle.optimizer.lr.StepDecay(lr, step_size=steps_per_epoch, gamma=0.8)
    raise ConfigError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}.")
