"""The package's imports point one way: no cycle inside ``course/`` and no import up a layer.

Every module counts, those of subpackages (``course/homework/``) too, and every ``import`` counts,
also one placed inside a function (a lazy import is still a dependency; one placed there to dodge a
cycle would hide a wrong layer). Third-party imports (paddle, visualdl, matplotlib ...) are not edges
of this graph. The layer table is ``course.LAYERS`` (course/__init__.py), the one place it lives;
docs/modules.md's module map and layer diagram are checked against the package and that table here.
"""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

from _helpers import ROOT

from course import LAYERS

PACKAGE = ROOT / "course"


def module_name(path: Path, package_dir: Path) -> str:
    """``course/data.py`` -> ``data``; ``course/homework/kernel.py`` -> ``homework.kernel``;
    ``course/homework/__init__.py`` -> ``homework``; ``course/__init__.py`` -> ``__init__``."""
    parts = path.relative_to(package_dir).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def modules_of(package_dir: Path) -> dict[str, Path]:
    return {module_name(p, package_dir): p for p in sorted(package_dir.rglob("*.py"))}


def imports_of(path: Path, package_dir: Path, modules) -> set[str]:
    """Modules of the package (names as ``module_name`` gives them) that ``path`` imports anywhere in
    its body, functions included. An import of a name defined in a module is an edge to that module;
    an import of the package itself (``from course import fit``) is an edge to ``__init__``."""
    package = package_dir.name
    rel = path.relative_to(package_dir).with_suffix("").parts
    own_package = list(rel[:-1])  # the subpackage path.py is in: [] for course/x.py, ['homework'] below

    def resolve(parts: list[str]) -> str:
        while parts:
            if ".".join(parts) in modules:
                return ".".join(parts)
            parts = parts[:-1]
        return "__init__"

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {resolve(a.name.split(".")[1:]) for a in node.names
                      if a.name == package or a.name.startswith(package + ".")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:                                  # from .x import y, from ..x import y
                if node.level - 1 > len(own_package):
                    continue                                # above the package: not ours
                base = own_package[:len(own_package) - (node.level - 1)]
            elif node.module == package or (node.module or "").startswith(package + "."):
                base = []                                   # from course.x import y, from course import x
            else:
                continue
            target = base + (node.module.split(".") if node.module else [])
            if not node.level:
                target = target[1:]                         # drop "course"
            found |= {resolve(target + [a.name]) for a in node.names}
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    modules = modules_of(package_dir)
    return {name: imports_of(path, package_dir, modules) - {name} for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle_in_course():
    cycles = find_cycles(import_graph(PACKAGE))
    assert not cycles, f"import cycles inside course/: {cycles}"


def test_every_module_has_one_place_in_the_table():
    placed = [name for _, names in LAYERS for name in names]
    twice = sorted({name for name in placed if placed.count(name) > 1})
    assert not twice, f"in more than one row of course.LAYERS: {twice}"
    modules = set(modules_of(PACKAGE))
    assert "homework.kernel" in modules and "homework" in modules  # subpackages are seen
    unplaced, gone = sorted(modules - set(placed)), sorted(set(placed) - modules)
    assert not unplaced, f"{unplaced} in no row of course.LAYERS (course/__init__.py): give each a place"
    assert not gone, f"course.LAYERS (course/__init__.py) names modules that do not exist: {gone}"


def test_imports_point_down_the_layers():
    row = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}  # 0 = the top row
    graph = import_graph(PACKAGE)
    upward = [f"{m} ({LAYERS[row[m]][0]}) imports {d} ({LAYERS[row[d]][0]})"
              for m, deps in graph.items() for d in sorted(deps) if row[d] < row[m]]
    assert not upward, "imports up a layer: " + "; ".join(upward)


def test_lower_layers_do_not_import_the_loop():
    graph = import_graph(PACKAGE)
    for name in ("events", "tensors", "history", "checkpoint", "metrics", "hooks", "model", "data"):
        assert "train" not in graph[name] and "run" not in graph[name], name


def test_subpackage_imports_are_edges_lazy_ones_included():
    graph = import_graph(PACKAGE)
    assert {"errors", "device", "homework.answers", "callbacks", "train"} <= graph["homework.hw2_8"]
    assert {"homework", "homework.runner", "homework.sandbox"} <= graph["homework.grade"] and "errors" in graph["homework"]


def test_a_planted_cycle_is_caught_even_inside_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import g\n\ndef f():\n    return g()\n")
    (pkg / "b.py").write_text(textwrap.dedent("""\
        def g():
            from .c import h  # a lazy import is still an edge
            return h()
        """))
    (pkg / "c.py").write_text("import pkg.a\n\ndef h():\n    return 1\n")
    (pkg / "d.py").write_text("from . import a\n")   # depends on the cycle, is not part of it
    graph = import_graph(pkg)
    assert graph["b"] == {"c"} and graph["c"] == {"a"} and graph["d"] == {"a"}
    assert find_cycles(graph) == [["a", "b", "c"]]
    (pkg / "c.py").write_text("def h():\n    return 1\n")
    assert find_cycles(import_graph(pkg)) == []


def test_a_planted_cycle_through_a_subpackage_is_caught(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import x\n")                       # a -> sub.x
    (pkg / "sub" / "__init__.py").write_text("from ..a import f\n")          # sub -> a
    (pkg / "sub" / "x.py").write_text("def g():\n    from . import y\n")    # sub.x -> sub.y (lazy)
    (pkg / "sub" / "y.py").write_text("def h():\n    import pkg.sub\n")     # sub.y -> sub
    (pkg / "b.py").write_text("from pkg import a\nfrom pkg.sub.y import h\n")
    graph = import_graph(pkg)
    assert graph["a"] == {"sub.x"} and graph["sub"] == {"a"} and graph["sub.x"] == {"sub.y"}
    assert graph["sub.y"] == {"sub"} and graph["b"] == {"a", "sub.y"}
    assert find_cycles(graph) == [["a", "sub", "sub.x", "sub.y"]]


# ---------------------------------------------------------------- docs/modules.md shows the same package
MODULES_PAGE = ROOT / "docs" / "modules.md"   # README links to it


def layer_diagram() -> str:
    """docs/modules.md's diagram of ``course.LAYERS``: each row's modules, then what the row is."""
    width = max(len(", ".join(names)) for _, names in LAYERS if len(", ".join(names)) <= 80)
    lines = []
    for what, names in LAYERS:
        text = ", ".join(names)
        if len(text) <= 80:
            lines.append(f"{text:<{width}}  {what}")
            continue
        row, rest = [], list(names)              # a long row: wrapped, the description on its first line
        while rest:
            line = rest.pop(0)
            while rest and len(line) + 2 + len(rest[0]) + 1 <= width:
                line += ", " + rest.pop(0)
            row.append(line + ("," if rest else ""))
        lines.append(f"{row[0]:<{width}}  {what}")
        lines += row[1:]
    return "\n".join(lines) + "\n"


def test_modules_page_layer_diagram_is_the_table():
    text = MODULES_PAGE.read_text(encoding="utf-8")
    match = re.search(r"(?s)<!-- layers: course.LAYERS -->\n```\n(.*?)```", text)
    assert match, "docs/modules.md lost its layer diagram (the block after <!-- layers: course.LAYERS -->)"
    assert match.group(1) == layer_diagram(), (
        "docs/modules.md's layer diagram differs from course.LAYERS; put this there:\n" + layer_diagram())


def test_modules_page_module_map_lists_every_module():
    section = MODULES_PAGE.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `course/([\w/]+?)(?:\.py)?/?` \|", section, flags=re.M))
    on_disk = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    on_disk |= {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert not on_disk - listed, f"docs/modules.md's module map lacks course/{sorted(on_disk - listed)}"
    assert not listed - on_disk, f"docs/modules.md's module map lists what course/ no longer has: {sorted(listed - on_disk)}"
