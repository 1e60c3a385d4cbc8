"""Every name has one home: code imports a name from the module that defines it (or from ``course``).

A module that imports a name only to hand it on (a re-export shim, ``course.train`` once handing on
``inference``) gives that name a second import path, and the two drift. Checked over the package, the
lesson-facing files, tests, bench, scripts and the notebooks' code cells. ``course``'s own lazy public
names (``from course import fit``) are the one sanctioned second path: ``course.__init__`` lists them.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

from _helpers import ROOT

PACKAGE = ROOT / "course"


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_of(p): p for p in PACKAGE.rglob("*.py")}


def defined_in(module: str) -> set[str]:
    """Names a module binds itself at top level (def, class, assignment; also inside if / try)."""
    names = set()
    for node in ast.parse(MODULES[module].read_text(encoding="utf-8")).body:
        for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
            elif isinstance(sub, (ast.Assign, ast.AnnAssign)):
                targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def code_files():
    """(path, Python source) of everything that imports from the package."""
    for folder in ("course", "tests", "bench", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, path.read_text(encoding="utf-8")
    for name in ("data_process.py", "MNIST_network.py", "tools.py"):
        yield ROOT / name, (ROOT / name).read_text(encoding="utf-8")
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        lines = [line for cell in cells if cell["cell_type"] == "code"
                 for line in "".join(cell["source"]).splitlines()
                 if not line.lstrip().startswith(("%", "!"))]   # IPython magics are not Python
        yield path, "\n".join(lines)


def imported_module(path: Path, node: ast.ImportFrom) -> str | None:
    """The package module ``node`` imports from (``course.data``), or None when it is not the package's."""
    if node.level:
        if PACKAGE not in path.parents:
            return None
        base = module_of(path).split(".")
        base = base if path.name == "__init__.py" else base[:-1]
        base = base[:len(base) - (node.level - 1)]
        return ".".join(base + (node.module.split(".") if node.module else []))
    return node.module if (node.module or "").startswith("course.") else None


def second_homes() -> list[str]:
    found = []
    for path, source in code_files():
        for node in ast.walk(ast.parse(source, filename=str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = imported_module(path, node)
            if module not in MODULES or module == "course":
                continue
            own = defined_in(module)
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name} from {module}, which does not define it"
                      for alias in node.names
                      if alias.name not in own and f"{module}.{alias.name}" not in MODULES]
    return found


def test_every_import_from_a_module_names_what_that_module_defines():
    found = second_homes()
    assert not found, "import each name from its home module (or from course):\n" + "\n".join(found)


def test_a_re_export_is_caught(tmp_path, monkeypatch):
    """``course.train`` imports ``global_grad_norm`` from ``course.tensors`` for itself: importing it from
    ``course.train`` elsewhere is a second path, and this check sees it."""
    assert "global_grad_norm" in defined_in("course.tensors")
    assert "global_grad_norm" not in defined_in("course.train")
    planted = ast.parse("from course.train import global_grad_norm, fit\n").body[0]
    assert imported_module(ROOT / "notebooks" / "x.ipynb", planted) == "course.train"
    assert "fit" in defined_in("course.train")


def test_tests_find_the_root_and_run_the_cli_one_way():
    """tests/_helpers.py holds the repository root and ``python -m course`` with this interpreter
    (``course_command``, ``run_course``); a test that spells either again drifts from it. The workers
    (``tests/_*.py``) run as scripts before tests/ is on the path, so they find the root themselves."""
    root_again, cli_again = "Path(__file__).resolve()" + ".parent.parent", '[sys.executable, "-m", ' + '"course"'
    again = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        if root_again in text:
            again.append(f"{path.name}: the repository root (use _helpers.ROOT)")
        if cli_again in text:
            again.append(f"{path.name}: python -m course (use _helpers.course_command / run_course)")
    assert not again, "\n".join(again)
