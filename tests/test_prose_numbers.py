"""Every measured-looking number in a notebook's prose is backed by the notebook's results record, a docs page,
or a setting its code writes down.

The rule (docs/course-and-site.md): in the Markdown cells of a chapter notebook, every percentage
(``95.14 %``, ``12%``) and every decimal (``0.985``, ``2.30``) must be

1. one of the notebook's recorded results: a value its ``course.results.record(key, value)`` calls gave in
   the last full-mode ``make notebooks`` (``docs/results.json``), usually quoted between
   ``<!-- result:key -->`` and ``<!-- /result -->``, which the same run fills in. A stamp must hold exactly
   the recorded value; a stamp whose key has no record yet must hold no number (a placeholder such as
   "（完整模式运行后写在这里）"); or
2. in a docs page that the same Markdown cell links to (``[…](../docs/sweeps/regularization/README.md)``):
   the page itself, or the ``results.md`` / ``results.csv`` beside it, which record a measured run and its
   command; or
3. a setting the code writes down: the value of a keyword argument or of an assignment (``lr=0.01``,
   ``lr = 0.01``, ``{"lr": 0.01}``, a default argument), or an element of a list / tuple assigned to a name or
   looped over (``lrs = [0.001, 0.01]``, ``for lr in (0.01, 0.1)``). Any other literal does not count: not a
   tuple passed as a keyword (``figsize=(11, 3.5)`` does not back "11 %"), not an assert's threshold, not a
   number inside an expression.

A percentage p also matches p / 100 (prose ``98.5 %``, code or record ``0.985``; a CSV holds ``0.9514`` for
``95.14 %``). Numbers in inline code (```gap_tolerance=0.01```, ```ln(10) ≈ 2.30```) are code or formulas, not
measurements, and section numbers of headings (``### 5.2``) are skipped. A run's printed numbers change
between smoke and full mode and are not in the committed notebook (outputs are stripped), so prose never
quotes them by hand: it records them and stamps them, or quotes a docs page. Chapter numbers (2.6, 2.7, 2.8,
in "第 2.7 章" or "2.8 节") and version numbers (Paddle 2.6, Python 3.11) are not measurements and are
skipped. Homework notebooks follow their own rule (tests/test_grade*.py) and are not checked here.
"""
import ast
import json
import re
from pathlib import Path

import pytest

from _helpers import ROOT

from course import results

CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))

NUMBER = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)\s*(%|％)|(?<![\w.])(\d+\.\d+)(?![\w.]|\.\d)")
VERSIONED = re.compile(r"(?:paddle|飞桨|python|paddlepaddle|numpy|cuda|版本|visualdl|\bv)\s*[<>=≥≤]*\s*$", re.I)
CHAPTER = re.compile(r"^\s*(?:章|节|\.\d|的)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_NUMBER = re.compile(r"(?<![\w.])\d+(?:_\d{3})*(?:\.\d*)?(?:[eE][-+]?\d+)?")


def numbers_in_text(text: str) -> set:
    found = set()
    for match in CODE_NUMBER.finditer(text):
        try:
            found.add(round(float(match.group(0).replace("_", "")), 10))
        except ValueError:
            pass
    return found


def prose_numbers(text: str):
    """(as written, value, is_percent) for each percentage and decimal in a Markdown text."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code: names, settings and formulas, not measurements
    text = re.sub(r"^(#+\s*)\d+(?:\.\d+)+", r"\1", text, flags=re.M)  # section numbers of headings
    for match in NUMBER.finditer(text):
        written = match.group(0)
        before, after = text[max(0, match.start() - 20):match.start()], text[match.end():match.end() + 3]
        if match.group(1):
            yield written, float(match.group(1).replace(",", "")), True
            continue
        value = float(match.group(3))
        if VERSIONED.search(before) or "版" in after[:2]:
            continue
        if value in (2.6, 2.7, 2.8) and (CHAPTER.match(after) or before.rstrip().endswith(("第", "（", "(", "[")) or
                                         re.search(r"\d\.\d", after[:2])):
            continue
        if re.match(r"\.x", text[match.end():match.end() + 2]):
            continue
        yield written, value, False


def docs_numbers(cell_text: str, folder: Path) -> set:
    """Numbers in the docs pages a Markdown cell links to, with the results tables beside them."""
    found = set()
    for target in LINK.findall(cell_text):
        path = (folder / target.split("#")[0]).resolve()
        if ROOT / "docs" not in path.parents:
            continue
        if path.is_dir():
            path = path / "README.md"
        for page in {path, path.parent / "results.md", path.parent / "results.csv"}:
            if page.is_file():
                found |= numbers_in_text(page.read_text(encoding="utf-8"))
    return found


def backed(value: float, percent: bool, pool: set) -> bool:
    candidates = {round(value, 10)}
    if percent:
        candidates.add(round(value / 100, 10))
    return bool(candidates & pool)


def _number(node):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _number(node.operand)
        return None if value is None else -value
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _values(node, sequence: bool) -> set:
    value = _number(node)
    if value is not None:
        return {round(value, 10)}
    if sequence and isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return {round(v, 10) for v in map(_number, node.elts) if v is not None}
    return set()


def settings_in_code(source: str) -> set:
    """The numbers ``source`` writes down as settings (rule 3 of the module docstring)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword):
            found |= _values(node.value, sequence=False)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            found |= _values(node.value, sequence=True)
        elif isinstance(node, ast.Dict):
            for item in node.values:
                found |= _values(item, sequence=False)
        elif isinstance(node, ast.For):
            found |= _values(node.iter, sequence=True)
        elif isinstance(node, ast.arguments):
            for default in node.defaults + [d for d in node.kw_defaults if d is not None]:
                found |= _values(default, sequence=False)
    return found


