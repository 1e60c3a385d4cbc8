"""Lesson-facing: ``from tools import plot``. The figures live in ``course.plots``."""
from course.plots import plot, plot_history  # noqa: F401

__all__ = ["plot", "plot_history"]
