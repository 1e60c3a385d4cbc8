"""VisualDL logging as a callback. ``visualdl`` is imported only when a run logs.

``visualdl`` is optional: without it ``VisualDLLogger`` logs nothing and says so in one line
naming ``pip install visualdl`` (``visualdl_missing``); the run itself is the same.

Every run writes into its own directory (``<run_dir>/vdl``), so runs appear
side by side in one dashboard: ``python -m course dashboard --logdir runs``
(``course.dashboard``). What a run logs:

=========================  =======================================  ===========
tag                        what                                     x axis
=========================  =======================================  ===========
``train/loss``             mean loss of the last ``log_every``      step
                           batches (``History``'s reading)
``train/lr``               learning rate used by that step          step
``train/grad_norm``        global L2 norm of all gradients          step (every
                                                                    ``grad_every``)
``epoch/train_loss`` ...   ``train_loss, train_acc, val_loss,``     epoch
                           ``val_acc, lr``
``weights/<param>``        histogram of every parameter             epoch
``samples/predictions``    a grid of digits, label and prediction   epoch
hyper-parameters           the run's config (``add_hparams``)       --
=========================  =======================================  ===========
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import paddle

from .compat import zlib_order_problem
from .events import ORDER, Callback
from .tensors import global_grad_norm, inference, unwrap

EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")
INSTALL_HINT = "pip install visualdl"


def visualdl_missing() -> str | None:
    """Why VisualDL logs cannot be written here (one line naming the install), or ``None`` when they can."""
    if importlib.util.find_spec("visualdl") is None:
        return f"VisualDL logging skipped: the visualdl package is not installed ({INSTALL_HINT})."
    return None


def _hparam_value(value):
    """VisualDL stores only int, float and str hyper-parameters; a bool would pass as int (0/1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return str(value)
    return value


def prediction_grid(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """An RGB uint8 ``[H, W, 3]`` picture of digits titled ``label -> prediction`` (red when wrong).

    ``images``: ``[N, 1, 28, 28]`` in [-1, 1] as the loaders give them. Drawn on a
    bare Agg canvas, not pyplot, so nothing pops up inline in a notebook.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(images)
    cols = min(n, 4)  # 4 wide: the dashboard shows the picture about 400 px wide, so titles stay legible
    rows = -(-n // cols)
    fig = Figure(figsize=(1.2 * cols, 1.5 * rows + 0.4), dpi=80, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    fig.suptitle("label \u2192 prediction (red: wrong)", fontsize=10)
    for i, (image, label, pred) in enumerate(zip(images, labels, predictions)):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(image[0], cmap="gray", vmin=-1, vmax=1)
        ax.set_title(f"{label} \u2192 {pred}", color="black" if label == pred else "red", fontsize=11)
        ax.axis("off")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


class VisualDLLogger(Callback):
    """Writes a run's scalars, weight histograms, sample predictions and config for VisualDL.

    Parameters
    ----------
    logdir
        Directory of this run's log (one run = one directory; the dashboard's
        ``--logdir`` is a parent holding several).
    config
        Optional dict of run settings, logged as hyper-parameters so the
        dashboard's hyper-parameter tab compares runs by them.
    grad_every
        Log ``train/grad_norm`` every this many steps; ``None`` = the ``History``'s
        ``log_every`` (the same steps as ``train/loss``), 0 = never. The norm is
        computed on the device and read on the host only at those steps.
    num_images
        Digits in the per-epoch prediction grid (0 = none). They come from the
        first validation batch, or from the first training batch without one.
    histograms
        Log a histogram of every parameter after each epoch.
    """

    order = ORDER["VisualDLLogger"]  # after History has read the loss, lr and the epoch's row

    def __init__(self, logdir, config: dict | None = None, *, grad_every: int | None = None,
                 num_images: int = 8, histograms: bool = True):
        self.logdir, self.config = str(logdir), config
        self.grad_every, self.num_images, self.histograms = grad_every, num_images, histograms
        self.writer = None

    # ------------------------------------------------------------------ events
    def before_fit(self, state):
        missing = visualdl_missing()
        if missing:
            print(missing, flush=True)
            return  # self.writer stays None: every event below is a no-op
        from visualdl import LogWriter

        self.writer = LogWriter(logdir=self.logdir)
        self.grad_every_ = state.history.log_every if self.grad_every is None else self.grad_every
        self._grad_norm = None
        self.samples_ = None
        self.num_images_ = self.num_images
        if self.num_images and zlib_order_problem():  # the image is a PNG: Pillow's zlib would crash here
            print("VisualDL: no sample-prediction images in this run (Paddle 2.6 was imported before zlib: "
                  "import course first); scalars and histograms are logged.", flush=True)
            self.num_images_ = 0
        if self.num_images_ and state.val_loader is not None:
            X, y = next(iter(state.val_loader))
            self.samples_ = (X[:self.num_images_], y[:self.num_images_])
        if self.config is not None:
            tags = [f"epoch/{name}" for name in EPOCH_METRICS[:-1]
                    if state.val_loader is not None or not name.startswith("val")]
            self.writer.add_hparams({k: _hparam_value(v) for k, v in self.config.items()}, tags)

    def before_batch(self, state):
        if self.writer is None:
            return
        if self.samples_ is None and self.num_images_:
            self.samples_ = (state.X[:self.num_images_], state.y[:self.num_images_])

    def after_backward(self, state):
        if self.writer is None:
            return
        # state.step counts finished steps, so this one will be number state.step + 1.
        if self.grad_every_ and (state.step + 1) % self.grad_every_ == 0:
            # A 0-D tensor on the device, read in after_batch. GradientClip (which runs first)
            # already computed this step's norm before clipping: reuse it rather than recompute.
            self._grad_norm = state.grad_norm if state.grad_norm is not None else global_grad_norm(state.model)

    def after_batch(self, state):
        if self.writer is None:
            return
        if state.logged_loss is not None:  # reuse History's readings: no extra device sync
            self.writer.add_scalar("train/loss", state.logged_loss, state.step)
            self.writer.add_scalar("train/lr", state.history.last_lr, state.step)
        if self._grad_norm is not None:
            self.writer.add_scalar("train/grad_norm", float(self._grad_norm), state.step)
            self._grad_norm = None

    def after_epoch(self, state):
        if self.writer is None:
            return
        epoch = state.epoch + 1
        row = state.history.epochs[-1]  # History's row of this epoch: one definition of the numbers
        for name in EPOCH_METRICS:
            value = row[name]
            if not math.isnan(value):
                self.writer.add_scalar(f"epoch/{name}", value, epoch)
        if self.histograms:  # one device-to-host copy of the weights per epoch
            for name, param in unwrap(state.model).named_parameters():  # DataParallel would add "_layers."
                self.writer.add_histogram(f"weights/{name}", param.numpy().ravel(), epoch, buckets=30)
        if self.samples_ is not None:
            self.writer.add_image("samples/predictions", self._prediction_image(state.model), epoch)
        self.writer.flush()

    def after_fit(self, state):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # ----------------------------------------------------------------- helpers
    def _prediction_image(self, model) -> np.ndarray:
        X, y = self.samples_
        with inference(model):  # BatchNorm variants must use their running statistics here
            predictions = paddle.argmax(model(X), axis=-1).numpy()
        return prediction_grid(X.numpy(), y.numpy().reshape(-1), predictions)
