"""Matplotlib figures: the course's loss curve and per-epoch curves.

Shown inline in Jupyter (or in a window on a desktop backend); saved as PNG
when the backend cannot show (a headless machine, a test) or when ``path`` is given.
"""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import matplotlib
import matplotlib.ticker

from .compat import zlib_order_problem

NON_INTERACTIVE = ("agg", "pdf", "ps", "svg", "cairo", "template", "pgf")
COURSE_PINK = "#e4007f"


def _can_show() -> bool:
    backend = matplotlib.get_backend().lower()
    return "inline" in backend or backend not in NON_INTERACTIVE


def show_or_save(fig, path=None, default_name: str = "plot.png"):
    """Save ``fig`` to ``path`` if given; show it if the backend can; if it can do
    neither, save it to ``default_name`` in the current directory. Returns the saved path or None."""
    import matplotlib.pyplot as plt

    saved = None
    if path is not None or not _can_show():
        saved = Path(path if path is not None else default_name)
        saved.parent.mkdir(parents=True, exist_ok=True)
        if zlib_order_problem() is None:
            fig.savefig(saved, dpi=100, bbox_inches="tight")
        else:
            _savefig_in_child(fig, saved)
    if _can_show():
        plt.show()
    plt.close(fig)
    return saved


# A fresh interpreter with this one's sys.path draws the pickled figure: PNG needs zlib.
_SAVEFIG_CHILD = ("import pickle, sys; sys.path[:0] = sys.argv[2:]; import matplotlib; matplotlib.use('Agg'); "
                  "pickle.loads(sys.stdin.buffer.read()).savefig(sys.argv[1], dpi=100, bbox_inches='tight')")


def _savefig_in_child(fig, path: Path) -> None:
    """``fig.savefig(path)`` in a child process: here zlib would crash (Paddle 2.6 imported first,
    ``course.compat.zlib_order_problem``), and writing a PNG compresses it with zlib."""
    done = subprocess.run([sys.executable, "-c", _SAVEFIG_CHILD, str(path), *sys.path], input=pickle.dumps(fig),
                          capture_output=True)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise OSError(f"saving {path} in a child process failed: {lines[-1] if lines else done.returncode}")


def plot(loss_list, path=None, label: str = "Train loss", xlabel: str = "freq"):
    """The course's loss curve: one point per recorded loss (every 200 batches in the lesson)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 5))
    plt.plot(range(len(loss_list)), [float(v) for v in loss_list], color=COURSE_PINK, label=label)
    plt.ylabel("loss", fontsize="large")
    plt.xlabel(xlabel, fontsize="large")
    plt.legend(loc="upper right", fontsize="x-large")
    return show_or_save(fig, path, "loss.png")


def plot_history(history, path=None):
    """Two panels from a ``History``: the logged training loss, and per-epoch accuracies."""
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax_loss.plot(history.loss_steps, history.losses, color=COURSE_PINK)
    ax_loss.set(xlabel="step", ylabel=f"train loss (mean of {history.log_every} batches)",
                title="training loss")
    epochs = [row["epoch"] for row in history.epochs]
    ax_acc.plot(epochs, [row["train_acc"] for row in history.epochs], "o-", label="train")
    val = [row["val_acc"] for row in history.epochs]
    if any(v == v for v in val):  # any non-NaN
        ax_acc.plot(epochs, val, "s-", label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy per epoch")
    ax_acc.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax_acc.legend()
    fig.tight_layout()
    return show_or_save(fig, path, "curves.png")
