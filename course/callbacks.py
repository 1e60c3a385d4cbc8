"""Callbacks for ``course.train.fit``: progress bar, epoch printout, LR schedule, NaN guard,
checkpoints, early stopping, gradient clipping.

Each is small and optional. ``History`` (``course.history``), the one callback ``fit`` always adds
(``state.history``), lives below the loop.
Their ``order`` values come from the one table in ``course.events``.
Host syncs are rare on purpose: the loss is read from the device once every
``log_every`` batches (by ``History``), and others reuse that reading.
"""
from __future__ import annotations

import math
import time
import sys

import paddle

from .checkpoint import save_checkpoint
from .events import ORDER, Callback, Diverged, StopTraining
from .tensors import global_grad_norm


def _in_jupyter() -> bool:
    """True inside a Jupyter kernel (IPython's kernel app), False in a terminal, a script or IPython's console."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class ProgressBar(Callback):
    """A tqdm bar per epoch (a widget in Jupyter, text in a terminal) showing the latest logged loss.

    Without tqdm (a bare Paddle + NumPy + matplotlib environment, as AI Studio's kernel may be)
    it prints one plain line per epoch instead (the epoch's losses and accuracies, batches,
    seconds), the first one saying ``pip install tqdm`` draws the bar; when the run also has
    ``PrintMetrics`` (the CLI), that line already reports each epoch and the fallback prints nothing.

    Parameters
    ----------
    enabled : bool or None, default None
        ``None``: draw the bar in Jupyter and when ``file`` is a terminal, and nothing when it is
        a file or a pipe (``make demo > log``, nohup, CI), where every redraw would be one more
        carriage-return frame in the log; ``PrintMetrics``' per-epoch lines stay. ``True`` / ``False``:
        always / never.
    file : text stream, default ``sys.stderr``
        Where a text bar goes (the plain fallback line: ``sys.stdout`` by default).
    """

    order = ORDER["ProgressBar"]

    def __init__(self, enabled: bool | None = None, file=None):
        self.enabled, self.file = enabled, file
        self.bar = None
        self._plain_started = None  # perf_counter at the epoch's start, in the plain fallback
        self._hinted = False

    @staticmethod
    def _tqdm():
        """``tqdm.auto.tqdm``, or ``None`` when tqdm is not installed."""
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm

    def _wanted(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        if self._tqdm() is not None:
            from tqdm import autonotebook

            if autonotebook.tqdm.__module__ == "tqdm.notebook":  # in Jupyter: tqdm.auto draws a widget
                return True
        elif _in_jupyter():
            return True
        isatty = getattr(self.file or sys.stderr, "isatty", None)
        return bool(isatty and isatty())

    def before_epoch(self, state):
        if not self._wanted():
            return
        tqdm = self._tqdm()
        if tqdm is None:
            if not any(isinstance(callback, PrintMetrics) for callback in state.callbacks):
                self._plain_started = time.perf_counter()
            return
        # Redraw at most twice a second: at tqdm's default (10 per second) a 60 ms step redraws
        # the bar every step, the largest per-step cost of fit's callbacks (bench/loop_overhead.py).
        self.bar = tqdm(total=len(state.train_loader), desc=f"epoch {state.epoch + 1}/{state.num_epochs}",
                        unit="batch", leave=False, dynamic_ncols=True, mininterval=0.5, file=self.file)

    def after_batch(self, state):
        if self.bar is None:
            return
        self.bar.update(1)
        if state.logged_loss is not None:
            self.bar.set_postfix(loss=f"{state.logged_loss:.4f}", refresh=False)

    def after_epoch(self, state):
        if self._plain_started is not None:
            self._plain_line(state)
        self.after_fit(state)

    def _plain_line(self, state):
        seconds = time.perf_counter() - self._plain_started
        self._plain_started = None
        rows = state.history.epochs if state.history is not None else []  # History (order -10) wrote it
        metrics = f" | {format_metrics(rows[-1])}" if rows else ""
        hint = "" if self._hinted else "  (tqdm is not installed: `pip install tqdm` draws a progress bar)"
        self._hinted = True
        print(f"epoch {state.epoch + 1}/{state.num_epochs}{metrics} | {len(state.train_loader)} batches "
              f"in {seconds:.1f}s{hint}", file=self.file or sys.stdout, flush=True)

    def after_fit(self, state):
        self._plain_started = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def format_metrics(row: dict) -> str:
    text = f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
    if not math.isnan(row["val_acc"]):
        text += f" | val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}"
    return text


class PrintMetrics(Callback):
    """Prints one line per epoch: train loss / accuracy, validation loss / accuracy, lr, time."""

    order = ORDER["PrintMetrics"]

    def after_epoch(self, state):
        row = state.history.epochs[-1]
        print(f"epoch {row['epoch']}/{state.num_epochs} | {format_metrics(row)} "
              f"| lr {row['lr']:.2e} | {row['seconds']:.1f}s", flush=True)


class LRSchedule(Callback):
    """Steps a ``paddle.optimizer.lr.LRScheduler`` after every batch (``every='batch'``) or epoch."""

    def __init__(self, scheduler, every: str = "batch"):
        if every not in ("batch", "epoch"):
            raise ValueError(f"every must be 'batch' or 'epoch', got {every!r}.")
        self.scheduler, self.every = scheduler, every

    def after_batch(self, state):
        if self.every == "batch":
            self.scheduler.step()

    def after_epoch(self, state):
        if self.every == "epoch":
            self.scheduler.step()


class NaNGuard(Callback):
    """Stops training when the loss becomes NaN or inf, naming the first bad step.

    ``check_every=1``: the loss is read on the host every step and training stops at
    the first bad step, before that step's update: the parameters keep their last
    finite values. ``check_every=N``: every step's loss is still checked, on the
    device (no sync), and the verdict is read once every N steps and at the end of
    each epoch; training stops at the end of the window and names the first bad
    step exactly, but the parameters have had the window's updates since.

    Either way the history up to the stop is kept, and the checkpoint of the last
    finished epoch is left as it was (the end-of-epoch verdict comes before
    ``Checkpoint`` saves). The default, ``None``, is 1 on the CPU, where Paddle
    runs each operation before returning, so reading one number costs a few tens of
    microseconds (bench/loop_overhead.py: under 0.1% of a step), and
    ``DEVICE_CHECK_EVERY`` on a GPU, where a host read waits for all queued work.
    """

    order = ORDER["NaNGuard"]
    DEVICE_CHECK_EVERY = 50

    def __init__(self, check_every: int | None = None):
        if check_every is not None and check_every < 1:
            raise ValueError(f"check_every must be at least 1 (or None for automatic), got {check_every}.")
        self.check_every = check_every
        self._finite = self._good = None

    def before_epoch(self, state):
        self._finite = None  # device int32 0/1: every loss of the window so far was finite
        self._good = None    # device int32: finite losses in the window before the first bad one

    def after_loss(self, state):
        self.every_ = self.check_every or (1 if state.loss.place.is_cpu_place() else self.DEVICE_CHECK_EVERY)
        if self.every_ == 1:
            loss = state.loss.item()  # one host read per step (item(): a quarter of float()'s cost)
            if not math.isfinite(loss):
                self._stop(state, f"loss became {loss}", state.step, state.batch_idx)
            return
        finite = paddle.isfinite(state.loss.detach()).astype("int32")
        if self._finite is None:
            self._start, self._finite, self._good = (state.step, state.batch_idx), finite, finite
        else:
            self._finite = self._finite * finite  # stays 0 from the first bad loss on
            self._good = self._good + self._finite
        if state.step + 1 - self._start[0] >= self.every_:
            self._check(state)

    def after_epoch(self, state):
        self._check(state)  # the epoch's last, partial window: before Checkpoint saves

    def _check(self, state):
        if self._finite is not None and not bool(self._finite):  # the one host read per window
            bad = self._start[0] + int(self._good)  # 0-based index of the first bad step
            updates = state.step - bad  # updates made from the bad step on (this step's is not made yet)
            note = (f" Noticed {updates} update(s) later (the loss is read every {self.every_} steps): "
                    "the model's parameters are no longer finite; the checkpoint of the last finished "
                    "epoch is intact." if updates else "")
            self._stop(state, "loss became non-finite (NaN or inf)", bad, bad - self._start[0] + self._start[1],
                       note)
        self._finite = self._good = None

    @staticmethod
    def _stop(state, what: str, step: int, batch_idx: int, note: str = ""):
        lr = float(state.optimizer.get_lr())
        raise Diverged(
            f"{what} at step {step + 1} (epoch {state.epoch + 1}, batch {batch_idx + 1}) with learning "
            f"rate {lr:.3g}: training diverged. Try a smaller learning rate (e.g. --lr {lr / 10:.3g}), "
            f"a warm-up schedule or gradient clipping.{note}")


class Checkpoint(Callback):
    """Saves model, optimizer (with its LR schedule), epoch, step and history after every epoch.

    The file is replaced atomically (``course.checkpoint.save_checkpoint``), so a
    crash mid-write leaves the previous checkpoint intact.
    """

    order = ORDER["Checkpoint"]

    def __init__(self, path, extra: dict | None = None):
        self.path, self.extra = path, extra or {}

    def after_epoch(self, state):
        save_checkpoint(self.path, state.model, state.optimizer, state.scaler, epoch=state.epoch + 1,
                        step=state.step, history=state.history.state_dict(), **self.extra)


class Monitor:
    """Tracks the best value of ``val_loss`` (lower is better) or ``val_acc`` (higher is better)."""

    def __init__(self, name: str = "val_loss", min_delta: float = 0.0):
        if name not in ("val_loss", "val_acc"):
            raise ValueError(f"monitor must be 'val_loss' or 'val_acc', got {name!r}.")
        self.name, self.min_delta = name, min_delta
        self.reset()

    def reset(self) -> None:
        """Forget the best value: a new ``fit`` compares against its own epochs only."""
        self.best, self.best_epoch = None, 0

    def check(self, state) -> bool:
        """Read this epoch's value (``History``'s row); True (and remember it) if it beats the best so far."""
        if state.val_loader is None:
            raise ValueError(f"monitoring {self.name} needs validation metrics: pass val_loader to fit().")
        value = state.history.epochs[-1][self.name]  # NaN never counts as better
        better = (self.best is None or (value < self.best - self.min_delta if self.name == "val_loss"
                                        else value > self.best + self.min_delta))
        if better:
            self.best, self.best_epoch = value, state.epoch + 1
        return better


class EarlyStopping(Callback):
    """Stops training when a validation metric has not improved for ``patience`` epochs.

    ``monitor`` is ``"val_loss"`` or ``"val_acc"``; an improvement must exceed ``min_delta``.
    With ``restore_best=True`` the model gets the best epoch's weights back when training
    ends (an in-memory copy, taken at each improvement).
    """

    order = ORDER["EarlyStopping"]

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 restore_best: bool = True):
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}.")
        self.monitor_, self.patience, self.restore_best = Monitor(monitor, min_delta), patience, restore_best
        self.wait_, self.best_weights_ = 0, None

    def before_fit(self, state):
        # Learned state is per fit: a reused instance must not compare against the last run's best.
        self.monitor_.reset()
        self.wait_, self.best_weights_ = 0, None

    def after_epoch(self, state):
        if self.monitor_.check(state):
            self.wait_ = 0
            if self.restore_best:
                self.best_weights_ = {k: v.clone() for k, v in state.model.state_dict().items()}
            return
        self.wait_ += 1
        if self.wait_ >= self.patience:
            m = self.monitor_
            raise StopTraining(f"early stopping: {m.name} has not improved for {self.patience} epoch(s); "
                               f"best {m.best:.4f} at epoch {m.best_epoch}")

    def after_fit(self, state):
        if self.restore_best and self.best_weights_ is not None:
            state.model.set_state_dict(self.best_weights_)


class BestCheckpoint(Callback):
    """Keeps, at ``path``, the checkpoint of the epoch with the best ``monitor`` value so far."""

    order = ORDER["BestCheckpoint"]

    def __init__(self, path, monitor: str = "val_acc"):
        self.path, self.monitor_ = path, Monitor(monitor)

    def before_fit(self, state):
        self.monitor_.reset()  # per fit: a reused instance starts from no best

    def after_epoch(self, state):
        if self.monitor_.check(state):
            save_checkpoint(self.path, state.model, state.optimizer, epoch=state.epoch + 1, step=state.step,
                            monitor=self.monitor_.name, value=self.monitor_.best)


class GradientClip(Callback):
    """Rescales all gradients so that their global L2 norm is at most ``max_norm``.

    The same rule as ``paddle.nn.ClipGradByGlobalNorm`` (g <- g * max_norm / max(norm, max_norm)),
    applied between backward and step, computed on the device (no host sync). The norm before
    clipping is left in ``state.grad_norm`` (a device tensor) for loggers.
    """

    def __init__(self, max_norm: float):
        if not max_norm > 0:
            raise ValueError(f"max_norm must be positive, got {max_norm}.")
        self.max_norm = max_norm

    def after_backward(self, state):
        norm = global_grad_norm(state.model)
        grads = [p.grad for p in state.model.parameters() if p.grad is not None]
        with paddle.no_grad():  # in-place edits of gradient tensors are allowed only outside autograd
            scale = self.max_norm / paddle.maximum(norm, paddle.full([], self.max_norm, dtype=norm.dtype))
            for g in grads:
                g.multiply_(scale.astype(g.dtype))
        state.grad_norm = norm
