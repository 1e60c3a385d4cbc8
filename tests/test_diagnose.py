"""fitting_verdict on hand-made curves and on a real over-fitting run."""
import math

import paddle
import pytest

from course import MNIST, fit, fitting_verdict, make_loader, make_optimizer
from course.diagnose import OVER, UNDER, WELL


def _rows(*pairs, losses=None):
    losses = losses or [(0.5 / (i + 1), 0.4) for i in range(len(pairs))]
    return [{"epoch": i + 1, "train_acc": t, "val_acc": v, "train_loss": tl, "val_loss": vl}
            for i, ((t, v), (tl, vl)) in enumerate(zip(pairs, losses))]


def test_a_large_accuracy_gap_is_over_fitting_with_its_numbers():
    verdict = fitting_verdict(_rows((0.95, 0.94), (1.0, 0.91)))
    assert verdict.verdict == OVER
    assert verdict.numbers["gap"] == pytest.approx(0.09)
    assert "exceeds validation accuracy 0.9100 by 0.0900" in verdict.reasons[0]
    assert "verdict: over-fitting" in str(verdict)


def test_a_rising_validation_loss_is_over_fitting_and_names_the_best_epoch():
    rows = _rows((0.990, 0.988), (0.992, 0.987), (0.994, 0.986),
                 losses=[(0.05, 0.040), (0.03, 0.045), (0.02, 0.050)])
    verdict = fitting_verdict(rows)
    assert verdict.verdict == OVER
    assert verdict.numbers["best_val_epoch"] == 1
    assert verdict.numbers["val_loss_rise"] == pytest.approx(0.25)
    assert "epoch 1" in verdict.advice


def test_low_training_accuracy_is_under_fitting():
    verdict = fitting_verdict(_rows((0.80, 0.86)))
    assert verdict.verdict == UNDER
    assert len(verdict.reasons) == 2  # below min_train_acc, and below validation


def test_close_high_accuracies_fit_well():
    rows = _rows((0.97, 0.975), (0.993, 0.990), losses=[(0.1, 0.08), (0.03, 0.035)])
    assert fitting_verdict(rows).verdict == WELL


def test_without_validation_metrics_the_error_says_how_to_get_them():
    rows = [{"epoch": 1, "train_acc": 0.9, "val_acc": math.nan, "train_loss": 0.3, "val_loss": math.nan}]
    with pytest.raises(ValueError, match="train_split='train50k'"):
        fitting_verdict(rows)
    with pytest.raises(ValueError, match="at least one finished epoch"):
        fitting_verdict([])


@pytest.mark.slow
def test_memorizing_a_small_training_set_is_diagnosed_as_over_fitting():
    # 256 training images, 15 epochs: the network memorizes them; validation stays far behind.
    paddle.seed(0)
    train = make_loader("train50k", 32, seed=0, subset=256)
    val = make_loader("val", 500, subset=1000)
    model = MNIST()
    history = fit(model, train, make_optimizer("adam", 0.002, model.parameters()), 15, val_loader=val)
    verdict = fitting_verdict(history)
    assert history.epochs[-1]["train_acc"] == 1.0
    assert verdict.verdict == OVER, str(verdict)
    assert verdict.numbers["gap"] > 0.05


def test_a_network_near_chance_is_under_fitting_whatever_its_gap():
    # Found by notebook 2.8.4's author: train 0.1055 / val 0.0840 was called over-fitting.
    rows = _rows((0.1055, 0.0840), losses=[(2.30, 2.31)])
    verdict = fitting_verdict(rows)
    assert verdict.verdict == UNDER
    assert "below 0.98" in verdict.reasons[0]
    rising = _rows((0.12, 0.10), (0.13, 0.09), losses=[(2.3, 2.0), (2.2, 2.5)])
    assert fitting_verdict(rising).verdict == UNDER
