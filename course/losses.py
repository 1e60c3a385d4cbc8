"""Loss functions by name: the course's cross-entropy and, for comparison, squared error.

Both take the network's logits ``[N, 10]`` and integer labels ``[N]`` or ``[N, 1]``
and return the batch's mean loss (a 0-D tensor), so either can be passed to
``fit(loss_fn=...)`` or chosen with ``--loss``.

- ``cross_entropy``: softmax, then minus the log-probability of the true class
  (``paddle.nn.functional.cross_entropy``). Its gradient with respect to the
  logits is ``softmax - one_hot``: large when the network is confidently wrong.
- ``mse``: softmax, then the squared distance to the one-hot target, summed over
  the 10 classes and averaged over the batch (the Brier score; summing keeps it
  on the same scale per sample as cross-entropy). Its gradient passes through
  the softmax's Jacobian, so it fades exactly when a wrong prediction is
  confident: the reason classification uses cross-entropy.
"""
from __future__ import annotations

import paddle.nn.functional as F

from . import compat
from .config import LOSSES
from .errors import ConfigError

# Paddle 2.6's cross_entropy(reduction="mean") asks `if paddle.count_nonzero(label == ignore_index) > 0`:
# a device-to-host read every step. Its per-sample losses averaged on the device are the same mean.
_MEAN_ON_DEVICE = compat.paddle_version() < (3,)


def cross_entropy(logits, labels):
    """Mean cross-entropy of a batch of logits against integer labels."""
    if _MEAN_ON_DEVICE:
        return F.cross_entropy(logits, labels.reshape([-1, 1]), reduction="none").mean()
    return F.cross_entropy(logits, labels.reshape([-1, 1]))


def mse(logits, labels):
    """Mean over the batch of ``sum_k (softmax(logits)_k - one_hot(label)_k) ** 2``."""
    target = F.one_hot(labels.reshape([-1]), num_classes=logits.shape[-1]).astype(logits.dtype)
    return ((F.softmax(logits, axis=-1) - target) ** 2).sum(axis=-1).mean()


_LOSSES = {"cross_entropy": cross_entropy, "mse": mse}
assert tuple(_LOSSES) == LOSSES


def make_loss(name: str):
    """The loss function called ``name`` (one of ``course.config.LOSSES``)."""
    if name not in _LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}.")
    return _LOSSES[name]
