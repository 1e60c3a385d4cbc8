"""Homework 2-3: which optimizer, which learning rate, judged from the loss curves.

The answer is checked against the measured sweep ``course/homework/data/2-3/results.csv`` (measured as docs/sweeps/homework-2-3/README.md says: 5 optimizers x
3 constant learning rates, 2 epochs, seed 0). One seed per setting, so a single ranking is noisy: every
setting within ``tolerance()`` of the best validation accuracy counts as tied for best. The tolerance is
derived from the seed-to-seed spread measured in ``data/2-3/seeds.csv`` (the same settings
re-run with other seeds): two single-seed runs of equally good settings differ by a normal variable of
standard deviation sqrt(2)*sigma, and 2*sqrt(2)*sigma covers about 95 % of such differences.

No function here prints the best setting: a check says only whether the answer it was given is right and why.
"""
from __future__ import annotations

import csv
import math
import re
import statistics
import unicodedata
from pathlib import Path

from ..errors import CourseError
from .answers import DIGIT, Check, parse_number, reason_check

# The measured sweep ships inside the package (the grader reads it from a wheel, and a sandboxed kernel sees only
# the package); how it was measured: docs/sweeps/homework-2-3/README.md.
SWEEP_DIR = Path(__file__).resolve().parent / "data" / "2-3"
OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
# Words that name one optimizer, in the forms students write (checked in this order: momentum first, since
# '带动量的SGD' and 'SGD with momentum' name SGD too).
_NAMES = {"momentum": ("momentum", "动量", "sgdm", "heavyball"),
          "adagrad": ("adagrad", "自适应梯度"),
          "rmsprop": ("rmsprop", "均方根传播"),
          "adam": ("adam", "自适应矩估计"),
          "sgd": ("sgd", "随机梯度下降", "梯度下降", "gradientdescent")}
_NOT_IN_SWEEP = ("adamw", "adamax", "radam", "nadam", "lamb", "lars", "adadelta", "nesterov")


def _read(name: str) -> list[dict]:
    path = SWEEP_DIR / name
    if not path.exists():
        raise CourseError(f"{path} is missing: homework 2-3 is checked against the committed sweep; "
                          "reinstall the package, or restore it (git checkout course/homework/data/2-3).")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_table() -> list[dict]:
    """The sweep: [{'optimizer', 'lr', 'status', 'val_acc', 'final_train_loss'}] (runs that did not finish: NaN)."""
    table = []
    for row in _read("results.csv"):
        match = re.fullmatch(r"optimizer-(?P<optimizer>[a-z]+)_lr-(?P<lr>.+)", row["run"])
        if match:
            number = lambda v: float(v) if v not in ("", None) else math.nan
            table.append({"optimizer": match["optimizer"], "lr": float(match["lr"]), "status": row["status"],
                          "val_acc": number(row["val_acc"]), "final_train_loss": number(row["final_train_loss"])})
    return table


def seed_spread() -> float:
    """Pooled standard deviation of validation accuracy over seeds, per setting, from seeds.csv."""
    groups: dict[str, list[float]] = {}
    for row in _read("seeds.csv"):
        groups.setdefault(row["setting"], []).append(float(row["acc"]))
    variances = [statistics.variance(v) for v in groups.values() if len(v) >= 2]
    if not variances:
        raise CourseError(f"{SWEEP_DIR / 'seeds.csv'} has no setting measured with two or more seeds.")
    return math.sqrt(sum(variances) / len(variances))


def tolerance() -> float:
    return 2 * math.sqrt(2) * seed_spread()


FORMS = [("optimizer", text, expected) for text, expected in (
    ("Momentum", "momentum"), (" ADAM ", "adam"), ("rms prop", "rmsprop"), ("Ada-Grad", "adagrad"), ("动量", "momentum"),
    ("Adam优化器", "adam"), ("paddle.optimizer.Adam", "adam"), ("带动量的SGD", "momentum"),
    ("SGD with momentum", "momentum"), ("Momentum(0.9)", "momentum"), ("随机梯度下降", "sgd"), ("AdamW", None),
    ("adam or rmsprop", None))]


def parse_optimizer(answer) -> str | None:
    """'Momentum', ' ADAM ', 'rms prop', 'Ada-Grad', '动量', 'Adam优化器', 'paddle.optimizer.Adam', '带动量的SGD',
    'SGD with momentum' -> the sweep's name; None if unknown, not in the sweep ('AdamW') or two of them."""
    if not isinstance(answer, str):
        return None
    text = unicodedata.normalize("NFKC", answer).lower()
    text = re.sub(r"\(.*?\)|（.*?）", "", text)                     # 'Momentum(0.9)', 'adam（推荐）'
    text = re.sub(r"paddle\.optimizer\.|torch\.optim\.|optimizer|优化器|优化算法|算法|方法|法", "", text)
    name = re.sub(r"[\s\-_.+/]+", "", text)
    if any(other in name for other in _NOT_IN_SWEEP):
        return None
    found = [key for key, words in _NAMES.items() if any(w in name for w in words)]
    if "momentum" in found and "sgd" in found:                      # momentum SGD is Momentum
        found.remove("sgd")
    return found[0] if len(found) == 1 else None


def _usable(table):
    return [r for r in table if r["status"] == "ok" and math.isfinite(r["val_acc"])]


