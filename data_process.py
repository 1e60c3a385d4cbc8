"""Lesson-facing: ``train_loader, test_loader = get_MNIST_dataloader()``.

The implementation lives in ``course.data``; this module keeps the course's import working.
It is an entry point, so it is where ``COURSE_SMOKE=1`` is read: the loaders then keep the
first 2,000 train / 1,000 test images unless ``subset`` (or ``smoke``) says otherwise.
"""
from __future__ import annotations

from course.config import is_smoke
from course.data import get_MNIST_dataloader as _get_MNIST_dataloader

__all__ = ["get_MNIST_dataloader"]


def get_MNIST_dataloader(*args, smoke: bool | None = None, **kwargs):
    """``course.data.get_MNIST_dataloader`` with ``smoke`` defaulting to ``COURSE_SMOKE``."""
    return _get_MNIST_dataloader(*args, smoke=is_smoke() if smoke is None else smoke, **kwargs)
