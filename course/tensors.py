"""Small tensor helpers shared by the loop, the metrics, the hooks and the loggers.

They import nothing of the package, so a module that needs "how many are correct" or
"eval mode without gradients" does not have to import the training loop for it.
"""
from __future__ import annotations

from contextlib import contextmanager

import paddle


def correct_count(y_hat, y):
    """Number of rows whose arg-max equals the label (a 0-D int64 tensor, stays on the device)."""
    return (paddle.argmax(y_hat, axis=-1) == y.reshape([-1])).astype("int64").sum()


@contextmanager
def inference(model: paddle.nn.Layer):
    """Eval mode (BatchNorm uses running statistics, dropout is off) without gradients;
    the model's previous mode is restored afterwards, even on an error."""
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            yield model
    finally:
        if was_training:
            model.train()


def global_grad_norm(model: paddle.nn.Layer):
    """L2 norm of all of ``model``'s gradients together: a 0-D float32 tensor on the device."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    with paddle.no_grad():
        return paddle.sqrt(paddle.add_n([(g.astype("float32") ** 2).sum() for g in grads]))


def unwrap(model: paddle.nn.Layer) -> paddle.nn.Layer:
    """The model inside a ``paddle.DataParallel`` (whose ``named_parameters`` add ``_layers.``)."""
    return model._layers if isinstance(model, paddle.DataParallel) else model