def check_optimizer(answer, table=None, tol=None) -> Check:
    table, tol = table or load_table(), tolerance() if tol is None else tol
    if answer is None:
        return Check(None, "问题 1（优化器）还没有回答：看上面的损失曲线，把 my_best_optimizer 写成 "
                           f"{', '.join(repr(o) for o in OPTIMIZERS)} 之一。")
    name = parse_optimizer(answer)
    if name is None:
        return Check(None, f"问题 1（优化器）：看不懂 {answer!r}。请写成 {', '.join(repr(o) for o in OPTIMIZERS)} 之一。")
    usable = _usable(table)
    best = max(r["val_acc"] for r in usable)
    own = max((r["val_acc"] for r in usable if r["optimizer"] == name), default=-math.inf)
    if own >= best - tol:
        return Check(True, f"问题 1 ✅ {name} 在它最好的学习率上，验证准确率 {own:.4f}，与这次扫描的最好结果相差不到容差 "
                           f"{tol:.4f}（由不同随机种子之间的波动算出），算作并列最好。")
    return Check(False, f"问题 1 ❌ {name} 即使取它最好的学习率，验证准确率也只有 {own:.4f}，比这次扫描的最好结果低了超过容差 "
                        f"{tol:.4f}。再看看损失曲线：哪几条下降得最快、最后降得最低？")


def check_lr(optimizer, lr, table=None, tol=None) -> Check:
    table, tol = table or load_table(), tolerance() if tol is None else tol
    if lr is None:
        return Check(None, "问题 2（学习率）还没有回答：把 my_best_lr 写成一个数字，例如 0.001。")
    value = parse_number(lr)
    lrs = sorted({r["lr"] for r in table})
    if value is None:
        return Check(None, f"问题 2（学习率）：{lr!r} 不是一个数字。请写成数字，例如 0.001。")
    name = parse_optimizer(optimizer)
    if name is None:
        return Check(None, "问题 2（学习率）：先在 my_best_optimizer 里写好一个优化器，学习率是对这个优化器而言的。")
    runs = [r for r in table if r["optimizer"] == name and math.isclose(r["lr"], value, rel_tol=1e-6)]
    if not runs:
        return Check(None, f"问题 2（学习率）：这次扫描没有测过学习率 {value:g}。测过的是 {[f'{x:g}' for x in lrs]}，请从中选一个。")
    run, best = runs[0], max(r["val_acc"] for r in _usable(table))
    if run in _usable(table) and run["val_acc"] >= best - tol:
        return Check(True, f"问题 2 ✅ {name} 在 lr {value:g}：验证准确率 {run['val_acc']:.4f}，在最好结果的容差 {tol:.4f} 之内。")
    return Check(False, f"问题 2 ❌ {name} 在 lr {value:g}：验证准确率 {run['val_acc']:.4f}（最后训练损失 "
                        f"{run['final_train_loss']:.4f}），比这次扫描的最好结果低了超过容差 {tol:.4f}。"
                        "对同一个优化器，比较不同学习率的那几条曲线。")


def check_reason(reason) -> Check:
    return reason_check(reason, {"损失曲线": ("loss", "损失", "曲线", "curve"),
                                 "具体的优化器、学习率或数字": (*OPTIMIZERS, "动量", DIGIT)},
                        "你根据哪几条损失曲线（哪个优化器、哪个学习率）的什么现象做出判断")


def variant_pool() -> list[dict]:
    """The personal versions a teacher can hand out: compare only three of the five optimizers (ten slices of
    the sweep, each with its own best)."""
    from itertools import combinations
    return [{"optimizers": list(names)} for names in combinations(OPTIMIZERS, 3)]


def variant_table(variant: dict | None, table=None) -> list[dict]:
    """The sweep as the variant asks about it: only its optimizers (all of them for the public version)."""
    table = load_table() if table is None else table
    names = (variant or {}).get("optimizers") or OPTIMIZERS
    return [r for r in table if r["optimizer"] in names]


def check_all(answers: dict, variant: dict | None = None) -> dict[str, Check]:
    """{'optimizer', 'lr', 'reason'} -> Check, for the answers of the student notebook's variables, against the
    slice of the sweep that ``variant`` asks about (the whole sweep for the public version)."""
    table, tol = variant_table(variant), tolerance()
    names = sorted({r["optimizer"] for r in table})
    chosen = parse_optimizer(answers.get("my_best_optimizer"))
    if chosen is not None and chosen not in names:
        outside = Check(False, f"问题 1 ❌ {chosen} 不在你这份作业要比较的优化器里（{', '.join(names)}）。")
        return {"optimizer": outside, "lr": Check(False, "问题 2 ❌ 先在你这份作业的优化器里选一个。"),
                "reason": check_reason(answers.get("my_reason"))}
    return {"optimizer": check_optimizer(answers.get("my_best_optimizer"), table, tol),
            "lr": check_lr(answers.get("my_best_optimizer"), answers.get("my_best_lr"), table, tol),
            "reason": check_reason(answers.get("my_reason"))}


def self_check(my_best_optimizer, my_best_lr, my_reason="", variant=None) -> dict[str, Check]:
    """The student notebook's self-check: prints the result for this answer only."""
    results = check_all({"my_best_optimizer": my_best_optimizer, "my_best_lr": my_best_lr, "my_reason": my_reason},
                        variant)
    for check in results.values():
        print(check.message, "\n")
    print("结果：" + "".join(c.mark for c in results.values()) + "（✅ 对，❌ 不对，⬜ 还没回答，👀 留给老师）")
    return results
