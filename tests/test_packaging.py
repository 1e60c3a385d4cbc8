"""The set-up promises: Paddle is chosen by an extra (never forced), README's commands are real."""
import configparser
import re

from course.device import describe, paddle_distributions

from _helpers import ROOT


def test_paddle_is_not_a_hard_dependency_but_an_extra():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    requires = cfg["options"]["install_requires"]
    assert "paddle" not in requires  # would pull the CPU wheel over a user's paddlepaddle-gpu
    extras = cfg["options.extras_require"]
    assert "paddlepaddle" in extras["cpu"] and "paddlepaddle-gpu" in extras["gpu"]


def test_readme_gives_two_make_commands_that_exist_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


# [text](target) links; a target with a scheme (https:, mailto:) or a pure #anchor is not a file
MD_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def relative_links(page):
    for target in MD_LINK.findall(page.read_text(encoding="utf-8")):
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) and not target.startswith("#"):
            yield target.split("#")[0]


def test_readme_is_a_front_page_whose_links_reach_every_docs_page():
    """README stays short (what it is, the two commands, the lessons, AI Studio, teachers, links); the rest
    lives in docs/ pages, each reachable from README by a link that resolves."""
    readme = ROOT / "README.md"
    lines = readme.read_text(encoding="utf-8").count("\n")
    assert lines <= 160, f"README.md has {lines} lines (at most 160): move the detail to a docs/ page and link it"
    pages = [readme, *sorted((ROOT / "docs").glob("*.md"))]
    broken = [f"{page.relative_to(ROOT)} -> {target}" for page in pages for target in relative_links(page)
              if not (page.parent / target).exists()]
    assert not broken, broken
    linked = {(ROOT / target).resolve() for target in relative_links(readme)}
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"README.md links to no docs/{unlinked}: every docs page must be reachable from README"


def test_exactly_one_paddle_wheel_here_and_describe_reports_it():
    assert len(paddle_distributions()) == 1
    line = describe("cpu")
    assert "paddle " in line and "device cpu" in line and "WARNING" not in line


def test_only_what_students_already_have_is_required_and_make_installs_the_rest():
    # Paddle + NumPy + matplotlib is AI Studio's preinstalled set: the course runs on it alone
    # (tests/test_minimal_env.py); tqdm, VisualDL and safetensors are the `full` extra.
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    requires = [line.split("#")[0].strip() for line in cfg["options"]["install_requires"].splitlines()]
    names = {re.split(r"[<>=!~\[; ]", line)[0].lower() for line in requires if line}
    assert names == {"numpy", "matplotlib"}
    full = cfg["options.extras_require"]["full"]
    for optional in ("tqdm", "visualdl", "safetensors"):
        assert optional in full
    makefile = (ROOT / "Makefile").read_text()
    assert all("full," in line for line in re.findall(r"^EXTRAS :=.*$", makefile, re.M))


def test_tests_named_in_the_docs_exist():
    """README and docs/ (faults.md above all) name the test that covers each promise: a renamed or
    moved test must take its mention along. ``::name`` after ``test_x.py::...`` is in the same file."""
    ref = re.compile(r"`(?:tests/)?(test_\w+\.py)(?:::(\w+))?`|`::(\w+)`")
    checked, missing = 0, []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        current = None
        for file, name, more in ref.findall(doc.read_text(encoding="utf-8")):
            current = file or current
            path = ROOT / "tests" / (current or "")
            if current is None or not path.is_file():
                missing.append(f"{doc.name}: {file or '::' + more}")
                continue
            if name or more:
                checked += 1
                if not re.search(rf"^\s*def {name or more}\b", path.read_text(encoding="utf-8"), re.M):
                    missing.append(f"{doc.name}: {current}::{name or more}")
    assert checked > 20 and not missing, missing


def test_every_repository_file_a_notebook_names_exists():
    """Prose and comments that send a reader to `tests/x.py`, `docs/y.md`, `course/z.py` or `bench/...`
    name files that exist (2.6.1 once pointed at a test file that had been merged into another)."""
    import json
    import re

    named = re.compile(r"(?<![\w/.])((?:tests|docs|course|bench|scripts)/[\w./-]+\.(?:py|md|csv|json))")
    missing = []
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")) + sorted((ROOT / "course" / "homework" / "source").glob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            for name in named.findall("".join(cell["source"])):
                if not (ROOT / name).exists():
                    missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert missing == []
