"""Homework 2-8's verdict follows fitting_verdict: final weights on the training images, and the validation curve."""
import csv

import pytest

from course.diagnose import NOISE_CSV
from course.errors import CourseError
from course.homework import hw2_8


def _given(val_subset=0, seed=1):
    """The homework's run (seed 1 is the given one) as run_summary would summarize it, from the noise measurement."""
    rows = [r for r in csv.DictReader(open(NOISE_CSV, encoding="utf-8"))
            if r["config"] == "hw200" and int(r["val_subset"]) == val_subset and int(r["seed"]) == seed]
    col = lambda key: [float(r[key]) for r in rows]
    return {"epochs_run": len(rows), "val_losses": col("val_loss"), "val_accs": col("val_acc"),
            "train_losses": col("train_loss"), "train_accs": col("train_acc"),
            "train_eval_losses": col("train_eval_loss"), "train_eval_accs": col("train_eval_acc"),
            "final_val_loss": col("val_loss")[-1], "final_val_acc": col("val_acc")[-1]}


@pytest.mark.parametrize("val_subset", [1000, 0])
def test_the_given_run_is_over_fitting(val_subset):
    given = _given(val_subset)
    assert given["epochs_run"] == hw2_8.HOMEWORK["num_epochs"]
    assert hw2_8.check_verdict("过拟合", given).ok is True
    assert hw2_8.check_verdict("under-fitting", given).ok is False
    assert hw2_8.check_verdict("fitting well", given).ok is False


def test_the_verdict_follows_the_curve_not_the_accuracy_gap():
    # Planted: the same run with its validation loss held at its minimum after it -- the accuracy gap
    # (train 1.0, validation about 0.83) is unchanged, but nothing rose: no longer over-fitting.
    given = _given()
    low = min(given["val_losses"])
    i = given["val_losses"].index(low)
    flat = {**given, "val_losses": given["val_losses"][:i] + [low] * (len(given["val_losses"]) - i)}
    assert hw2_8.check_verdict("over-fitting", flat).ok is False
    assert hw2_8.check_verdict("fitting well", flat).ok is True


def test_a_summary_without_evaluated_training_metrics_is_refused():
    given = _given()
    del given["train_eval_accs"], given["train_eval_losses"]
    with pytest.raises(CourseError, match="train_eval_accs"):
        hw2_8.check_verdict("over-fitting", given)


def test_the_homework_run_records_the_evaluated_training_metrics():
    history = type("H", (), {"epochs": [{"epoch": 1, "train_loss": 2.0, "train_acc": 0.3, "val_loss": 1.8,
                                         "val_acc": 0.4, "train_eval_loss": 1.5, "train_eval_acc": 0.6}]})()
    summary = hw2_8.summarize(history)
    assert summary["train_eval_accs"] == [0.6] and summary["train_accs"] == [0.3]   # both kept, keys unchanged
    assert {"epochs_run", "val_losses", "val_accs", "train_accs", "train_losses", "final_val_loss",
            "final_val_acc"} <= set(summary)
