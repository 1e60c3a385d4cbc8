"""Homework 2-8: diagnose an over-fitting run and fix it.

The given run (200 training images, batch 16, Adam 0.002 constant, seed 1, 20 epochs) and the checks of the
three answers. Both the student's self-check and ``python -m course grade 2-8`` call these functions; only
what a check says about the answer it was given is printed, never the expected answer.

Tolerances are measured (``docs/sweeps/homework-2-8/README.md``), and ``tolerances()`` derives them from
the recorded files: EPOCH_TOL and ACC_TOL from the given run re-trained with other seeds
(``measure_seeds.py`` -> ``seeds.csv``), FIX_MARGIN from "null fixes" that change nothing on purpose, in the
same paired re-run a fix gets (``measure_nulls.py`` -> ``nulls.csv``).
"""
from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

from ..device import set_seed
from ..errors import CourseError
from .answers import DIGIT, Check, parse_int, parse_number, parse_verdict, reason_check

HOMEWORK = {"subset": 200, "batch_size": 16, "lr": 0.002, "seed": 1, "num_epochs": 20}
SMOKE_VAL_SUBSET = 500


def val_subset(smoke: bool) -> int:
    return SMOKE_VAL_SUBSET if smoke else 0   # 0 = all 10,000 validation images


def train_homework_run(weight_decay: float = 0.0, patience: int = 0, *, seed: int | None = None,
                       val_subset: int = 0):
    """The homework's run: same seed, data and batch order every time; optionally L2 weight decay and/or
    early stopping on the validation loss (best weights restored). Returns ``(model, history)``."""
    from ..callbacks import EarlyStopping
    from ..data import make_loader
    from ..diagnose import TrainSetEval
    from ..model import MNIST
    from ..optim import make_optimizer
    from ..train import fit

    seed = HOMEWORK["seed"] if seed is None else seed
    train_loader = make_loader("train50k", HOMEWORK["batch_size"], seed=seed, subset=HOMEWORK["subset"])
    val_loader = make_loader("val", 1000, subset=val_subset)
    set_seed(seed)
    net = MNIST()
    optimizer = make_optimizer("adam", HOMEWORK["lr"], net.parameters(), weight_decay=weight_decay, regularizer="l2")
    # The end-of-epoch weights on the 200 training images (what fitting_verdict judges under-fitting from);
    # evaluating draws no random numbers, so the run is the same with or without it.
    callbacks = [TrainSetEval(make_loader("train50k", HOMEWORK["subset"], train=False, subset=HOMEWORK["subset"]))]
    if patience:
        callbacks.append(EarlyStopping("val_loss", patience=patience, restore_best=True))
    history = fit(net, train_loader, optimizer, HOMEWORK["num_epochs"], val_loader=val_loader, callbacks=callbacks)
    return net, history


# Package data (measured by the scripts in docs/sweeps/homework-2-8/, see its README).
SEEDS_CSV = Path(__file__).resolve().parent / "data" / "2-8" / "seeds.csv"
NULLS_CSV = SEEDS_CSV.with_name("nulls.csv")


def summarize(history, model=None, val_subset: int = 0) -> dict:
    """What the checks need from a run, JSON-able (so re-training can be cached): the per-epoch validation
    losses, the final validation loss / accuracy of the model as it ends (best weights, if restored).

    ``train_losses`` / ``train_accs`` are History's running figures (kept for the tables);
    ``train_eval_losses`` / ``train_eval_accs`` are the end-of-epoch weights evaluated on the training
    images (``TrainSetEval``, which ``train_homework_run`` adds), what ``fitting_verdict`` reads."""
    epochs = history.epochs
    summary = {"epochs_run": len(epochs), "val_losses": [row["val_loss"] for row in epochs],
               "val_accs": [row["val_acc"] for row in epochs], "train_accs": [row["train_acc"] for row in epochs],
               "train_losses": [row["train_loss"] for row in epochs],
               "final_val_loss": epochs[-1]["val_loss"], "final_val_acc": epochs[-1]["val_acc"]}
    if all("train_eval_acc" in row for row in epochs):
        summary.update(train_eval_losses=[row["train_eval_loss"] for row in epochs],
                       train_eval_accs=[row["train_eval_acc"] for row in epochs])
    if model is not None:
        from ..data import make_loader
        from ..train import evaluate
        result = evaluate(model, make_loader("val", 1000, subset=val_subset))
        summary.update(final_val_loss=result["loss"], final_val_acc=result["acc"])
    return summary


