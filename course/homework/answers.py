"""Reading answers in the forms students write them, and the result of one check.

``parse_*`` return the answer in canonical form, or ``None`` when it is missing or cannot be read
(the check then says how to write it). They never raise on a student's value.
"""
from __future__ import annotations

import math
import numbers
import re
import unicodedata
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
    "fitting well": ("拟合良好", "拟合得很好", "拟合正常", "拟合得不错", "fittingwell", "wellfit", "goodfit", "fitswell",
                     "fitwell", "justright", "正常", "良好"),
}
# A negation before a verdict word in the same clause turns it off: '不过拟合', '模型没有过拟合', 'not overfitting'.
_NEGATIONS = ("不", "没", "无", "未", "非", "否", "not", "no", "nt", "never", "without", "neither", "nor")
_CLAUSES = re.compile(r"[,.;:!?，。；：！？、\n]|\bbut\b|\binstead\b|而是|但是|但|而|其实|实际上")


def _normalize(text) -> str:
    """Full-width forms folded (NFKC), lower case, the Unicode minus read as '-'."""
    return unicodedata.normalize("NFKC", str(text)).lower().replace("\u2212", "-")


def _clause_verdicts(clause: str) -> tuple[set, set]:
    """(affirmed, negated) verdicts of one clause."""
    text = _squash(clause)
    affirmed, negated = set(), set()
    for verdict, words in _VERDICT_WORDS.items():
        for word in words:
            at = text.find(word)
            if at < 0:
                continue
            before = text[:at]
            if verdict == "over-fitting" and before.endswith("不"):   # '不过拟合' reads as 不 + 过拟合
                negated.add(verdict)
            elif any(n in before[-4:] for n in _NEGATIONS if not n.isascii()) or re.search(
                    r"(not|no|nt|never|without|neither|nor)(the|a|an|any|really|yet|much|signs?of|evidenceof)?$", before):
                negated.add(verdict)
            else:
                affirmed.add(verdict)
            break
    return affirmed, negated


def parse_verdict(answer) -> str | None:
    """'过拟合了', 'Overfit', 'over_fitting', '不是欠拟合，而是过拟合' -> 'over-fitting'; None if unreadable, negated
    ('没有过拟合', 'not overfitting') or ambiguous ('过拟合还是欠拟合')."""
    if not isinstance(answer, str):
        return None
    affirmed, negated = set(), set()
    for clause in _CLAUSES.split(_normalize(answer)):
        yes, no = _clause_verdicts(clause)
        affirmed |= yes
        negated |= no
    affirmed -= negated
    if "fitting well" in affirmed and len(affirmed) > 1:   # '正常' / '良好' appear inside longer phrases
        affirmed.discard("fitting well")
    return affirmed.pop() if len(affirmed) == 1 else None


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?"


def parse_number(answer) -> float | None:
    """0.01, '0.01', '1e-2', ' 0.01 ', 'lr=0.01', '学习率 0.01', '10^-2', '１e-2', -7 -> the number; None for booleans,
    text with no number or two numbers, NaN, infinity, or a number beyond float range."""
    if isinstance(answer, bool) or answer is None:
        return None
    if isinstance(answer, numbers.Real):
        try:
            value = float(answer)
        except (OverflowError, ValueError, TypeError):
            return None
    elif isinstance(answer, str):
        text = _normalize(answer)
        power = re.fullmatch(r"(?:\D*?[=:])?10(?:\^|\*\*)\(?([-+]?\d+)\)?", text.replace(" ", ""))
        if power:
            value = 10.0 ** int(power[1]) if abs(int(power[1])) < 300 else math.inf
        else:
            found = re.findall(_NUMBER, re.sub(r"(?<=[a-z])(?<!\de)\d+", " ", text))   # 'adam2': no number in a name
            if len(found) != 1:
                return None
            value = float(found[0])
    else:
        return None
    return value if math.isfinite(value) else None


def parse_int(answer) -> int | None:
    """7, 7.0, '7', '第 7 个 epoch', 'epoch 7', -7 -> the integer; None for 7.5, booleans, two numbers or none."""
    if isinstance(answer, bool) or answer is None:
        return None
    if isinstance(answer, numbers.Integral):
        return int(answer)
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


# The forms the grader reads, with what it reads them as: docs/teachers.md's table ("python -m course homework forms")
# and tests/test_grade.py are both generated from this list, so the table is what the code does.
FORMS = [
    ("verdict", "过拟合了", "over-fitting"), ("verdict", "Over-Fitting!", "over-fitting"),
    ("verdict", "it overfits", "over-fitting"), ("verdict", "不是欠拟合，而是过拟合", "over-fitting"),
    ("verdict", "Overfitting, not underfitting", "over-fitting"), ("verdict", "拟合不足", "under-fitting"),
    ("verdict", "拟合良好", "fitting well"), ("verdict", "不过拟合", None), ("verdict", "模型没有过拟合", None),
    ("verdict", "The model is not overfitting", None), ("verdict", "过拟合还是欠拟合", None),
    ("number", "1e-3", 0.001), ("number", "lr = 0.001", 0.001), ("number", "学习率 0.001", 0.001),
    ("number", "10^-3", 0.001), ("number", "１e-3", 0.001), ("number", "np.float32(0.001)", 0.001),
    ("number", "-7", -7.0), ("number", "0.01 或 0.001", None), ("number", "10**400 (an int)", None),
    ("integer", "7.0", 7), ("integer", "第 7 个 epoch", 7), ("integer", "np.argmin(losses) + 1 (np.int64 7)", 7),
    ("integer", "-7", -7), ("integer", "7.5", None), ("integer", "7 或 8", None),
]


def form_value(kind: str, text: str):
    """The Python value a student's form stands for (most forms are the string itself)."""
    if text == "np.float32(0.001)":
        import numpy as np
        return np.float32(0.001).item()   # what the kernel's report sends: .item() of the NumPy scalar
    if text == "10**400 (an int)":
        return 10 ** 400
    if text.startswith("np.argmin"):
        return 7
    return text


def read_form(kind: str, value):
    return {"verdict": parse_verdict, "number": parse_number, "integer": parse_int}[kind](value)
