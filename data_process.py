"""Lesson-facing: ``train_loader, test_loader = get_MNIST_dataloader()``.

The implementation lives in ``course.data``; this module keeps the course's import working.
"""
from course.data import get_MNIST_dataloader  # noqa: F401

__all__ = ["get_MNIST_dataloader"]
