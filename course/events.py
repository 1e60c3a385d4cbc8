"""The callback protocol of ``course.train.fit``: events, ``Callback``, ``TrainState``, stop signals.

This module imports nothing of the package (only Paddle), so every callback module (``callbacks``,
``visualdl_log``, ``amp``, ``distributed``, ``lr_finder``) builds on it without importing
the loop. Users import these names from ``course`` (``from course import Callback``).

A callback is an object with methods named after ``EVENTS``, each called with the
``TrainState``. Raising ``StopTraining`` ends ``fit`` cleanly; ``Diverged`` (raised by
``NaNGuard``) says the loss became NaN or inf.

Callback order
--------------
``fit`` calls the callbacks of an event in ascending ``order`` (ties keep the list order).
This table is the one place the package's orders are set (``ORDER``; each class says
``order = ORDER["<its name>"]``):

===================  =====  ==========================================================
callback             order  why there
===================  =====  ==========================================================
``MixedPrecision``   -40    leaves autocast before any other after_loss; unscales the
                            gradients before ``GradientClip`` and loggers see them
``SyncMetrics``      -30    makes loss and metrics global before anyone reads them
``NaNGuard``         -20    checks the loss before anything else looks at it
``History``          -10    records loss, lr and the epoch row that later ones reuse
(default)              0    ``LRSchedule``, ``GradientClip``, user callbacks
``ProgressBar``       10    shows the loss ``History`` read
``LivePlot``          15    draws the epoch from ``History``'s row (course.live)
``Checkpoint``        20    saves after ``History`` has recorded the epoch
``VisualDLLogger``    25    logs ``History``'s readings, after ``LRSchedule`` stepped
``PrintMetrics``      30    prints ``History``'s epoch row
``BestCheckpoint``    35    saves the best epoch once the epoch is recorded
``EarlyStopping``     40    stops last, after everyone has seen the epoch
===================  =====  ==========================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import paddle

EVENTS = ("before_fit", "before_epoch", "before_batch", "after_loss",
          "after_backward", "after_batch", "after_epoch", "after_fit")

ORDER = {"MixedPrecision": -40, "SyncMetrics": -30, "NaNGuard": -20, "History": -10,
         "ProgressBar": 10, "LivePlot": 15, "Checkpoint": 20, "VisualDLLogger": 25, "PrintMetrics": 30,
         "BestCheckpoint": 35, "EarlyStopping": 40}


class StopTraining(Exception):
    """Raise from a callback to end ``fit`` after the current step; the message says why."""


class Diverged(StopTraining):
    """Raised (by ``callbacks.NaNGuard``) when the loss becomes NaN or inf."""


class Callback:
    """Base class: override any of the methods named in ``EVENTS``; lower ``order`` runs first."""

    order = 0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in vars(cls):
            if name.startswith(("before_", "after_")) and name not in EVENTS:
                raise TypeError(f"{cls.__name__}.{name} is not a training event; "
                                f"valid events: {', '.join(EVENTS)}.")


@dataclass
class TrainState:
    """What callbacks see. Tensors stay on the device; read them with ``float()`` sparingly.

    Per-epoch metrics: a callback reads them in ``after_epoch`` from ``state.history.epochs[-1]``,
    the ``History`` row of the epoch that just ended: ``epoch, train_loss, train_acc, val_loss,
    val_acc, lr, seconds`` (``val_loss`` and ``val_acc`` are NaN when ``fit`` has no ``val_loader``;
    ``math.isnan`` tells). ``History`` writes the row first (order ``ORDER["History"]``), so every
    callback of a higher order (the default 0 is) sees it; this is the one way the package's own
    callbacks read them (``PrintMetrics``, ``EarlyStopping``, ``BestCheckpoint``, ``VisualDLLogger``).
    ``train_metrics`` and ``val_metrics`` are the loop's raw results that ``History`` turns into
    that row (``SyncMetrics`` makes them global before); only those two read them.
    """

    model: Any              # a paddle.nn.Layer (or paddle.DataParallel around one)
    optimizer: Any
    loss_fn: Callable
    train_loader: Any
    val_loader: Any = None
    num_epochs: int = 1
    callbacks: list = field(default_factory=list)
    epoch: int = 0          # current epoch, 0-based
    step: int = 0           # optimizer steps taken since the start of training (survives resume)
    batch_idx: int = 0
    X: Any = None           # [B, 1, 28, 28] images of the current batch
    y: Any = None           # [B, 1] int64 labels
    y_hat: Any = None       # [B, 10] logits
    loss: Any = None        # 0-D tensor, mean loss of the batch
    train_metrics: dict = field(default_factory=dict)  # {'loss', 'acc', 'n'} of the last epoch
    val_metrics: dict = field(default_factory=dict)
    history: Any = None     # the run's History (fit always has one): its rows, losses and lr
    logged_loss: float | None = None  # set by History on the steps where it records a loss, else None
    grad_norm: Any = None   # 0-D tensor, set by GradientClip after backward (before clipping)
    # Loss scaler of mixed precision (course.amp.MixedPrecision sets one); by default a disabled
    # paddle.amp.GradScaler: scale(loss) is loss itself and step(optimizer) is optimizer.step().
    scaler: Any = field(default_factory=lambda: paddle.amp.GradScaler(enable=False))
    stop_reason: str = ""

    def fire(self, event: str) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown training event {event!r}; valid events: {', '.join(EVENTS)}.")
        for callback in self.callbacks:
            method = getattr(callback, event, None)
            if method is not None:
                method(self)
