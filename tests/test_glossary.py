"""One vocabulary: the retired variants of docs/glossary.md appear in no notebook, docs page or README.

The glossary's table is the one list (its "retired" column); this test reads it. Checked: the Markdown
cells and the code comments of every notebook (chapters and homework), every ``docs/**/*.md`` page but the
glossary, and README.md. Exempt, as the glossary says: text inside Chinese quotation marks “…” (a
quotation keeps its source's words, e.g. the course's original sentences in the “课程原文” boxes), inline
code and fenced code blocks.
"""
import io
import json
import re
import tokenize

import pytest

from _helpers import ROOT

GLOSSARY = ROOT / "docs" / "glossary.md"
QUOTED = re.compile(r"“[^”]*”")
INLINE_CODE = re.compile(r"`[^`\n]*`")
FENCED = re.compile(r"^```.*?^```", re.S | re.M)


def retired_terms() -> dict:
    """``{retired variant: the term to use}`` from the glossary's table."""
    header, *rows = [line for line in GLOSSARY.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    columns = [c.strip() for c in header.strip("|").split("|")]
    use, retired = columns.index("本课程用词"), next(i for i, c in enumerate(columns) if c.startswith("不再使用"))
    terms = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if set(cells[0]) <= set("-: "):
            continue
        for variant in filter(None, (v.strip() for v in cells[retired].split("、"))):
            terms[variant] = cells[use]
    return terms


def prose_of_markdown(text: str) -> str:
    """The prose a reader reads: without code blocks, inline code and quotations."""
    return QUOTED.sub("", INLINE_CODE.sub("", FENCED.sub("", text)))


def comments_of_code(source: str) -> str:
    """The comments of a code cell (IPython magics and shell lines blanked before tokenizing)."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return "\n".join(line.split("#", 1)[1] for line in lines if "#" in line)   # a cell Python cannot read
    return "\n".join(t.string for t in tokens if t.type == tokenize.COMMENT)


def prose_of_notebook(path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    parts = []
    for cell in cells:
        source = "".join(cell["source"])
        parts.append(prose_of_markdown(source) if cell["cell_type"] == "markdown" else
                     QUOTED.sub("", comments_of_code(source)) if cell["cell_type"] == "code" else "")
    return "\n".join(parts)


def retired_in(text: str, terms: dict) -> list:
    return sorted({f"{variant} (use {use})" for variant, use in terms.items() if variant in text})


# the homework sources too: the student versions in notebooks/homework/ are generated from them
PAGES = sorted([*(ROOT / "notebooks").rglob("*.ipynb"), *(ROOT / "course" / "homework" / "source").glob("*.ipynb"),
                *(ROOT / "docs").rglob("*.md"), ROOT / "README.md"])
PAGES = [p for p in PAGES if p != GLOSSARY and ".ipynb_checkpoints" not in p.parts]


def test_the_glossary_lists_retired_variants():
    terms = retired_terms()
    assert {"批次", "校验集", "轮次", "梯度截断", "累计准确率"} <= set(terms), terms
    assert terms["校验集"] == "验证集" and terms["批次"] == "batch"
    # no chosen term is also retired somewhere (that would make the rule unsatisfiable)
    chosen = {use for use in terms.values()}
    assert not chosen & set(terms)


@pytest.mark.parametrize("path", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_no_retired_variant(path):
    text = prose_of_notebook(path) if path.suffix == ".ipynb" else prose_of_markdown(path.read_text(encoding="utf-8"))
    found = retired_in(text, retired_terms())
    assert not found, f"{path.relative_to(ROOT)} uses retired terms (docs/glossary.md): {', '.join(found)}"


def test_the_rule_catches_a_variant_and_allows_quotations_and_code():
    terms = retired_terms()
    assert retired_in(prose_of_markdown("同样的批次顺序"), terms) == ["批次 (use batch)"]
    assert retired_in(comments_of_code("x = 1   # 每个批次\n%matplotlib inline\n"), terms) == ["批次 (use batch)"]
    assert retired_in(comments_of_code('label = "批次"   # 字符串不是注释\n'), terms) == []
    assert retired_in(prose_of_markdown("> 课程原文：“训练集、校验集和测试集”。"), terms) == []
    assert retired_in(prose_of_markdown("判定字符串 `拟合不足`\n\n```\n# 批次\n```\n"), terms) == []
