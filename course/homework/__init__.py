"""Homework: source notebooks with answer key, hidden tests and points (nbgrader's format), the student
versions generated from them, and the checks that both the self-check and ``python -m course grade`` use.

    python -m course homework generate          # course/homework/source/*.ipynb -> notebooks/homework/*.ipynb

A source notebook marks, in nbgrader's cell metadata and delimiters (nbgrader 0.9, schema 3):
- the answer cell (``"solution": true``), whose ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block is the
  answer key;
- one graded cell per question (``"grade": true``, ``"points"``, ``"grade_id"`` = the question), whose
  ``### BEGIN HIDDEN TESTS`` block is the teacher's test (nbgrader's own autograder can run them as is);
- cells tagged ``teacher`` (notes for the teacher).
The student version drops all three (nbgrader's ClearSolutions / ClearHiddenTests, nbconvert's
TagRemovePreprocessor) and every output.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import CourseError

SOURCE_DIR = Path(__file__).resolve().parent / "source"
STUDENT_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "homework"
HOMEWORKS = {"2-3": "hw2_3", "2-8": "hw2_8"}
TEACHER_TAG = "teacher"


def _known(homework: str) -> str:
    if homework not in HOMEWORKS:
        raise CourseError(f"unknown homework {homework!r}: choose one of {', '.join(HOMEWORKS)}.")
    return homework


def checks(homework: str):
    """The module with ``check_all`` for a homework id ('2-3' -> course.homework.hw2_3)."""
    return importlib.import_module(f".{HOMEWORKS[_known(homework)]}", __name__)


def source_path(homework: str) -> Path:
    # only the id is checked: importing the checks would load Paddle to find a file
    return SOURCE_DIR / f"{_known(homework)}.ipynb"


def read_source(homework: str):
    import nbformat
    return nbformat.read(source_path(homework), as_version=4)


def questions(nb) -> dict[str, float]:
    """{grade_id: points} of a source notebook's graded cells, in notebook order."""
    return {cell.metadata["nbgrader"]["grade_id"]: float(cell.metadata["nbgrader"]["points"])
            for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade")}


def solution_lines(nb) -> list[str]:
    """The answer key: the non-blank lines inside the solution delimiters of the answer cells."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            inside = False
            for line in cell.source.splitlines():
                if "BEGIN SOLUTION" in line:
                    inside = True
                elif "END SOLUTION" in line:
                    inside = False
                elif inside and line.strip():
                    lines.append(line.strip())
    return lines


def student_version(nb):
    """The notebook a student gets: no solution, no hidden test, no teacher cell, no output."""
    import copy

    from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = copy.deepcopy(nb)
    resources = {}
    for preprocessor in (TagRemovePreprocessor(remove_cell_tags={TEACHER_TAG}, enabled=True),
                         ClearSolutions(code_stub={"python": ""}, text_stub="在这里写下你的答案。", enforce_metadata=True),
                         ClearHiddenTests(enforce_metadata=True), ClearOutputPreprocessor()):
        nb, resources = preprocessor.preprocess(nb, resources)
    for cell in nb.cells:   # the empty stub leaves a trailing newline where the key was
        if cell.cell_type == "code":
            cell.source = cell.source.rstrip()
    return nb


def render(nb) -> str:
    import nbformat
    return nbformat.writes(nb) + "\n"


def generate_personal(roster, dest, *, homeworks=None, secret_file=None) -> list[Path]:
    """One personal, signed version per student on ``roster`` (see ``variants``): ``dest/<homework>/<name>.ipynb``."""
    from . import variants
    names = variants.read_roster(roster)
    secret = variants.load_secret(secret_file, create=True)
    written = []
    for homework in homeworks or list(HOMEWORKS):
        public = student_version(read_source(homework))
        folder = Path(dest) / homework
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            variant = variants.choose(checks(homework), homework, name, secret)
            path = folder / f"{_file_name(name)}.ipynb"
            path.write_text(render(variants.personalize(public, homework, name, variant, secret)), encoding="utf-8")
            written.append(path)
    return written


def _file_name(name: str) -> str:
    import hashlib
    import re
    safe = re.sub(r"[^\w\-.]+", "_", name).strip("._")[:80]
    return safe if safe == name else f"{safe or 'student'}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def generate(dest: Path | str = STUDENT_DIR) -> list[Path]:
    """Write the student version of every homework into ``dest``; returns the paths written."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for homework in HOMEWORKS:
        path = dest / f"{homework}.ipynb"
        path.write_text(render(student_version(read_source(homework))), encoding="utf-8")
        written.append(path)
    return written
