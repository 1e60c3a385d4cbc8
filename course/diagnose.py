"""Read train / validation curves and say whether a run under-fits, fits well or over-fits.

The course's rule of thumb (chapter 2.8): training accuracy far above validation
accuracy means over-fitting; training accuracy that is itself low (or below
validation) means the network has not learned enough yet. ``fitting_verdict``
applies that rule to a ``History`` (or its ``epochs`` rows) and returns the
numbers behind the verdict, so a student can check it rather than trust it.

One caveat the numbers carry: ``train_acc`` in a ``History`` is the running
accuracy over the epoch, measured while the weights were still changing, so it
lags the end-of-epoch network; early in training it is often *below* validation
accuracy. Evaluate the training split with ``course.train.evaluate`` when the
exact figure matters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

UNDER, WELL, OVER = "under-fitting", "fitting well", "over-fitting"


@dataclass(frozen=True)
class FittingVerdict:
    verdict: str                      # one of UNDER, WELL, OVER
    reasons: tuple[str, ...]          # each with the numbers that triggered it
    advice: str
    numbers: dict = field(default_factory=dict)

    def __str__(self) -> str:
        n = self.numbers
        lines = [f"verdict: {self.verdict}",
                 f"  last epoch {n['epoch']}: train acc {n['train_acc']:.4f}, val acc {n['val_acc']:.4f}, "
                 f"gap {n['gap']:+.4f}",
                 f"  val loss: best {n['best_val_loss']:.4f} at epoch {n['best_val_epoch']}, "
                 f"last {n['val_loss']:.4f} ({n['val_loss_rise']:+.1%} from best)"]
        lines += [f"  - {reason}" for reason in self.reasons]
        lines.append(f"  advice: {self.advice}")
        return "\n".join(lines)


def _rows(history) -> list[dict]:
    rows = getattr(history, "epochs", history)
    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError("fitting_verdict needs at least one finished epoch; train first.")
    missing = [k for k in ("train_loss", "train_acc", "val_loss", "val_acc") if k not in rows[-1]]
    if missing or any(not math.isfinite(r["val_loss"]) for r in rows):
        raise ValueError("fitting_verdict needs validation metrics every epoch (val_loss, val_acc): "
                         "train on the 50k split and pass val_loader to fit "
                         "(train_split='train50k' in a Config).")
    return rows


def fitting_verdict(history, *, gap_tolerance: float = 0.01, min_train_acc: float = 0.98,
                    val_loss_rise: float = 0.10, learned_above: float = 0.5) -> FittingVerdict:
    """Verdict on a run from its per-epoch train and validation metrics.

    Parameters
    ----------
    history : History or list of dict
        Rows with ``epoch, train_loss, train_acc, val_loss, val_acc`` (what ``fit`` records).
    gap_tolerance : float, default 0.01
        Over-fitting when train accuracy exceeds validation accuracy by more than this (1 point).
    min_train_acc : float, default 0.98
        Under-fitting when the training accuracy itself stays below this.
    val_loss_rise : float, default 0.10
        Over-fitting when the validation loss ends this fraction above its best while the
        training loss kept falling (the curves have crossed: more epochs now hurt).

    learned_above : float, default 0.5
        Below this training accuracy the network has learned too little for its curves to say
        anything about over-fitting, and the run is under-fitting whatever they do: a gap between
        two low accuracies is noise, not memorization. This is not the chance level (accuracy
        0.1; "at chance level", below 0.2, is ``course.metrics.at_chance_level``, which a sweep
        reports as ``stalled``): a run between the two has learned, just not enough to judge.

    Otherwise over-fitting wins when both apply: a network can memorize its training set while
    its training accuracy is still below ``min_train_acc`` (a tiny or noisy training set).
    """
    rows = _rows(history)
    last = rows[-1]
    best_i = min(range(len(rows)), key=lambda i: rows[i]["val_loss"])
    best = rows[best_i]
    gap = last["train_acc"] - last["val_acc"]
    rise = last["val_loss"] / best["val_loss"] - 1 if best["val_loss"] > 0 else 0.0
    numbers = {"epoch": last.get("epoch", len(rows)), "train_acc": last["train_acc"], "val_acc": last["val_acc"],
               "gap": gap, "train_loss": last["train_loss"], "val_loss": last["val_loss"],
               "best_val_epoch": best.get("epoch", best_i + 1), "best_val_loss": best["val_loss"],
               "val_loss_rise": rise}

    learned = last["train_acc"] >= learned_above  # near chance: judged below as under-fitting
    over = []
    if learned and gap > gap_tolerance:
        over.append(f"train accuracy {last['train_acc']:.4f} exceeds validation accuracy {last['val_acc']:.4f} "
                    f"by {gap:.4f} (> {gap_tolerance:g})")
    if learned and rise > val_loss_rise and last["train_loss"] < best["train_loss"]:
        over.append(f"validation loss rose {rise:.1%} above its best ({best['val_loss']:.4f}, epoch "
                    f"{numbers['best_val_epoch']}) while training loss kept falling "
                    f"({best['train_loss']:.4f} -> {last['train_loss']:.4f})")
    if over:
        return FittingVerdict(OVER, tuple(over),
                              f"keep the weights of epoch {numbers['best_val_epoch']} (early stopping / "
                              "BestCheckpoint), add weight decay (--weight_decay), or train on more data.",
                              numbers)
    under = []
    if last["train_acc"] < min_train_acc:
        under.append(f"training accuracy {last['train_acc']:.4f} is below {min_train_acc:g}: "
                     "the network does not yet fit even the images it trains on")
    if gap < -gap_tolerance:
        under.append(f"training accuracy is {-gap:.4f} below validation accuracy: still learning fast "
                     "(the epoch's running accuracy lags the weights)")
    if under:
        return FittingVerdict(UNDER, tuple(under),
                              "train for more epochs, raise the learning rate or use a better optimizer "
                              "or schedule; remove regularization that is too strong.", numbers)
    return FittingVerdict(WELL, (f"train {last['train_acc']:.4f} and validation {last['val_acc']:.4f} "
                                 f"accuracy are within {gap_tolerance:g} and validation loss is within "
                                 f"{val_loss_rise:.0%} of its best",),
                          "estimate real-world accuracy once on the test set; tune further only on validation.",
                          numbers)
