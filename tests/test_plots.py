"""Plots save a PNG when headless (the test backend is Agg), in the lesson's call shape."""
import matplotlib.image as mpimg

from course import History
from tools import plot, plot_history


def test_plot_saves_png_headless(out_dir, monkeypatch):
    monkeypatch.chdir(out_dir)
    saved = plot([2.3, 1.2, 0.6, 0.4, 0.3])  # the lesson's call: no path
    assert saved.name == "loss.png" and saved.exists()
    image = mpimg.imread(saved)
    assert image.shape[0] > 100 and image.shape[1] > 200
    assert plot([1.0, 0.5], path=out_dir / "sub" / "named.png").exists()


def test_plot_history(out_dir):
    history = History(10)
    history.losses, history.loss_steps = [2.0, 1.0, 0.5], [10, 20, 30]
    history.epochs = [{"epoch": 1, "train_acc": 0.8, "val_acc": 0.85}, {"epoch": 2, "train_acc": 0.9, "val_acc": 0.9}]
    assert plot_history(history, path=out_dir / "curves.png").exists()
