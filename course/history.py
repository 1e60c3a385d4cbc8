"""``History``: the record every ``fit`` keeps (the course's ``loss_list`` and one row per epoch).

It is the one callback the loop itself needs (``fit`` adds one and returns it), so it lives
below the loop, beside the callback protocol; import it from ``course`` (``from course import History``).
"""
from __future__ import annotations

import csv
import json
import math
import time

import paddle

from .events import ORDER, Callback


class History(Callback):
    """Records the course's ``loss_list`` and one row of metrics per epoch.

    ``losses``: mean training loss over each window of ``log_every`` batches
    (the course records one batch's loss every 200 batches; a window mean is
    the same curve with less noise). ``epochs``: dicts with ``epoch, train_loss,
    train_acc, val_loss, val_acc, lr, seconds``; ``lr`` is the rate the epoch's last
    batch was trained with. ``last_lr``: the rate of the latest batch (loggers read it here
    rather than asking the optimizer again).

    ``fit`` always has one (``state.history``); the run's other callbacks read its rows.
    """

    order = ORDER["History"]  # early, so later callbacks see ``state.logged_loss`` and ``last_lr``

    def __init__(self, log_every: int = 200):
        self.log_every = log_every
        self.losses: list[float] = []
        self.loss_steps: list[int] = []
        self.epochs: list[dict] = []
        self.stop_reason = ""   # set by fit when training ended early (StopTraining, Ctrl-C)
        self.diverged = False   # set by fit when a NaNGuard stopped it
        self.last_lr = None     # the rate of the latest trained batch

    def before_fit(self, state):
        self._window, self._count = paddle.zeros([]), 0

    def before_epoch(self, state):
        self._started = time.perf_counter()

    def after_batch(self, state):
        # The rate this batch was trained with: History runs before LRSchedule steps it.
        self.last_lr = float(state.optimizer.get_lr())
        self._window += state.loss.detach()
        self._count += 1
        state.logged_loss = None
        if self._count == self.log_every:
            state.logged_loss = float(self._window) / self._count  # the one host sync per window
            self.losses.append(state.logged_loss)
            self.loss_steps.append(state.step)
            self._window, self._count = paddle.zeros([]), 0

    def after_epoch(self, state):
        row = {"epoch": state.epoch + 1,
               "train_loss": state.train_metrics["loss"], "train_acc": state.train_metrics["acc"],
               "val_loss": state.val_metrics.get("loss", math.nan),
               "val_acc": state.val_metrics.get("acc", math.nan),
               "lr": self.last_lr,  # the rate of the epoch's last batch
               "seconds": time.perf_counter() - self._started}
        self.epochs.append(row)

    # --------------------------------------------------------------- I/O, resume
    def state_dict(self) -> dict:
        return {"log_every": self.log_every, "losses": self.losses, "loss_steps": self.loss_steps,
                "epochs": self.epochs}

    def set_state_dict(self, saved: dict) -> None:
        self.losses, self.loss_steps = list(saved["losses"]), list(saved["loss_steps"])
        self.epochs = [dict(row) for row in saved["epochs"]]

    def save_csv(self, path) -> None:
        if not self.epochs:
            return
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.epochs[0]))
            writer.writeheader()
            writer.writerows(self.epochs)

    def __repr__(self):
        last = self.epochs[-1] if self.epochs else {}
        return f"History(epochs={len(self.epochs)}, losses={len(self.losses)}, last={json.dumps(last)})"
