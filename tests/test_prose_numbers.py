"""Every measured-looking number in a notebook's prose is backed by the notebook's code or by a docs page.

The rule (docs/course-and-site.md): in the Markdown cells of a chapter notebook, every
percentage (``95.14 %``, ``12%``) and every decimal (``0.985``, ``2.30``) must be

1. written in the notebook's own code cells: a setting the code uses (``lr=0.01``) or a value the code
   computes and asserts (``assert acc > 0.985``, ``assert abs(math.log(10) - 2.30) < 0.01``); or
2. in a docs page that the same Markdown cell links to (``[…](../docs/sweeps/regularization/README.md)``):
   the page itself, or the ``results.md`` / ``results.csv`` beside it, which record a measured run and its
   command.

A percentage p also matches p / 100 in code (prose ``98.5 %``, code ``0.985``) and in docs (a CSV holds
``0.9514`` for ``95.14 %``). Numbers in inline code (```gap_tolerance=0.01```, ```(x - 127.5) / 127.5```) are code, not
measurements, and section numbers of headings (``### 5.2``) are skipped. Numbers the printed outputs will show are not in the committed notebook
(outputs are stripped), and a run's numbers change between smoke and full mode, so prose never quotes
them: it refers to "the number printed above" or quotes a docs page. Chapter numbers (2.6, 2.7, 2.8, in
"第 2.7 章" or "2.8 节") and version numbers (Paddle 2.6, Python 3.11) are not measurements and are skipped.
Homework notebooks follow their own rule (tests/test_grade*.py) and are not checked here.
"""
import json
import re
from pathlib import Path

import pytest

from _helpers import ROOT

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


def unbacked(notebook: Path, folder: Path = None) -> list:
    """The prose numbers of ``notebook`` that are not backed; links resolve from ``folder`` (its own)."""
    folder = folder or notebook.parent
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    code = numbers_in_text("\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code"))
    missing = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
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
    assert not missing, (f"{notebook.name}: numbers in the prose that neither the code nor a linked docs page "
                         f"produces (assert them, or link the docs page that records them): {missing}")


def test_the_rule_catches_an_unbacked_claim(tmp_path):
    def check(markdown, code):
        path = tmp_path / "n.ipynb"
        path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": markdown},
                                              {"cell_type": "code", "source": code}]}), encoding="utf-8")
        return unbacked(path, ROOT / "notebooks")
    assert check("测试准确率超过 98.5 %。", "assert acc > 0.985") == []
    assert check("测试准确率约 97.3 %。", "assert acc > 0.985") == ["cell 0: '97.3 %'"]
    assert check("学习率 0.01 太大", "lr = 0.01") == []
    assert check("见第 2.7 章；飞桨 2.6 起", "") == []
    sweep = "../docs/sweeps/regularization/README.md"
    assert check(f"L1 从 95.14 % 降到 10.90 %（[实测]({sweep})）", "") == []
    assert check("L1 从 95.14 % 降到 10.90 %", "") == ["cell 0: '95.14 %'", "cell 0: '10.90 %'"]
