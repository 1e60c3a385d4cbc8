"""Read a run's training and validation record and say whether it under-fits, fits well or over-fits.

The course's rule of thumb (chapter 2.8: "如果训练集的准确率低于验证集，说明网络训练程度不够") reads the
sign of "training accuracy minus validation accuracy". Measured here, that sign says more about *how* the
training accuracy was measured than about the network: ``History``'s ``train_acc`` is the running accuracy
of the epoch, counted while the weights were still changing, so it lags them (notebook 2.8.3, section 4).
On 1,280 training images the running accuracy was 0.5195, the final weights scored 0.6469 on those same
images, and the validation accuracy was 0.5630: the sign of the gap flips once the accuracy is measured
properly. So ``fitting_verdict`` never reads the running accuracy. It judges

- **under-fitting** from the *final weights* on (a fixed slice of) the training images, measured with
  ``course.evaluate``: they do not fit even the images they were trained on (accuracy below
  ``min_train_acc``); or the validation loss was still falling in the last epoch by more than its
  measured epoch-to-epoch noise (training stopped while it still helped);
- **over-fitting** from the validation loss: its last two epochs both ended above its minimum by more than
  the measured noise while the training loss kept falling (more epochs now hurt). One epoch is not enough:
  a single epoch can spike (measured: one seed of a 2,000-image run jumped 11 % in its last epoch);
- **fitting well** otherwise. The gap between training and validation accuracy is reported (it is the
  generalization gap), not judged: a gap with the validation loss still at its minimum is not over-fitting.

The noise is measured, not assumed: ``docs/sweeps/fitting-verdict/measure_noise.py`` re-trains small runs
with three seeds, and ``measured_noise()`` derives ``sigma_step`` (the standard deviation of the relative
epoch-to-epoch change of the validation loss after its minimum, pooled over runs) from the committed
``seeds.csv``. Both noise thresholds default to ``2 * sigma_step``.

The evaluated training metrics come from either

- ``fitting_verdict(history, model=model, train_loader=loader)``: evaluates ``model`` (the network as
  training left it) on ``loader`` once, e.g. ``make_loader("train50k", 1000, train=False, subset=2000)``;
- or rows that carry them: ``fit(..., callbacks=[TrainSetEval(loader)])`` adds ``train_eval_loss`` and
  ``train_eval_acc`` to every ``History`` row (the training-loss trend is then read from them too).

Used by notebooks 2.8.3 and 2.8.4 and by homework 2-8.
"""
from __future__ import annotations

import csv
import functools
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CourseError
from .events import Callback
from .train import evaluate

UNDER, WELL, OVER = "under-fitting", "fitting well", "over-fitting"
# Package data (so that a wheel install and a grading sandbox have it), measured as docs/sweeps/fitting-verdict says.
NOISE_CSV = Path(__file__).resolve().parent / "measured" / "fitting_verdict_seeds.csv"


class TrainSetEval(Callback):
    """After every epoch, evaluate the network on a fixed set of training images (``loader``, best not
    shuffled) and add ``train_eval_loss`` / ``train_eval_acc`` to that epoch's ``History`` row.

    Unlike the running ``train_acc``, these are the end-of-epoch weights' numbers. The cost is one
    evaluation of ``loader`` per epoch, so a slice (a few thousand images) is usually enough.
    """

    def __init__(self, loader):
        self.loader = loader

    def after_epoch(self, state):
        result = evaluate(state.model, self.loader, state.loss_fn)
        state.history.epochs[-1].update(train_eval_loss=result["loss"], train_eval_acc=result["acc"],
                                        train_eval_n=result["n"])


def step_variances(curves) -> list[float]:
    """For each validation-loss curve, the variance of its relative epoch-to-epoch changes after its minimum
    (curves with fewer than two such steps give none): what ``measured_noise`` and homework 2-8's
    ``EPOCH_TOL`` pool into a standard deviation."""
    variances = []
    for losses in curves:
        losses = list(losses)
        low = losses.index(min(losses))
        steps = [losses[i + 1] / losses[i] - 1 for i in range(low, len(losses) - 1)]
        if len(steps) >= 2:
            variances.append(statistics.variance(steps))
    return variances


