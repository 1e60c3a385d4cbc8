"""Accuracy done right: exact (sample-weighted) accuracy, top-k, running means, confusion matrix.

Cross-entropy is what we optimize; accuracy is what we read. Accuracy over a
set is ``correct / seen``. The course's evaluation averages per-batch
accuracies instead, which weighs the short last batch (16 of the 10,000 test
images at batch 64) as much as a full one; ``mean_of_batch_accuracies`` keeps
that number for comparison, ``accuracy`` / ``course.evaluate`` give the exact one.

Every function takes paddle Tensors or NumPy arrays; labels may be ``[N]`` or
``[N, 1]`` (the loaders yield ``[N, 1]``).
"""
from __future__ import annotations

import numpy as np
import paddle

from .tensors import correct_count, inference  # the loop's counter; one definition of "correct" in the package

NUM_CLASSES = 10
CHANCE_ACCURACY = 1 / NUM_CLASSES  # guessing one digit for every image
# "At chance level": an accuracy below twice chance, i.e. the network has not learned to tell the
# digits apart (a dead network, loss stuck at ln 10). ``course.sweep`` marks such runs ``stalled``.
AT_CHANCE_BELOW = 2 * CHANCE_ACCURACY


def at_chance_level(acc: float) -> bool:
    """True when ``acc`` is at chance level (below ``AT_CHANCE_BELOW`` = 0.2 for 10 classes)."""
    return acc < AT_CHANCE_BELOW


def _as_tensor(x) -> paddle.Tensor:
    # No copy for a Tensor already; NumPy arrays and lists are wrapped once.
    return x if isinstance(x, paddle.Tensor) else paddle.to_tensor(np.asarray(x))


def _as_numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)


def _check_rows(logits, labels) -> int:
    n, m = int(logits.shape[0]), int(np.prod(labels.shape))
    if len(logits.shape) != 2 or n != m:
        raise ValueError(f"expected logits [N, C] and labels [N] or [N, 1], got "
                         f"{list(logits.shape)} and {list(labels.shape)}.")
    return n


def accuracy(logits, labels) -> float:
    """Exact fraction of rows whose arg-max equals the label.

    Parameters
    ----------
    logits : Tensor or ndarray, shape [N, C]
        Scores, logits or probabilities (arg-max is the same for all three).
    labels : Tensor or ndarray, shape [N] or [N, 1]
        Integer class ids.

    Returns
    -------
    float
        ``correct / N`` computed from integer counts (no float32 rounding, unlike
        ``paddle.metric.accuracy`` which returns a float32 tensor).
    """
    logits, labels = _as_tensor(logits), _as_tensor(labels)
    n = _check_rows(logits, labels)
    return int(correct_count(logits, labels.astype("int64"))) / max(n, 1)