RESULTS = ROOT / "docs" / "results.json"


def recorded_results(notebook: Path, record: Path = RESULTS):
    """``{key: value}`` the notebook recorded in the last full-mode run (docs/results.json); None when the
    notebook has no entry there yet."""
    if not record.exists():
        return None
    entry = json.loads(record.read_text(encoding="utf-8"))["notebooks"].get(notebook.stem)
    return None if entry is None else {key: item["value"] for key, item in entry.get("results", {}).items()}


def numbers_of_results(values: dict) -> set:
    found = set()
    for value in values.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                continue
            if isinstance(item, (int, float)):
                found.add(round(float(item), 10))
            elif isinstance(item, str):
                found |= numbers_in_text(item)
    return found


def unbacked(notebook: Path, folder: Path = None, record: Path = RESULTS) -> list:
    """The prose numbers of ``notebook`` that are not backed, and the result stamps that disagree with the
    record; links resolve from ``folder`` (its own)."""
    folder = folder or notebook.parent
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    values = recorded_results(notebook, record)
    ran = values is not None      # a full-mode run recorded this notebook: every stamp must then be filled
    values = values or {}
    code = set()
    for cell in cells:
        if cell["cell_type"] == "code":
            code |= settings_in_code("".join(cell["source"]))
    code |= numbers_of_results(values)
    missing = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        for key, shown in results.stamped(text).items():
            if key in values and shown != results.format_value(values[key]):
                missing.append(f"cell {index}: result {key} shows {shown!r}, the record has "
                               f"{results.format_value(values[key])!r} (run make notebooks, or --stamp-only)")
            elif key not in values and list(prose_numbers(shown)):
                missing.append(f"cell {index}: result {key} shows {shown!r} but has no record")
            elif key not in values and ran:
                missing.append(f"cell {index}: result {key} is not among what the notebook recorded "
                               f"({sorted(values)}): a misspelt key, or a record() call that is gone")
        pool = None
        for written, value, percent in prose_numbers(text):
            if backed(value, percent, code):
                continue
            pool = docs_numbers(text, folder) if pool is None else pool
            if not backed(value, percent, pool):
                missing.append(f"cell {index}: {written!r}")
    return missing


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_number_in_the_prose_is_backed(notebook):
    missing = unbacked(notebook)
    assert not missing, (f"{notebook.name}: numbers in the prose that neither the results record, a linked docs "
                         f"page nor a setting in the code backs (record() and stamp them, link the docs page "
                         f"that records them, or reword): {missing}")


def check(tmp_path, markdown, code, record=None):
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": markdown},
                                          {"cell_type": "code", "source": code}]}), encoding="utf-8")
    results_file = tmp_path / "results.json"
    entries = {} if record is None else {"n": {"results": {k: {"value": v, "note": ""} for k, v in record.items()}}}
    results_file.write_text(json.dumps({"notebooks": entries}), encoding="utf-8")
    return unbacked(path, ROOT / "notebooks", results_file)