@functools.lru_cache(maxsize=None)
def measured_noise(path: str | None = None) -> dict:
    """``sigma_step`` and what it was measured on, from the seed runs in ``seeds.csv``.

    For every run (configuration, validation subset, seed): the relative change of the validation loss
    from one epoch to the next, after the epoch of its minimum. Its variance is pooled over the runs
    with at least two such steps; ``sigma_step`` is the square root. A run whose validation loss only
    falls contributes nothing (it has no "after the minimum").
    """
    path = Path(path) if path else NOISE_CSV
    if not path.exists():
        raise CourseError(f"{path} is missing: restore it (git checkout course/measured) or measure "
                          "it with python docs/sweeps/fitting-verdict/measure_noise.py; or pass the "
                          "thresholds (val_loss_rise=..., still_falling=...) to fitting_verdict yourself.")
    runs: dict[tuple, list[float]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            runs.setdefault((row["config"], row["val_subset"], row["seed"]), []).append(float(row["val_loss"]))
    variances = step_variances(runs.values())
    if len(variances) < 2:
        raise CourseError(f"{path} has fewer than two runs with a validation loss measured past its minimum; "
                          "re-measure it with docs/sweeps/fitting-verdict/measure_noise.py.")
    return {"sigma_step": math.sqrt(statistics.fmean(variances)), "runs": len(variances),
            "configs": sorted({key[0] for key in runs}), "seeds": sorted({int(key[2]) for key in runs})}


@dataclass(frozen=True)
class FittingVerdict:
    verdict: str                      # one of UNDER, WELL, OVER
    reasons: tuple[str, ...]          # each with the numbers that triggered it
    advice: str
    numbers: dict = field(default_factory=dict)

    def __str__(self) -> str:
        n = self.numbers
        images = f"{n['train_n']} training images" if n["train_n"] == n["train_n"] else "the training images"
        lines = [f"verdict: {self.verdict}",
                 f"  last epoch {n['epoch']}: final weights on {images}: loss "
                 f"{n['train_loss']:.4f}, acc {n['train_acc']:.4f} | validation: loss {n['val_loss']:.4f}, "
                 f"acc {n['val_acc']:.4f} | gap (train - val acc) {n['gap']:+.4f}",
                 f"  val loss: best {n['best_val_loss']:.4f} at epoch {n['best_val_epoch']}, last "
                 f"{n['val_loss']:.4f} ({n['val_loss_rise']:+.1%} from best; noise threshold "
                 f"{n['val_loss_rise_tol']:.1%})"]
        if n.get("running_train_acc") is not None:
            lines.append(f"  (History's running train acc {n['running_train_acc']:.4f}: not used, it lags the weights)")
        lines += [f"  - {reason}" for reason in self.reasons]
        lines.append(f"  advice: {self.advice}")
        return "\n".join(lines)


def _rows(history) -> list[dict]:
    rows = getattr(history, "epochs", history)
    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError("fitting_verdict needs at least one finished epoch; train first.")
    missing = [k for k in ("val_loss", "val_acc") if k not in rows[-1]]
    if missing or any(not math.isfinite(r["val_loss"]) for r in rows):
        raise ValueError("fitting_verdict needs validation metrics every epoch (val_loss, val_acc): "
                         "train on the 50k split and pass val_loader to fit "
                         "(train_split='train50k' in a Config).")
    return rows


def _train_side(rows, model, train_loader):
    """(final train loss, final train acc, images, per-epoch train losses for the trend, where they come from)."""
    if (model is None) != (train_loader is None):
        raise ValueError("fitting_verdict: pass model and train_loader together (the network as training left "
                         "it, and the training images to evaluate it on), or neither.")
    evaluated = all("train_eval_loss" in r and "train_eval_acc" in r for r in rows)
    trend = [r["train_eval_loss"] for r in rows] if evaluated else [r.get("train_loss", math.nan) for r in rows]
    if model is not None:
        result = evaluate(model, train_loader)
        return result["loss"], result["acc"], result["n"], trend, "evaluate(model, train_loader)"
    if evaluated:
        last = rows[-1]
        return (last["train_eval_loss"], last["train_eval_acc"], last.get("train_eval_n", math.nan), trend,
                "History rows (TrainSetEval)")
    raise ValueError("fitting_verdict judges under-fitting from the final weights' accuracy on training images, "
                     "which History's running train_acc is not (it lags the weights, notebook 2.8.3 section 4). "
                     "Pass model=..., train_loader=... (e.g. make_loader('train50k', 1000, train=False, "
                     "subset=2000)), or train with callbacks=[TrainSetEval(loader)].")


def fitting_verdict(history, *, model=None, train_loader=None, min_train_acc: float = 0.98,
                    val_loss_rise: float | None = None, still_falling: float | None = None,
                    learned_above: float = 0.5) -> FittingVerdict:
    """Verdict on a run from its validation curve and its final weights' training loss and accuracy.

    Parameters
    ----------
    history : History or list of dict
        Rows with ``epoch, val_loss, val_acc`` (what ``fit`` records with a ``val_loader``) and, unless
        ``model`` / ``train_loader`` are given, ``train_eval_loss, train_eval_acc`` (``TrainSetEval``).
    model, train_loader : optional
        The network as training left it and training images to evaluate it on (``course.evaluate``).
        The training-loss trend is then read from ``train_eval_loss`` when the rows have it, else from
        ``History``'s running ``train_loss`` (a stated proxy: it lags the weights, but it falls as long as
        training still lowers the loss, which is all the trend is used for).
    min_train_acc : float, default 0.98
        Under-fitting when the final weights classify fewer of their training images correctly: they do
        not fit even the data they learned from. A level, not a noise threshold: the course CNN passes it
        on the training images in every run of ``docs/sweeps/fitting-verdict`` that trained long enough.
    val_loss_rise : float, default ``2 * measured_noise()["sigma_step"]``
        Over-fitting when the validation loss of the last two epochs is this fraction above its minimum
        (both after it) while the training loss at the last epoch is below its value at the minimum's epoch.
    still_falling : float, default ``2 * measured_noise()["sigma_step"]``
        Under-fitting when the last epoch lowered the validation loss by more than this fraction (to a
        new minimum): training was stopped while it still helped.
    learned_above : float, default 0.5
        Below this training accuracy the network has learned too little for its curves to say anything
        about over-fitting: the run is under-fitting whatever they do. (Chance is 0.1;
        ``course.metrics.at_chance_level`` is the separate "stalled" test a sweep reports.)

    Over-fitting wins when both apply: a network can memorize a tiny training set while its training
    accuracy is still below ``min_train_acc``. The accuracy gap (train - validation) is reported in
    ``numbers['gap']`` but decides nothing.
    """
    rows = _rows(history)
    train_loss, train_acc, train_n, trend, source = _train_side(rows, model, train_loader)
    if val_loss_rise is None or still_falling is None:
        sigma = measured_noise()["sigma_step"]
        val_loss_rise = 2 * sigma if val_loss_rise is None else val_loss_rise
        still_falling = 2 * sigma if still_falling is None else still_falling
    last = rows[-1]
    best_i = min(range(len(rows)), key=lambda i: rows[i]["val_loss"])
    best = rows[best_i]
    rise = last["val_loss"] / best["val_loss"] - 1 if best["val_loss"] > 0 else 0.0
    step = rows[-1]["val_loss"] / rows[-2]["val_loss"] - 1 if len(rows) > 1 and rows[-2]["val_loss"] > 0 else math.nan
    numbers = {"epoch": last.get("epoch", len(rows)), "train_acc": train_acc, "train_loss": train_loss,
               "train_n": train_n, "train_source": source, "running_train_acc": last.get("train_acc"),
               "val_acc": last["val_acc"], "val_loss": last["val_loss"], "gap": train_acc - last["val_acc"],
               "best_val_epoch": best.get("epoch", best_i + 1), "best_val_loss": best["val_loss"],
               "val_loss_rise": rise, "last_val_step": step,
               "val_loss_rise_tol": val_loss_rise, "still_falling_tol": still_falling}

    learned = train_acc >= learned_above  # near chance: judged below as under-fitting
    falling = trend[-1] < trend[best_i]
    above = [r["val_loss"] / best["val_loss"] - 1 > val_loss_rise for r in rows[best_i + 1:]]
    if learned and len(above) >= 2 and all(above[-2:]) and falling:
        reason = (f"validation loss ended {rise:.1%} above its best ({best['val_loss']:.4f}, epoch "
                  f"{numbers['best_val_epoch']}), the last two epochs both more than the noise threshold "
                  f"{val_loss_rise:.1%} above it, while the training loss kept falling "
                  f"({trend[best_i]:.4f} -> {trend[-1]:.4f})")
        return FittingVerdict(OVER, (reason,),
                              f"keep the weights of epoch {numbers['best_val_epoch']} (early stopping / "
                              "BestCheckpoint), add weight decay (--weight_decay), or train on more data.",
                              numbers)
    under = []
    if train_acc < min_train_acc:
        under.append(f"the final weights classify only {train_acc:.4f} of the training images correctly "
                     f"(below {min_train_acc:g}): the network does not yet fit even the images it trains on")
    if best_i == len(rows) - 1 and step < -still_falling:
        under.append(f"validation loss fell {-step:.1%} in the last epoch (more than the noise threshold "
                     f"{still_falling:.1%}) to its lowest value: training stopped while it still helped")
    spike = ([f"the validation loss rose {rise:.1%} above its best in the last epoch alone: one epoch can be a "
              "spike; train an epoch or two more to tell"] if len(above) >= 1 and above[-1] else [])
    if under:
        return FittingVerdict(UNDER, tuple(under + spike),
                              "train for more epochs, raise the learning rate or use a better optimizer "
                              "or schedule; remove regularization that is too strong.", numbers)
    return FittingVerdict(WELL, (f"the final weights fit the training images (accuracy {train_acc:.4f} >= "
                                 f"{min_train_acc:g}); validation loss is within {val_loss_rise:.1%} of its best "
                                 f"and no longer falling by more than {still_falling:.1%} an epoch; the accuracy "
                                 f"gap train - validation is {numbers['gap']:+.4f}", *spike),
                          "estimate real-world accuracy once on the test set; tune further only on validation.",
                          numbers)
