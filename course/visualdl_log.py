"""VisualDL logging as a callback. ``visualdl`` is imported only when a run logs.

Every run writes into its own directory (``<run_dir>/vdl``), so runs appear
side by side in one dashboard: ``visualdl --logdir runs``.
"""
from __future__ import annotations

import math

from .train import Callback


class VisualDLLogger(Callback):
    """Scalars: ``train/loss`` every ``log_every`` batches (x = step); per epoch
    ``epoch/train_loss, epoch/train_acc, epoch/val_loss, epoch/val_acc, epoch/lr`` (x = epoch)."""

    order = 25

    def __init__(self, logdir):
        self.logdir, self.writer = str(logdir), None

    def before_fit(self, state):
        from visualdl import LogWriter

        self.writer = LogWriter(logdir=self.logdir)

    def after_batch(self, state):
        if state.logged_loss is not None:  # reuse History's reading: no extra device sync
            self.writer.add_scalar("train/loss", state.logged_loss, state.step)

    def after_epoch(self, state):
        values = {"train_loss": state.train_metrics["loss"], "train_acc": state.train_metrics["acc"],
                  "val_loss": state.val_metrics.get("loss", math.nan),
                  "val_acc": state.val_metrics.get("acc", math.nan), "lr": float(state.optimizer.get_lr())}
        for name, value in values.items():
            if not math.isnan(value):
                self.writer.add_scalar(f"epoch/{name}", value, state.epoch + 1)
        self.writer.flush()

    def after_fit(self, state):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
