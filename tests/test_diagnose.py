"""fitting_verdict on hand-made curves and on real runs: what it reads, and the noise its thresholds come from."""
import csv
import math
import statistics

import paddle
import pytest

from course import MNIST, TrainSetEval, evaluate, fit, fitting_verdict, make_loader, make_optimizer, measured_noise
from course.diagnose import NOISE_CSV, OVER, UNDER, WELL, step_variances
from course.errors import CourseError


def _rows(*accs, losses=None):
    """Rows of (evaluated train acc, val acc) per epoch; losses (evaluated train loss, val loss) per epoch."""
    losses = losses or [(0.5 / (i + 1), 0.4) for i in range(len(accs))]
    return [{"epoch": i + 1, "train_eval_acc": t, "val_acc": v, "train_eval_loss": tl, "val_loss": vl,
             "train_acc": 0.0, "train_loss": 9.9}   # running metrics: deliberately absurd, never read
            for i, ((t, v), (tl, vl)) in enumerate(zip(accs, losses))]


def test_step_variances_are_those_of_the_relative_steps_after_the_minimum():
    # minimum at index 1 (1.0); steps after it: +10 %, then 1.21 -> 1.1: -9.0909 %; before it ignored
    (variance,) = step_variances([[2.0, 1.0, 1.1, 1.0]])
    assert variance == pytest.approx(statistics.variance([0.1, 1.0 / 1.1 - 1]))
    assert step_variances([[3.0, 2.0, 1.0], [1.0, 2.0]]) == []   # only falling; one step after the minimum


