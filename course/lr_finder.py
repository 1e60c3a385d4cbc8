"""Learning-rate range test ("LR finder"): raise the learning rate exponentially over a few
hundred steps, record the loss, stop when it explodes, suggest a rate.

The suggestion is the rate where the smoothed loss falls fastest (steepest negative slope
against log lr) before it reaches its minimum: safely below the rate at which the loss
starts to climb. Only the part before the minimum counts, because a loss that has
blown up (or a network whose ReLUs died, stuck at ln 10 = 2.30) can "fall" again afterwards.
The test sweeps the learning rate of the optimizer it is given (an object, as ``fit`` takes);
the model's parameters and the optimizer's state and rate are restored afterwards, so the same
model and optimizer can then train from where they started.
"""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .events import Callback, StopTraining
from .optim import make_optimizer
from .train import fit


class LRRangeTest(Callback):
    """Sets the learning rate before each batch and records the loss after it.

    ``lr_k = start_lr * (end_lr / start_lr) ** (k / (num_steps - 1))``; stops after
    ``num_steps`` steps, or when the smoothed loss exceeds ``diverge_factor`` x its minimum
    or becomes non-finite. 1.5 (not the 4 often quoted) also catches a network whose ReLUs
    died, which sits at ln 10 = 2.30 rather than exploding (measured on this CNN: SGD, seed 0).
    """

    def __init__(self, start_lr=1e-6, end_lr=1.0, num_steps=200, smoothing=0.9, diverge_factor=1.5):
        if not 0 < start_lr < end_lr:
            raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}.")
        self.start_lr, self.end_lr, self.num_steps = start_lr, end_lr, num_steps
        self.smoothing, self.diverge_factor = smoothing, diverge_factor
        self.lrs, self.losses, self.smoothed = [], [], []

    def before_fit(self, state):
        self.lrs, self.losses, self.smoothed, self._avg = [], [], [], 0.0  # per fit

    def lr_at(self, k: int) -> float:
        return self.start_lr * (self.end_lr / self.start_lr) ** (k / max(self.num_steps - 1, 1))

    def before_batch(self, state):
        if len(self.lrs) == self.num_steps:
            raise StopTraining(f"range test finished after {self.num_steps} steps")
        self.lrs.append(self.lr_at(len(self.lrs)))
        state.optimizer.set_lr(self.lrs[-1])

    def after_loss(self, state):
        loss = float(state.loss)  # every step is a data point: one host read per step is the job
        self.losses.append(loss)
        # Exponential moving average, bias-corrected like Adam's so early points are not pulled to 0.
        raw_avg = self.smoothing * self._avg + (1 - self.smoothing) * loss
        self._avg = raw_avg
        smoothed = raw_avg / (1 - self.smoothing ** len(self.losses))
        self.smoothed.append(smoothed if math.isfinite(loss) else math.inf)
        best = min(self.smoothed)
        if not math.isfinite(loss) or smoothed > self.diverge_factor * best:
            raise StopTraining(f"loss exploded at lr {self.lrs[-1]:.3g} (smoothed loss {smoothed:.3g}, "
                               f"best {best:.3g})")


@dataclass
class LRFinderResult:
    lrs: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    smoothed: list = field(default_factory=list)
    suggestion: float = math.nan   # steepest descent of the smoothed loss
    min_loss_lr: float = math.nan  # where the smoothed loss is lowest (the edge: too large to train at)
    stop_reason: str = ""

    def __repr__(self):
        return (f"LRFinderResult(steps={len(self.lrs)}, suggestion={self.suggestion:.3g}, "
                f"min_loss_lr={self.min_loss_lr:.3g}, stop_reason={self.stop_reason!r})")


def suggest_lr(lrs, smoothed, skip_start: int = 10) -> float:
    """The rate at the steepest descent of the smoothed loss against log lr, looking only at
    the steps before the smoothed loss is lowest (and past the first ``skip_start`` noisy ones)."""
    lrs, smoothed = np.asarray(lrs, float), np.asarray(smoothed, float)
    finite = np.isfinite(smoothed)
    lrs, smoothed = lrs[finite], smoothed[finite]
    if len(lrs) == 0:
        return math.nan
    lowest = int(np.argmin(smoothed))
    start = skip_start if lowest > skip_start + 3 else 0
    lrs, smoothed = lrs[start:lowest + 1], smoothed[start:lowest + 1]
    if len(lrs) < 3:
        return math.nan
    slopes = np.gradient(smoothed, np.log(lrs))
    return float(lrs[int(np.argmin(slopes))])