def top_k_accuracy(logits, labels, k: int = 5) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores (``k=1`` is ``accuracy``).

    Parameters
    ----------
    logits : Tensor or ndarray, shape [N, C]
    labels : Tensor or ndarray, shape [N] or [N, 1]
    k : int
        1 <= k <= C.
    """
    logits, labels = _as_tensor(logits), _as_tensor(labels)
    n = _check_rows(logits, labels)
    if not 1 <= k <= logits.shape[1]:
        raise ValueError(f"k must be between 1 and the number of classes ({logits.shape[1]}), got {k}.")
    _, top = paddle.topk(logits, k=k, axis=-1)                      # [N, k] class ids
    hit = (top == labels.reshape([-1, 1]).astype(top.dtype)).any(axis=-1)  # [N] bool
    return int(hit.astype("int64").sum()) / max(n, 1)


class RunningMean:
    """Sample-weighted running mean of a per-batch quantity (loss, accuracy).

    ``update(value, n)`` says "``value`` is the mean over ``n`` samples", so a
    last batch of 16 counts 16/64 of a full one; that is what makes the result
    equal to the mean over all samples. With ``n=1`` everywhere it is a plain mean.

    Examples
    --------
    >>> m = RunningMean()
    >>> m.update(1.0, n=3); m.update(0.0, n=1)
    >>> m.mean, m.count
    (0.75, 4)
    """

    def __init__(self):
        self.total = 0.0   # sum of value * n
        self.count = 0     # samples seen

    def update(self, value, n: int = 1) -> None:
        """Add a batch whose mean is ``value`` (a float or a 0-D Tensor) over ``n`` samples."""
        if n < 0:
            raise ValueError(f"n must be a non-negative sample count, got {n}.")
        self.total += float(value) * n  # float(): one host sync per update, by design of the caller
        self.count += int(n)

    @property
    def mean(self) -> float:
        """The weighted mean so far; NaN before any sample (there is no mean of nothing)."""
        return self.total / self.count if self.count else float("nan")

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def __repr__(self) -> str:
        return f"RunningMean(mean={self.mean:.6g}, count={self.count})"


def confusion_matrix(logits_or_predictions, labels, num_classes: int = 10) -> np.ndarray:
    """Counts ``cm[true, predicted]`` as an int64 array ``[num_classes, num_classes]``.

    Parameters
    ----------
    logits_or_predictions : Tensor or ndarray, shape [N, C] or [N] (or [N, 1])
        Scores (arg-max is taken) or predicted class ids.
    labels : Tensor or ndarray, shape [N] or [N, 1]

    Notes
    -----
    ``cm.sum() == N``; ``np.trace(cm) / N`` is ``accuracy``; row ``i`` sums to the
    number of images of digit ``i``.
    """
    pred = _as_numpy(logits_or_predictions)
    if pred.ndim == 2 and pred.shape[1] > 1:
        pred = pred.argmax(axis=1)
    pred, true = pred.reshape(-1).astype(np.int64), _as_numpy(labels).reshape(-1).astype(np.int64)
    if pred.shape != true.shape:
        raise ValueError(f"{pred.size} predictions but {true.size} labels.")
    for name, ids in (("labels", true), ("predictions", pred)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes}), got [{ids.min()}, {ids.max()}].")
    # One bincount over the flattened (true, pred) pair index: no Python loop over samples.
    return np.bincount(true * num_classes + pred, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def most_confused_pair(cm) -> tuple[int, int, int]:
    """``(true, predicted, count)`` of the largest off-diagonal cell of a confusion matrix."""
    off = np.array(cm, dtype=np.int64)
    np.fill_diagonal(off, -1)  # correct predictions are not confusions
    true, pred = np.unravel_index(int(off.argmax()), off.shape)
    return int(true), int(pred), int(off[true, pred])


def predict_all(model, loader) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``[N, C]`` and labels ``[N]`` (NumPy) for every sample of ``loader``, in eval mode.

    Restores the model's previous mode. One host copy at the end, not per batch.
    """
    logits, labels = [], []
    with inference(model):
        for X, y in loader:
            logits.append(model(X))
            labels.append(y.reshape([-1]))
    return paddle.concat(logits).numpy(), paddle.concat(labels).numpy()


def paddle_accuracy_stream(model, loader, k: int = 1) -> float:
    """Top-``k`` accuracy over ``loader`` with Paddle's streaming ``paddle.metric.Accuracy``.

    ``compute`` turns a batch into a correct-mask, ``update`` adds its correct
    count and its size, ``accumulate`` divides the totals: the exact
    ``correct / seen``, equal to ``accuracy`` on all the logits at once.
    """
    metric = paddle.metric.Accuracy(topk=(k,))
    with inference(model):
        for X, y in loader:
            metric.update(metric.compute(model(X), y))  # [B, k] mask -> running totals
    return float(metric.accumulate())


def mean_of_batch_accuracies(model, loader) -> float:
    """The course's evaluation number: the unweighted mean of per-batch ``paddle.metric.accuracy``.

    Kept for comparison only: every batch counts the same however many images
    it holds, so a short last batch is over-weighted. Equal to the exact
    accuracy only when all batches have the same size.
    """
    batch_accs = []
    with inference(model):
        for X, y in loader:
            batch_accs.append(float(paddle.metric.accuracy(input=model(X), label=y)))
    return float(np.mean(batch_accs))


def plot_confusion_matrix(cm, path=None, class_names=None, title: str = "confusion matrix"):
    """Heat map of ``cm[true, predicted]`` with the counts written in the cells.

    Shown inline in Jupyter; saved to ``path`` when given or when the backend
    cannot show (default name ``confusion_matrix.png``). Returns the saved path or None.
    """
    import matplotlib.pyplot as plt

    from .plots import show_or_save  # loads matplotlib: only when plotting

    cm = np.asarray(cm)
    c = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    # The diagonal is ~100x the mistakes on a trained model; clipping the colour scale at
    # twice the largest mistake keeps the off-diagonal cells visible (the numbers stay exact).
    off = cm.copy()
    np.fill_diagonal(off, 0)
    vmax = max(int(off.max()) * 2, 1)
    im = ax.imshow(np.minimum(cm, vmax), cmap="Blues", vmin=0, vmax=vmax)
    for i in range(c):
        for j in range(c):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > vmax / 2 else "black")
    ax.set(xticks=range(c), yticks=range(c), xticklabels=names, yticklabels=names,
           xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, label=f"count (colour clipped at {vmax})")
    fig.tight_layout()
    return show_or_save(fig, path, "confusion_matrix.png")
