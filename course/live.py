"""``LivePlot``: watch a run train. Loss and accuracy curves redrawn in place in Jupyter.

One callback on the events of ``course.events``. In a Jupyter kernel it draws one figure, two
panels (loss; accuracy, training lines and validation squares) and redraws it in place (an IPython
display handle, updated) as points come in: a point every ``every`` steps and one per epoch. The last
frame is drawn when the cell ends, so it stays in the executed notebook (and on the site built from
it). Outside a kernel (a script, ``python -m course``, a test) it draws nothing and does nothing per
step but return.

One instance can follow several runs, one curve per run, for a cell that compares them::

    live = LivePlot(title="five learning rates")
    for lr in (0.001, 0.01, 0.1):
        fit(model_for(lr), loader, opt_for(lr), callbacks=[live.run(f"lr {lr}")])

``live.run(label)`` is a callback that adds a curve named ``label`` to the same figure; the runs
already finished stay drawn while the next one trains. ``live.add(label, history)`` adds a run
that was trained elsewhere (its ``History``). Used directly as a callback (``callbacks=[live]``)
each ``fit`` becomes a new curve named "run 1", "run 2" ... A loop written by hand, where no ``fit``
fires events (the course's own loop in 2.8.1), calls ``live.log(loss, logits, labels)`` after each step
and ``live.finish()`` after the loop.

Plain matplotlib (a ``Figure`` on the Agg canvas, no pyplot state) and ``IPython.display``.
No server, no widget. A frame is a PNG render, a fraction of a second on a busy CPU, so frames are
spaced out to keep drawing under ``max_share`` of the wall time (5% by default) and at least
``min_interval`` seconds apart; the last frame is drawn at the end of the cell (an IPython
``post_run_cell`` hook), so a cell that trains ten short runs draws its final picture once, not
once per run.
"""
from __future__ import annotations

import io
import math
import time

import paddle

from .events import ORDER, Callback
from .plots import COURSE_PINK
from .tensors import correct_count


def in_jupyter() -> bool:
    """True inside an IPython kernel (Jupyter, nbclient), False in a script or a terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _Curve:
    """One run's readings: window means every ``every`` steps, and one row per epoch."""

    def __init__(self, label: str):
        self.label = label
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.acc: list[float] = []      # training accuracy of each window (this run's own batches)
        self.epoch_steps: list[int] = []
        self.val_loss: list[float] = []
        self.val_acc: list[float] = []
        self.done = False