def test_the_noise_threshold_is_derived_from_the_committed_seed_runs():
    runs = {}
    with open(NOISE_CSV, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            runs.setdefault((row["config"], row["val_subset"], row["seed"]), []).append(float(row["val_loss"]))
    variances = step_variances(runs.values())
    noise = measured_noise()
    assert noise["seeds"] == [0, 1, 2] and noise["runs"] == len(variances) >= 6
    assert noise["sigma_step"] == pytest.approx(math.sqrt(statistics.fmean(variances)))
    verdict = fitting_verdict(_rows((0.99, 0.98), (0.995, 0.98), losses=[(0.05, 0.1), (0.04, 0.1)]))
    assert verdict.numbers["val_loss_rise_tol"] == pytest.approx(2 * noise["sigma_step"])


def test_a_planted_noise_file_moves_the_threshold(tmp_path):
    path = tmp_path / "seeds.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["config", "val_subset", "seed", "epoch", "val_loss"])
        for seed, jitter in ((0, 0.3), (1, 0.3)):
            for epoch, loss in enumerate([1.0, 0.5, 0.5 * (1 + jitter), 0.5, 0.5 * (1 + jitter)], 1):
                w.writerow(["x", 0, seed, epoch, loss])
    assert measured_noise(str(path))["sigma_step"] > 5 * measured_noise()["sigma_step"]
    with pytest.raises(CourseError, match="measure_noise.py"):
        measured_noise(str(tmp_path / "missing.csv"))


def test_the_running_accuracy_is_never_read():
    # The measured case: running 0.5195, final weights 0.6469 on the same images, validation 0.5630.
    rows = _rows((0.6469, 0.5630), losses=[(1.2, 1.3)])
    rows[0]["train_acc"] = 0.5195
    verdict = fitting_verdict(rows)
    assert verdict.numbers["train_acc"] == 0.6469 and verdict.numbers["gap"] == pytest.approx(0.0839)
    assert verdict.numbers["running_train_acc"] == 0.5195
    assert verdict.verdict == UNDER and "0.6469" in verdict.reasons[0]
    for row in rows:
        del row["train_eval_acc"], row["train_eval_loss"]
    with pytest.raises(ValueError, match="TrainSetEval"):
        fitting_verdict(rows)                      # no evaluated metrics: refuse, never fall back


def test_a_rising_validation_loss_is_over_fitting_and_names_the_best_epoch():
    rows = _rows((0.990, 0.988), (0.995, 0.987), (1.0, 0.986),
                 losses=[(0.05, 0.040), (0.03, 0.045), (0.02, 0.050)])
    verdict = fitting_verdict(rows)
    assert verdict.verdict == OVER
    assert verdict.numbers["best_val_epoch"] == 1 and verdict.numbers["val_loss_rise"] == pytest.approx(0.25)
    assert "epoch 1" in verdict.advice


def test_a_rise_within_the_noise_or_with_a_flat_training_loss_is_not_over_fitting():
    tol = 2 * measured_noise()["sigma_step"]
    accs = ((0.99, 0.98), (0.995, 0.98), (0.996, 0.98))
    within = _rows(*accs, losses=[(0.05, 0.1), (0.04, 0.1 * (1 + 0.9 * tol)), (0.03, 0.1 * (1 + 0.9 * tol))])
    assert fitting_verdict(within).verdict == WELL
    beyond = _rows(*accs, losses=[(0.05, 0.1), (0.04, 0.1 * (1 + 1.1 * tol)), (0.03, 0.1 * (1 + 1.1 * tol))])
    assert fitting_verdict(beyond).verdict == OVER
    flat_train = _rows(*accs, losses=[(0.03, 0.1), (0.04, 0.1 * (1 + 2 * tol)), (0.05, 0.1 * (1 + 2 * tol))])
    assert fitting_verdict(flat_train).verdict != OVER
    # one epoch above the threshold is not enough: it can be a spike (seeds.csv, small2000 seed 1)
    spike = _rows(*accs, losses=[(0.05, 0.1), (0.04, 0.1 * (1 - 0.1 * tol)), (0.03, 0.1 * (1 + 2 * tol))])
    verdict = fitting_verdict(spike)
    assert verdict.verdict == WELL and "spike" in verdict.reasons[-1]


def test_a_gap_with_the_validation_loss_at_its_minimum_is_not_over_fitting():
    # The old rule called a 1-point gap over-fitting while the validation loss was still at its minimum.
    rows = _rows((0.985, 0.975), (0.995, 0.980), losses=[(0.06, 0.0800), (0.03, 0.0799)])
    verdict = fitting_verdict(rows)
    assert verdict.verdict == WELL and verdict.numbers["gap"] == pytest.approx(0.015)


def test_low_training_accuracy_or_a_still_falling_validation_loss_is_under_fitting():
    assert fitting_verdict(_rows((0.80, 0.86))).verdict == UNDER
    tol = 2 * measured_noise()["sigma_step"]
    falling = _rows((0.99, 0.97), (0.995, 0.98), losses=[(0.05, 0.1), (0.03, 0.1 * (1 - 1.5 * tol))])
    verdict = fitting_verdict(falling)
    assert verdict.verdict == UNDER and "still helped" in verdict.reasons[0]
    settled = _rows((0.99, 0.97), (0.995, 0.98), losses=[(0.05, 0.1), (0.03, 0.1 * (1 - 0.5 * tol))])
    assert fitting_verdict(settled).verdict == WELL


def test_without_validation_metrics_the_error_says_how_to_get_them():
    rows = [{"epoch": 1, "train_eval_acc": 0.9, "val_acc": math.nan, "train_eval_loss": 0.3, "val_loss": math.nan}]
    with pytest.raises(ValueError, match="train_split='train50k'"):
        fitting_verdict(rows)
    with pytest.raises(ValueError, match="at least one finished epoch"):
        fitting_verdict([])
    with pytest.raises(ValueError, match="together"):
        fitting_verdict(_rows((0.9, 0.9)), model=MNIST())


def test_a_network_near_chance_is_under_fitting_whatever_its_curves():
    rows = _rows((0.1055, 0.0840), losses=[(2.30, 2.31)])
    assert fitting_verdict(rows).verdict == UNDER
    rising = _rows((0.12, 0.10), (0.13, 0.09), losses=[(2.3, 2.0), (2.2, 2.5)])
    assert fitting_verdict(rising).verdict == UNDER


@pytest.mark.slow
def test_memorizing_a_small_training_set_is_over_fitting_both_ways_of_passing_the_training_images():
    # 256 training images, 15 epochs: the network memorizes them; the validation loss turns up.
    paddle.seed(0)
    train = make_loader("train50k", 32, seed=0, subset=256)
    train_eval = make_loader("train50k", 256, train=False, subset=256)
    val = make_loader("val", 500, subset=1000)
    model = MNIST()
    history = fit(model, train, make_optimizer("adam", 0.002, model.parameters()), 15, val_loader=val,
                  callbacks=[TrainSetEval(train_eval)])
    from_rows = fitting_verdict(history)
    assert from_rows.verdict == OVER, str(from_rows)
    assert from_rows.numbers["train_acc"] == 1.0 == evaluate(model, train_eval)["acc"]
    from_model = fitting_verdict(history, model=model, train_loader=train_eval)
    assert from_model.verdict == OVER and from_model.numbers["train_loss"] == pytest.approx(
        history.epochs[-1]["train_eval_loss"], rel=1e-5)
