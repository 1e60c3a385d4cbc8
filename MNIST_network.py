"""Lesson-facing: ``from MNIST_network import MNIST``. The network lives in ``course.model``."""
from course.model import MNIST  # noqa: F401

__all__ = ["MNIST"]