class LivePlot(Callback):
    """Loss and accuracy curves that update in place in Jupyter while ``fit`` trains.

    Parameters
    ----------
    every : int or None
        Steps per plotted point (the mean loss and accuracy of those steps). ``None``: about 25
        points per epoch (``len(train_loader) // 25``, at least 1).
    title : str
        Title above the two panels.
    enabled : bool or None
        ``None``: draw only inside a Jupyter kernel. ``False``: never. ``True``: draw whenever
        IPython can display (for tests).
    min_interval : float
        Least number of seconds between two frames.
    max_share : float
        Largest share of the wall time spent drawing: after a frame that took ``c`` seconds the next
        waits ``c * (1 - max_share) / max_share`` seconds (1.0: no wait, for tests).
    log_loss : bool
        Logarithmic loss axis (runs whose losses differ by orders of magnitude stay readable).
    """

    order = ORDER["LivePlot"]

    def __init__(self, every: int | None = None, title: str = "", *, enabled: bool | None = None,
                 min_interval: float = 1.0, max_share: float = 0.05, log_loss: bool = True, figsize=(11, 4)):
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f"every must be a positive number of steps (or None for about 25 per epoch), "
                             f"got {every!r}.")
        if min_interval < 0:
            raise ValueError(f"min_interval must be 0 or more seconds, got {min_interval}.")
        if not 0 < max_share <= 1:
            raise ValueError(f"max_share must be in (0, 1], got {max_share}.")
        self.every, self.title, self.min_interval, self.max_share = every, title, min_interval, max_share
        self.log_loss, self.figsize = log_loss, figsize
        self.enabled = in_jupyter() if enabled is None else bool(enabled)
        self.curves: dict[str, _Curve] = {}
        self.frames = 0                 # frames drawn so far (0 when disabled)
        self._handle = self._cell = None
        self._current = None
        self._next_label = None
        self._next_frame = 0.0          # perf_counter time before which no frame is drawn
        self._dirty = False             # readings not drawn yet
        self._hooked = None             # the IPython shell whose post_run_cell draws the last frame

    # ------------------------------------------------------------------ runs
    def run(self, label: str) -> Callback:
        """A callback that trains into a new curve named ``label`` of this figure."""
        return _Run(self, str(label))

    def add(self, label: str, history) -> None:
        """Add a finished run from its ``History`` (its logged losses and per-epoch rows); redraw."""
        curve = self._new_curve(str(label))
        curve.steps, curve.loss = list(history.loss_steps), list(history.losses)
        steps_per_epoch = (history.loss_steps[-1] / max(len(history.epochs), 1)) if history.loss_steps else 0
        for row in history.epochs:
            curve.epoch_steps.append(round(row["epoch"] * steps_per_epoch))
            curve.val_loss.append(row["val_loss"])
            curve.val_acc.append(row["val_acc"])
        curve.acc = [math.nan] * len(curve.steps)
        curve.done = True
        self._dirty = True
        if self.enabled:
            self._hook_cell_end()
        self._maybe_draw(force=self._hooked is None)

    def _new_curve(self, label: str) -> _Curve:
        if label in self.curves:
            raise ValueError(f"this LivePlot already has a run named {label!r}; give each run its own label.")
        self.curves[label] = _Curve(label)
        return self.curves[label]

    # ---------------------------------------------------------------- events
    def before_fit(self, state):
        self._start(len(state.train_loader) if hasattr(state.train_loader, "__len__") else 0)

    def after_batch(self, state):
        self._accumulate(state.loss, state.y_hat, state.y, state.step)

    # ------------------------------------------------- a hand-written loop
    def log(self, loss, logits, labels, steps_per_epoch: int = 0) -> None:
        """One training step of a loop written by hand (the course's own ``for batch_id, ...`` loop),
        where no ``fit`` fires events: call it after ``opt.step()`` with the step's loss, logits and labels;
        :meth:`finish` after the loop. The first call starts a curve (``steps_per_epoch`` sets the point
        spacing as ``len(train_loader)`` does under ``fit``). Reads nothing back from the device but one
        number per plotted point."""
        if self._current is None and self.enabled:
            self._start(steps_per_epoch)
            self._steps = 0
        if self._current is not None:
            self._steps += 1
            self._accumulate(loss, logits, labels, self._steps)

    def finish(self) -> None:
        """End the curve :meth:`log` was drawing (its last frame stays in the cell)."""
        if self._current is not None:
            self._end(self._steps)

    def _start(self, steps_per_epoch: int) -> None:
        label = self._next_label or f"run {len(self.curves) + 1}"
        self._next_label = None
        if not self.enabled:
            return
        self._current = self._new_curve(label)
        self._every = self.every or max(1, steps_per_epoch // 25)
        self._count, self._loss, self._correct, self._seen = 0, paddle.zeros([]), paddle.zeros([], "int64"), 0
        self._hook_cell_end()

    def _accumulate(self, loss, logits, labels, step: int) -> None:
        if self._current is None:
            return
        # On the device, no host read: one add per step for the loss and three small ops for accuracy.
        self._loss += loss.detach()
        self._correct += correct_count(logits.detach(), labels)
        self._seen += labels.shape[0]
        self._count += 1
        if self._count < self._every:
            return
        self._flush(step)
        self._maybe_draw()

    def after_epoch(self, state):
        if self._current is None:
            return
        if self._count:  # the steps of an unfinished window
            self._flush(state.step)
        row = state.history.epochs[-1]   # the epoch's History row (NaN validation without a val_loader)
        curve = self._current
        curve.epoch_steps.append(state.step)
        curve.val_loss.append(row["val_loss"])
        curve.val_acc.append(row["val_acc"])
        self._dirty = True
        self._maybe_draw()

    def after_fit(self, state):
        if self._current is not None:
            self._end(state.step)

    def _end(self, step: int) -> None:
        if self._count:
            self._flush(step)
        self._current.done = True
        self._current = None
        self._dirty = True
        # In a kernel the cell-end hook draws the last frame; without one (enabled=True outside Jupyter) draw now.
        self._maybe_draw(force=self._hooked is None)

    def _flush(self, step: int) -> None:
        curve = self._current
        curve.steps.append(step)
        curve.loss.append(float(self._loss) / self._count)   # the one host read per window
        curve.acc.append(int(self._correct) / max(self._seen, 1))
        self._count, self._loss, self._correct, self._seen = 0, paddle.zeros([]), paddle.zeros([], "int64"), 0
        self._dirty = True

    def _maybe_draw(self, force: bool = False) -> None:
        if force or time.perf_counter() >= self._next_frame:
            self.draw()

    def _hook_cell_end(self) -> None:
        """Draw whatever is not drawn yet when the cell ends (once per cell)."""
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None or self._hooked is shell:
            return
        shell.events.register("post_run_cell", self._cell_ended)
        self._hooked = shell

    def _cell_ended(self, result=None) -> None:
        shell, self._hooked = self._hooked, None
        if shell is not None:
            shell.events.unregister("post_run_cell", self._cell_ended)
        if self._dirty:
            self.draw(same_cell=True)

    # ---------------------------------------------------------------- drawing
    def figure(self):
        """The current frame as a matplotlib ``Figure`` (not attached to pyplot)."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        fig = Figure(figsize=self.figsize)
        ax_loss, ax_acc = fig.subplots(1, 2)
        colors = [COURSE_PINK, "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f",
                  "#bcbd22", "#d62728"]
        single = len(self.curves) == 1
        for i, curve in enumerate(self.curves.values()):
            color = colors[i % len(colors)]
            name = curve.label + ("" if curve.done else " (training)")
            ax_loss.plot(curve.steps, curve.loss, "-", color=color, label=f"{name}: train" if single else name)
            if any(v == v for v in curve.val_loss):
                ax_loss.plot(curve.epoch_steps, curve.val_loss, "s--", color=color, markersize=5,
                             label=f"{curve.label}: validation" if single else None)
            if any(v == v for v in curve.acc):
                ax_acc.plot(curve.steps, curve.acc, "-", color=color, alpha=0.8,
                            label=f"{curve.label}: train" if single else curve.label)
            if any(v == v for v in curve.val_acc):
                ax_acc.plot(curve.epoch_steps, curve.val_acc, "s--", color=color, markersize=5,
                            label=f"{curve.label}: validation" if single else None)
        if self.log_loss and any(v > 0 for c in self.curves.values() for v in c.loss if v == v):
            ax_loss.set_yscale("log")
        ax_loss.set(xlabel="step", ylabel="loss", title="loss (lines: training; squares: validation)")
        ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy (lines: training; squares: validation)")
        for ax in (ax_loss, ax_acc):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
        if self.title:
            fig.suptitle(self.title)
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.82 if self.title else 0.9, wspace=0.22)
        return fig

    def png(self) -> bytes:
        """The current frame as PNG bytes."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = self.figure()
        FigureCanvasAgg(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    def draw(self, same_cell: bool = False) -> None:
        """Redraw in place (a new display in a new cell); nothing when disabled. ``same_cell``: the cell-end
        hook's frame, which belongs to the cell that just ran (IPython 8 has already counted the next cell
        by then, IPython 9 has not: the execution count cannot tell)."""
        if not self.enabled or not self.curves:
            return
        started = time.perf_counter()
        from IPython import get_ipython
        from IPython.display import Image, display

        image = Image(data=self.png(), format="png")
        shell = get_ipython()
        cell = getattr(shell, "execution_count", None)
        if self._handle is None or (cell != self._cell and not same_cell):   # first frame of a cell: a new output
            self._handle, self._cell = display(image, display_id=True), cell
        else:
            self._handle.update(image)
        self.frames += 1
        self._dirty = False
        now = time.perf_counter()
        cost = now - started
        self._next_frame = now + max(self.min_interval, cost * (1 - self.max_share) / self.max_share)


class _Run(Callback):
    """``LivePlot.run(label)``: forwards the events of one ``fit`` to the shared ``LivePlot``."""

    order = ORDER["LivePlot"]

    def __init__(self, live: LivePlot, label: str):
        self.live, self.label = live, label

    def before_fit(self, state):
        self.live._next_label = self.label
        self.live.before_fit(state)

    def after_batch(self, state):
        self.live.after_batch(state)

    def after_epoch(self, state):
        self.live.after_epoch(state)

    def after_fit(self, state):
        self.live.after_fit(state)
