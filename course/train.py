"""The training loop: ``train_one_epoch``, ``evaluate`` and ``fit``.

The loop is the lesson's loop, six steps in plain sight (forward, loss,
backward, step, clear gradients, bookkeeping). Everything optional (progress
bar, history, VisualDL, checkpoints, LR schedule, early stopping ...) is a
callback: an object with methods named after the events of ``course.events`` (which
also holds the table of callback order), each receiving the ``TrainState``. Raising
``StopTraining`` from a callback ends ``fit`` cleanly; so does Ctrl-C (KeyboardInterrupt),
which returns the history so far.

``state.scaler`` is Paddle's ``GradScaler``. Unless float16 mixed precision is on
(``course.amp``) it is disabled: ``scaler.scale(loss)`` is ``loss`` and
``scaler.step(optimizer)`` is ``optimizer.step()``. Under ``paddle.distributed.launch`` the same loop runs in every
process on a ``DataParallel`` model and a sharded loader (``course.distributed``).
"""
from __future__ import annotations

from typing import Callable

import paddle

from .losses import cross_entropy

from .events import Diverged, StopTraining, TrainState
from .history import History
from .tensors import correct_count, inference


def train_one_epoch(state: TrainState) -> dict:
    """One pass over ``state.train_loader``; returns ``{'loss', 'acc', 'n'}`` over every sample seen."""
    model, optimizer, scaler = state.model, state.optimizer, state.scaler
    model.train()
    loss_sum, correct, seen = paddle.zeros([]), paddle.zeros([], dtype="int64"), 0
    for state.batch_idx, (X, y) in enumerate(state.train_loader):
        state.X, state.y = X, y
        state.fire("before_batch")
        state.y_hat = model(state.X)                     # 1. forward: logits [B, 10]
        state.loss = state.loss_fn(state.y_hat, state.y)  # 2. mean loss of the batch
        state.fire("after_loss")
        scaler.scale(state.loss).backward()              # 3. gradients (float16 AMP: of loss x loss scale)
        state.fire("after_backward")
        scaler.step(optimizer)                           # 4. update (AMP: skipped if a gradient overflowed)
        scaler.update()                                  #    float16 AMP: adapt the loss scale
        optimizer.clear_grad()                           # 5. reset gradients
        n = state.X.shape[0]                             # 6. bookkeeping, on the device (no sync)
        loss_sum += state.loss.detach() * n
        correct += correct_count(state.y_hat.detach(), state.y)
        seen += n
        state.step += 1
        state.fire("after_batch")
    # Sample-weighted over the epoch: one host sync per epoch, not per step.
    return {"loss": float(loss_sum) / max(seen, 1), "acc": int(correct) / max(seen, 1), "n": seen}


def evaluate(model: paddle.nn.Layer, loader, loss_fn: Callable | None = None) -> dict:
    """Mean loss and accuracy over every sample of ``loader`` (not a mean of batch means).

    Runs in eval mode without gradients and restores the model's previous mode.
    Returns ``{'loss', 'acc', 'n'}``.
    """
    loss_fn = loss_fn or cross_entropy
    loss_sum, correct, seen = paddle.zeros([]), paddle.zeros([], dtype="int64"), 0
    with inference(model):
        for X, y in loader:
            y_hat = model(X)
            n = X.shape[0]
            loss_sum += loss_fn(y_hat, y) * n
            correct += correct_count(y_hat, y)
            seen += n
    return {"loss": float(loss_sum) / max(seen, 1), "acc": int(correct) / max(seen, 1), "n": seen}


def fit(model, train_loader, optimizer, num_epochs: int = 1, *, val_loader=None,
        loss_fn: Callable | None = None, callbacks=(), start_epoch: int = 0, start_step: int = 0):
    """Train for ``num_epochs`` epochs; returns the ``History`` callback's record.

    Parameters
    ----------
    model, train_loader, optimizer
        A ``paddle.nn.Layer``, an iterable of ``(X, y)`` batches, a ``paddle.optimizer`` optimizer.
    val_loader
        Evaluated after every epoch when given (``state.val_metrics``).
    loss_fn
        ``loss_fn(y_hat, y) -> mean loss``; default ``course.losses.cross_entropy`` (``F.cross_entropy``).
    callbacks
        Extra callbacks. A ``History`` is added unless one is passed; either way it is returned.
    start_epoch, start_step
        Where a resumed run continues (``course.checkpoint.resume`` supplies them).
    """
    history = next((c for c in callbacks if isinstance(c, History)), None) or History()
    callbacks = sorted({id(c): c for c in [history, *callbacks]}.values(), key=lambda c: c.order)
    state = TrainState(model, optimizer, loss_fn or cross_entropy, train_loader, val_loader,
                       num_epochs, callbacks, epoch=start_epoch, step=start_step, history=history)
    try:
        state.fire("before_fit")
        for state.epoch in range(start_epoch, num_epochs):
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(state.epoch)  # shuffling depends on (seed, epoch): resumable
            state.fire("before_epoch")
            state.train_metrics = train_one_epoch(state)
            state.val_metrics = evaluate(model, val_loader, state.loss_fn) if val_loader is not None else {}
            state.fire("after_epoch")
    except StopTraining as stop:
        state.stop_reason = str(stop) or "stopped by a callback"
        history.diverged = isinstance(stop, Diverged)
    except KeyboardInterrupt:
        state.stop_reason = "interrupted (Ctrl-C / KeyboardInterrupt)"
        print(f"\nTraining interrupted at epoch {state.epoch + 1}, step {state.step}; "
              "returning the history so far.")
    finally:
        state.fire("after_fit")
    history.stop_reason = state.stop_reason
    return history