def lr_range_test(model, train_loader, optimizer, start_lr=1e-6, end_lr=1.0, num_steps=200, loss_fn=None,
                  restore=True, optimizer_options=None, **options) -> LRFinderResult:
    """Run the range test: train ``model`` with ``optimizer``, its learning rate set before
    every step (``optimizer.set_lr``) from ``start_lr`` up to ``end_lr``. Notebook 2.6.1.

    Parameters
    ----------
    model, train_loader, optimizer
        As for ``course.fit``: ``optimizer`` is a ``paddle.optimizer`` optimizer over
        ``model.parameters()``, e.g. ``paddle.optimizer.Adam(parameters=model.parameters())``
        or ``course.make_optimizer("sgd", 0.01, model.parameters())``. It must have a float
        learning rate: Paddle refuses ``set_lr`` when an ``LRScheduler`` is attached (a
        ``ConfigError`` says so). Its own rate does not matter during the test. A name
        (``"adam"``, with ``optimizer_options`` for ``make_optimizer``) still works for one
        release, with a ``DeprecationWarning``.
    restore : bool, default True
        Put back the model's parameters, the optimizer's state (accumulators such as Adam's
        moments; a fresh optimizer stays fresh) and its learning rate afterwards, so the same
        model and optimizer can then train from where they were. ``False`` leaves both as the
        test left them (the learning rate at the last rate tried).
    options
        Go to ``LRRangeTest`` (``smoothing``, ``diverge_factor``).
    """
    if isinstance(optimizer, str):
        warnings.warn(f"lr_range_test(model, loader, {optimizer!r}) takes an optimizer object now, as fit does: "
                      f"lr_range_test(model, loader, course.make_optimizer({optimizer!r}, lr, model.parameters())). "
                      "Names stop working in the next release.", DeprecationWarning, stacklevel=2)
        optimizer = make_optimizer(optimizer, start_lr, model.parameters(), **(optimizer_options or {}))
    elif optimizer_options:
        raise ConfigError("optimizer_options only go with an optimizer name; give them to the optimizer you "
                          "build (e.g. paddle.optimizer.Momentum(momentum=0.9, parameters=...)).")
    elif not callable(getattr(optimizer, "set_lr", None)):
        raise ConfigError(f"optimizer must be a paddle.optimizer optimizer over model.parameters(), as for fit, "
                          f"got {type(optimizer).__name__}.")
    saved_lr = optimizer.get_lr()
    try:
        optimizer.set_lr(saved_lr)  # changes nothing; Paddle (2.6 and 3.x) refuses it when an LRScheduler is attached
    except RuntimeError as err:
        raise ConfigError("lr_range_test sets the learning rate itself (optimizer.set_lr), which Paddle refuses "
                          "for an optimizer built with an LRScheduler: build it with a float learning rate, e.g. "
                          "paddle.optimizer.Adam(learning_rate=0.001, parameters=model.parameters()), and give "
                          "the schedule to the optimizer you train with afterwards.") from err
    saved_model = copy.deepcopy(model.state_dict()) if restore else None
    saved_state = copy.deepcopy(optimizer.state_dict()) if restore else None
    swept = optimizer
    if restore and not saved_state:
        swept = _fresh_twin(optimizer, model)
    finder = LRRangeTest(start_lr, end_lr, num_steps, **options)
    epochs = math.ceil(num_steps / max(len(train_loader), 1)) + 1
    try:
        history = fit(model, train_loader, swept, epochs, loss_fn=loss_fn, callbacks=[finder])
    finally:
        if restore:
            model.set_state_dict(saved_model)
            if swept is optimizer:
                optimizer.set_state_dict(saved_state)
            optimizer.set_lr(saved_lr)
    result = LRFinderResult(finder.lrs[:len(finder.losses)], finder.losses, finder.smoothed,
                            stop_reason=history.stop_reason)
    result.suggestion = suggest_lr(result.lrs, result.smoothed)
    finite = [(s, lr) for s, lr in zip(result.smoothed, result.lrs) if math.isfinite(s)]
    result.min_loss_lr = min(finite)[1] if finite else math.nan
    return result


def _fresh_twin(optimizer, model):
    """For an optimizer without state: a copy over the same parameters to run the test with.

    A fresh optimizer's state is empty, and Paddle's ``set_state_dict`` cannot empty it again
    once the test has created accumulators (it asserts each one is in the dict); a copy made
    before the first step (``deepcopy``, the parameters shared, not copied) leaves the
    original fresh. After its first step an optimizer holds Paddle program objects that
    cannot be copied: then it has no accumulators to restore (SGD) and is used itself.
    """
    try:
        return copy.deepcopy(optimizer, memo={id(p): p for p in model.parameters()})
    except TypeError:  # "cannot pickle 'paddle.base.libpaddle.ProgramDesc' object": stepped before
        return optimizer


def plot_lr_finder(result: LRFinderResult, path=None):
    """Loss against learning rate (log scale), the suggestion marked."""
    import matplotlib.pyplot as plt

    from .plots import COURSE_PINK, show_or_save  # loads matplotlib: only when plotting

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(result.lrs, result.losses, color="0.75", label="loss per step")
    ax.plot(result.lrs, result.smoothed, color=COURSE_PINK, label="smoothed")
    if math.isfinite(result.suggestion):
        ax.axvline(result.suggestion, color="k", ls="--", label=f"suggested lr {result.suggestion:.2g}")
    finite = [s for s in result.smoothed if math.isfinite(s)]
    if finite:  # from the minimum up to the starting loss (or 2x the minimum): hide the blow-up
        ax.set_ylim(min(finite) * 0.9, min(max(finite), max(finite[0], 2 * min(finite))) * 1.1)
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="learning-rate range test")
    ax.legend()
    return show_or_save(fig, path, "lr_finder.png")