def test_the_rule_catches_an_unbacked_claim(tmp_path):
    assert check(tmp_path, "学习率 0.01 太大", "lr = 0.01") == []
    assert check(tmp_path, "学习率 0.01 太大", "fit(model, lr=0.01)") == []
    assert check(tmp_path, "学习率 0.01 和 0.1", "for lr in (0.01, 0.1):\n    pass") == []
    assert check(tmp_path, "见第 2.7 章；飞桨 2.6 起", "") == []
    sweep = "../docs/sweeps/regularization/README.md"
    assert check(tmp_path, f"L1 从 95.14 % 降到 10.90 %（[实测]({sweep})）", "") == []
    assert check(tmp_path, "L1 从 95.14 % 降到 10.90 %", "") == ["cell 0: '95.14 %'", "cell 0: '10.90 %'"]


def test_a_number_merely_somewhere_in_the_code_does_not_count(tmp_path):
    """The planted failure of issue 21: 2.8.1's "11%" once passed because of ``figsize=(11, 3.5)``."""
    assert check(tmp_path, "准确率提高了约 11%。", "plt.figure(figsize=(11, 3.5))") == ["cell 0: '11%'"]
    assert check(tmp_path, "测试准确率超过 98.5 %。", "assert acc > 0.985") == ["cell 0: '98.5 %'"]
    assert check(tmp_path, "损失约 2.30。", "print(loss - 2.30)") == ["cell 0: '2.30'"]


def test_a_recorded_result_backs_the_prose_and_its_stamp_must_equal_the_record(tmp_path):
    stamp = "测试准确率 <!-- result:test_acc -->{}<!-- /result -->，即 97.97 %。"
    record = {"test_acc": 0.9797}
    assert check(tmp_path, stamp.format("0.9797"), "", record) == []
    assert check(tmp_path, "测试准确率约 97.97 %。", "", record) == []
    wrong = check(tmp_path, stamp.format("0.98"), "", record)
    assert len(wrong) == 2 and "shows '0.98', the record has '0.9797'" in wrong[0] and wrong[1] == "cell 0: '0.98'"
    assert check(tmp_path, stamp.replace("，即 97.97 %", "").format("（完整模式运行后写在这里）"), "") == []
    unrecorded = check(tmp_path, stamp.replace("，即 97.97 %", "").format("0.9797"), "")
    assert unrecorded[0] == "cell 0: result test_acc shows '0.9797' but has no record"
    misspelt = check(tmp_path, "<!-- result:test_accc -->（待完整模式实测）<!-- /result -->", "", record)
    assert len(misspelt) == 1 and "result test_accc is not among what the notebook recorded" in misspelt[0]


def recorded_keys(source: str) -> list:
    """Patterns of the keys ``record(...)`` calls in ``source`` write: a literal key, or an f-string key with
    each ``{...}`` part matching any word."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "record"
                and node.args):
            continue
        key = node.args[0]
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            found.append(re.escape(key.value))
        elif isinstance(key, ast.JoinedStr):
            found.append("".join(re.escape(part.value) if isinstance(part, ast.Constant) else r"\w+"
                                 for part in key.values))
    return found


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_result_stamp_names_a_key_the_notebook_records(notebook):
    """Checked on the committed notebook, before any full run: a misspelt stamp would wait for a value forever."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    patterns = [p for c in cells if c["cell_type"] == "code" for p in recorded_keys("".join(c["source"]))]
    stamps = {key for c in cells if c["cell_type"] == "markdown" for key in results.stamped("".join(c["source"]))}
    orphans = sorted(k for k in stamps if not any(re.fullmatch(p, k) for p in patterns))
    assert not orphans, f"{notebook.name}: result stamps no record() call writes: {orphans}"


def test_recorded_keys_reads_literal_and_f_string_keys():
    code = 'record("best_lr", 1)\nfor k in ("a", "b"):\n    record(f"val_acc_{k}", 2)\nresults.record("x", 3)\nrecorder(1)'
    assert sorted(recorded_keys(code)) == sorted(["best_lr", r"val_acc_\w+", "x"])
