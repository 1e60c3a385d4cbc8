"""Reading answers in the forms students write them, and the result of one check.

``parse_*`` return the answer in canonical form, or ``None`` when it is missing or cannot be read
(the check then says how to write it). They never raise on a student's value.
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass


@dataclass
class Check:
    """One question's result: ``ok`` is True (right), False (wrong) or None (unanswered / unreadable);
    ``review`` marks an answer no rule could grade, left for the teacher."""
    ok: bool | None
    message: str
    review: bool = False

    @property
    def mark(self) -> str:
        return "👀" if self.review else "✅" if self.ok else "⬜" if self.ok is None else "❌"


def _squash(text) -> str:
    """Lower case, no spaces, hyphens, underscores or trailing punctuation: ' Over-Fitting! ' -> 'overfitting'."""
    return re.sub(r"[\s\-_.,;:!?，。；：！？、\"'“”‘’()（）]+", "", str(text).lower())


# Canonical verdicts are course.fitting_verdict's.
_VERDICT_WORDS = {
    "over-fitting": ("过拟合", "过度拟合", "overfit", "overfitting", "overfitted", "overtrain", "过拟"),
    "under-fitting": ("欠拟合", "拟合不足", "underfit", "underfitting", "underfitted"),
    "fitting well": ("拟合良好", "拟合得很好", "拟合正常", "fittingwell", "wellfit", "goodfit", "fitswell",
                     "justright", "正常", "良好"),
}
_NEGATIONS = ("不是", "没有", "并非", "not", "no")


def parse_verdict(answer) -> str | None:
    """'过拟合了', 'Overfit', 'over_fitting', 'OVER-FITTING' -> 'over-fitting'; None if unreadable or ambiguous."""
    if not isinstance(answer, str):
        return None
    text = _squash(answer)
    if not text or any(text.startswith(n) for n in _NEGATIONS):
        return None
    found = {verdict for verdict, words in _VERDICT_WORDS.items() if any(w in text for w in words)}
    if "fitting well" in found and len(found) > 1:   # '正常' / '良好' appear inside longer phrases
        found.discard("fitting well")
    return found.pop() if len(found) == 1 else None


def parse_number(answer) -> float | None:
    """0.01, '0.01', '1e-2', ' 0.01 ' -> 0.01; None for booleans, non-numbers, NaN or infinity."""
    if isinstance(answer, bool) or answer is None:
        return None
    if isinstance(answer, numbers.Real):
        value = float(answer)
    elif isinstance(answer, str):
        match = re.fullmatch(r"\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*", answer)
        if match is None:
            return None
        value = float(match[1])
    else:
        return None
    return value if math.isfinite(value) else None


def parse_int(answer) -> int | None:
    """7, 7.0, '7', '第 7 个 epoch', 'epoch 7' -> 7; None for 7.5, booleans, two numbers or none."""
    if isinstance(answer, str):
        numbers_in = re.findall(r"\d+(?:\.\d+)?", answer)
        if len(numbers_in) != 1:
            return None
        answer = numbers_in[0]
    value = parse_number(answer)
    if value is None or value != int(value):
        return None
    return int(value)


def reason_check(reason, needles: dict[str, tuple[str, ...]], what: str) -> Check:
    """Grade a free-text reason by rule: it passes when it names every kind of evidence in ``needles``
    (e.g. {'the curve': ('loss', '损失', '曲线'), 'a number': (DIGIT,)}); otherwise it is left for the teacher."""
    text = str(reason or "").strip()
    if not text:
        return Check(None, f"理由：还没有写。请在 my_reason 里写一两句话，说明{what}。")
    low = text.lower()
    missing = [name for name, words in needles.items()
               if not any((re.search(r"\d", low) if w == DIGIT else w in low) for w in words)]
    if not missing:
        return Check(True, f"理由 ✅ 你的理由提到了{'、'.join(needles)}。")
    return Check(None, f"理由 👀 你的理由没有提到{'、'.join(missing)}，规则判断不了，留给老师看。"
                       f"好的理由应当说明{what}。", review=True)


DIGIT = "<digit>"