def run_summary(weight_decay: float = 0.0, patience: int = 0, *, val_subset: int = 0, seed: int | None = None) -> dict:
    """Train the homework's run (of variant ``seed``) with a fix and summarize it (what ``python -m course grade``
    caches)."""
    model, history = train_homework_run(weight_decay, patience, seed=seed, val_subset=val_subset)
    return summarize(history, model if patience else None, val_subset)


def tolerances(val_subset: int = 0) -> dict:
    """EPOCH_TOL, FIX_MARGIN, ACC_TOL from the seed spread of the given run (seeds.csv, rows of this val_subset).

    From the runs with seeds 1, 2, 3 (same settings otherwise):
    - sigma_step: the epoch-to-epoch relative change of the validation loss after its minimum, its standard
      deviation pooled over seeds: how much the curve jitters from one epoch to the next on this validation set.
      EPOCH_TOL = sigma_step (epochs that close to the minimum are tied with it).
    - ACC_TOL = 2*sqrt(2) * the standard deviation over seeds of the final validation accuracy (a difference of
      two single-seed runs has standard deviation sqrt(2)*sigma; 2*sqrt(2)*sigma covers about 95 % of them).

    And from nulls.csv (``null_noise``): FIX_MARGIN = 2 * the root mean square of the relative change of the
    final validation loss that "null fixes" (weight decays of 1e-8 to 1e-6, which do nothing on purpose) make
    in the paired re-run. A fix is compared with the given run from the same seed, weights and batches, so
    the noise it must beat is that of a paired change, not the spread between seeds.
    """
    if not SEEDS_CSV.exists():
        raise CourseError(f"{SEEDS_CSV} is missing: restore it (git checkout course/homework/data/2-8) or "
                          "measure it with docs/sweeps/homework-2-8/measure_seeds.py.")
    runs: dict[int, list[dict]] = {}
    with open(SEEDS_CSV, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if int(row["val_subset"]) == val_subset:
                runs.setdefault(int(row["seed"]), []).append(row)
    if len(runs) < 2:
        raise CourseError(f"{SEEDS_CSV} has fewer than two seeds measured with val_subset {val_subset}; "
                          f"measure them: python docs/sweeps/homework-2-8/measure_seeds.py --val_subset {val_subset}")
    from ..diagnose import step_variances
    variances = step_variances([float(r["val_loss"]) for r in rows] for rows in runs.values())
    sigma_step = math.sqrt(statistics.fmean(variances))
    final_acc = [float(rows[-1]["val_acc"]) for rows in runs.values()]
    return {"EPOCH_TOL": sigma_step, "FIX_MARGIN": 2 * null_noise(val_subset),
            "ACC_TOL": 2 * math.sqrt(2) * statistics.stdev(final_acc), "seeds": sorted(runs)}


def null_noise(val_subset: int = 0) -> float:
    """Root mean square of the relative change of the final validation loss made by null fixes (nulls.csv)."""
    changes = []
    if NULLS_CSV.exists():
        with open(NULLS_CSV, newline="", encoding="utf-8") as f:
            changes = [float(row["relative_change"]) for row in csv.DictReader(f)
                       if int(row["val_subset"]) == val_subset]
    if len(changes) < 2:
        raise CourseError(f"{NULLS_CSV} has fewer than two null fixes measured with val_subset {val_subset}; "
                          f"measure them: python docs/sweeps/homework-2-8/measure_nulls.py --val_subset {val_subset}"
                          " (or restore the file: git checkout course/homework/data/2-8)")
    return math.sqrt(statistics.fmean(c * c for c in changes))


def check_verdict(answer, given: dict) -> Check:
    from ..diagnose import fitting_verdict
    if "train_eval_accs" not in given:
        raise CourseError("the given run's summary has no evaluated training accuracy (train_eval_accs), which "
                          "fitting_verdict needs: it was made by an older version of the course. Delete the "
                          "grading cache (the cache folder of python -m course grade) and grade again.")
    truth = fitting_verdict(_History(given))
    if answer is None:
        return Check(None, "问题 1（诊断）还没有回答：看上面的表格和曲线，把 my_verdict 写成 \"under-fitting\"、"
                           "\"fitting well\" 或 \"over-fitting\"（中文“欠拟合”“拟合良好”“过拟合”也可以）。")
    name = parse_verdict(answer)
    if name is None:
        return Check(None, f"问题 1（诊断）：看不懂 {answer!r}。请写成 \"under-fitting\"、\"fitting well\" 或 "
                           "\"over-fitting\"（或中文的“欠拟合”“拟合良好”“过拟合”）。")
    if name == truth.verdict:
        return Check(True, f"问题 1 ✅ 你的诊断 {name} 与 course.fitting_verdict 对这次训练的判断一致"
                           "（依据最终权重在训练图上的准确率和验证损失的走势，2.8.3 第 6 节的规则）。")
    return Check(False, f"问题 1 ❌ 你的诊断是 {name}，与测量不一致。对照 2.8.3 第 6 节的规则："
                        "最终权重在训练图上的准确率（表中“训练图（评估）”一列，不是滚动的 train acc）够不够高？"
                        "验证损失是一路下降，还是降到最低之后回升、而训练损失还在降？")


def check_best_epoch(answer, given: dict, tol: float) -> Check:
    losses = given["val_losses"]
    if answer is None:
        return Check(None, "问题 2（最好的 epoch）还没有回答：在上面的表格里找到 val loss 最小的那一行，把它的 epoch 写进 my_best_epoch。")
    epoch = parse_int(answer)
    if epoch is None or not 1 <= epoch <= len(losses):
        return Check(None, f"问题 2（最好的 epoch）：{answer!r} 不是 1 到 {len(losses)} 之间的整数 epoch。")
    low = min(losses)
    gap = losses[epoch - 1] / low - 1
    if gap <= tol:
        return Check(True, f"问题 2 ✅ 第 {epoch} 个 epoch 的验证损失 {losses[epoch - 1]:.4f}，与最低值相差不到 {tol:.1%}"
                           "（不同随机种子之间的波动），算作最低。")
    return Check(False, f"问题 2 ❌ 第 {epoch} 个 epoch 的验证损失 {losses[epoch - 1]:.4f}，比最低的那个 epoch 高 {gap:.1%}"
                        f"（超过容差 {tol:.1%}）。注意看的是验证损失（val loss），不是训练损失，也不是准确率。")


def parse_fix(weight_decay, patience):
    """(weight_decay, patience) in canonical form, or (None, message) when they cannot be read."""
    if weight_decay is None and patience is None:
        return None, "问题 3（修复）还没有回答：在 my_weight_decay 和 / 或 my_patience 里写下你的修复（不用的那个写 0）。"
    wd = 0.0 if weight_decay is None else parse_number(weight_decay)
    pat = 0 if patience is None else parse_int(patience)
    if wd is None or wd < 0:
        return None, f"问题 3（修复）：weight_decay 应当是一个不小于 0 的数，例如 0.001，而不是 {weight_decay!r}。"
    if pat is None or pat < 0 or isinstance(patience, str) and parse_number(patience) is None:
        return None, f"问题 3（修复）：patience 应当是一个不小于 0 的整数，例如 3，而不是 {patience!r}。"
    return (wd, pat), ""


def check_fix(weight_decay, patience, given: dict, retrain, tols: dict) -> Check:
    """``retrain(weight_decay, patience) -> run_summary(...)``; called only for a fix that can act."""
    fix, message = parse_fix(weight_decay, patience)
    if fix is None:
        return Check(None, message)
    wd, pat = fix
    if wd == 0 and pat == 0:
        return Check(False, "问题 3 ❌ weight_decay 和 patience 都是 0：这就是原来的训练，什么也没有修。")
    if pat >= HOMEWORK["num_epochs"] and wd == 0:
        return Check(False, f"问题 3 ❌ patience {pat} 不小于训练的 epoch 数 {HOMEWORK['num_epochs']}：早停永远不会触发，什么也没有修。")
    fixed = retrain(wd, pat)
    ref_loss, ref_acc = given["final_val_loss"], given["final_val_acc"]
    drop = 1 - fixed["final_val_loss"] / ref_loss
    parts, inert = [], []
    if wd:
        parts.append(f"weight_decay {wd:g}")
    if pat:
        stopped = fixed["epochs_run"] < HOMEWORK["num_epochs"]
        parts.append(f"早停 patience {pat}（" + (f"在第 {fixed['epochs_run']} 个 epoch 停下）" if stopped else "一直没有触发）"))
        if not stopped:
            inert.append("早停")
    detail = (f"{'，'.join(parts)}：验证损失 {ref_loss:.4f} → {fixed['final_val_loss']:.4f}（"
              + (f"降低 {drop:.1%}" if drop >= 0 else f"反而升高 {-drop:.1%}")
              + f"），验证准确率 {ref_acc:.4f} → {fixed['final_val_acc']:.4f}。")
    if inert and not wd:
        return Check(False, f"问题 3 ❌ {detail} 早停一直没有触发：训练照常跑完了全部 {HOMEWORK['num_epochs']} 个 epoch，"
                            "这个修复没有起作用。patience 要小到验证损失开始回升后能停下来。")
    note = "（早停没有触发，起作用的只有权重衰减。）" if inert else ""
    if fixed["final_val_acc"] < ref_acc - tols["ACC_TOL"]:
        return Check(False, f"问题 3 ❌ {detail}{note} 验证准确率下降超过 {tols['ACC_TOL']:.4f}：惩罚太强了，"
                            f"网络被压得学不动（{_train_acc_text(fixed)}），变成了欠拟合。")
    if drop < tols["FIX_MARGIN"]:
        return Check(False, f"问题 3 ❌ {detail}{note} 验证损失只降低了 {max(drop, 0):.1%}，不到 {tols['FIX_MARGIN']:.1%}"
                            "（一个什么也不做的改动，例如 1e-8 的权重衰减，就可能让它变化这么多）：修复太弱。")
    return Check(True, f"问题 3 ✅ {detail}{note}")


def check_reason(reason) -> Check:
    return reason_check(reason, {"验证集上的损失或准确率": ("验证", "val", "validation"),
                                 "具体的数字或 epoch": (DIGIT,)},
                        "你根据哪些数字（最终权重在训练图上的准确率、验证损失最低和回升的 epoch）做出判断")


def check_all(answers: dict, given: dict, retrain, tols: dict) -> dict[str, Check]:
    return {"verdict": check_verdict(answers.get("my_verdict"), given),
            "best_epoch": check_best_epoch(answers.get("my_best_epoch"), given, tols["EPOCH_TOL"]),
            "fix": check_fix(answers.get("my_weight_decay"), answers.get("my_patience"), given, retrain, tols),
            "reason": check_reason(answers.get("my_reason"))}


def variant_pool() -> list[dict]:
    """The personal versions a teacher can hand out: the given run from another seed (its best epoch and the
    size of its over-fitting differ). The tolerances are measured on seeds 1-3 and apply to the others as an
    estimate of the same noise."""
    return [{"seed": seed} for seed in range(1, 9)]


def self_check(history, my_verdict, my_best_epoch, my_weight_decay, my_patience, my_reason="", *, smoke=False,
               variant=None):
    """The student notebook's self-check: re-trains with the student's fix (once) and prints this answer's result."""
    subset, seed = val_subset(smoke), (variant or {}).get("seed")
    tols = tolerances(subset)
    answers = {"my_verdict": my_verdict, "my_best_epoch": my_best_epoch, "my_weight_decay": my_weight_decay,
               "my_patience": my_patience, "my_reason": my_reason}
    results = check_all(answers, summarize(history), lambda wd, p: run_summary(wd, p, val_subset=subset, seed=seed), tols)
    for check in results.values():
        print(check.message, "\n")
    print("结果：" + "".join(c.mark for c in results.values()) + "（✅ 对，❌ 不对，⬜ 还没回答，👀 留给老师）")
    return results


def _train_acc_text(summary: dict) -> str:
    if "train_eval_accs" in summary:
        return f"最后一个 epoch 结束时的权重在训练图上的准确率 {summary['train_eval_accs'][-1]:.4f}"
    return f"最后一个 epoch 的滚动训练准确率 {summary['train_accs'][-1]:.4f}"


class _History:
    """A summary viewed as the ``History`` that ``fitting_verdict`` reads: per-epoch validation metrics, the
    evaluated training metrics (``train_eval_*``) and, for the record, the running ones."""

    def __init__(self, summary: dict):
        keys = {"train_loss": "train_losses", "train_acc": "train_accs", "val_loss": "val_losses",
                "val_acc": "val_accs", "train_eval_loss": "train_eval_losses", "train_eval_acc": "train_eval_accs"}
        present = {row_key: summary[key] for row_key, key in keys.items() if key in summary}
        self.epochs = [{"epoch": i + 1, **{k: v[i] for k, v in present.items()}}
                       for i in range(len(summary["val_losses"]))]
