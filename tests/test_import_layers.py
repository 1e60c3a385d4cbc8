"""The package's imports point one way: no cycle inside ``course/`` and no import up a layer.

Every ``import`` counts, also one placed inside a function (a lazy import is still a
dependency; one placed there to dodge a cycle would hide a wrong layer). Third-party
imports (paddle, visualdl, matplotlib ...) are not edges of this graph.
"""
from __future__ import annotations

import ast
import textwrap
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "course"

# DESIGN.md "Layers", bottom row first. A module may import from its own row (when no cycle
# forms) and from rows below; a new module must be placed in a row here.
LAYERS = [
    ["errors", "config", "compat"],  # compat: the installed Paddle's version and features
    ["tensors", "rundir", "data", "model", "optim", "init", "losses", "metrics", "hooks", "checkpoint",
     "device", "plots", "scratch", "trajectories", "diagnose", "cpu"],
    ["events"],                 # the callback protocol
    ["history"],                # the one record fit keeps (a callback)
    ["train"],                  # fit / train_one_epoch / evaluate
    ["callbacks", "visualdl_log", "amp", "distributed", "lr_finder", "live"],
    ["run"],                    # one complete job from a Config
    ["cli", "sweep", "dashboard", "worker", "__main__", "__init__", "grade", "export", "cache"],
]


def imports_of(path: Path, package: str) -> set[str]:
    """Modules of ``package`` that ``path`` imports anywhere in its body (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names
                      if a.name.startswith(package + ".") and a.name.count(".") >= 1}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:           # from .x import y
                found.add(node.module.split(".")[0])
            elif node.level == 1:                         # from . import x, y
                found |= {a.name for a in node.names}
            elif node.level == 0 and node.module and node.module.startswith(package + "."):
                found.add(node.module.split(".")[1])      # from course.x import y
            elif node.level == 0 and node.module == package:
                found |= {a.name for a in node.names}     # from course import x (module or name)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    modules = {p.stem for p in package_dir.glob("*.py")}
    return {p.stem: (imports_of(p, package_dir.name) & modules) - {p.stem}
            for p in sorted(package_dir.glob("*.py"))}


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


def test_imports_point_down_the_layers():
    row = {name: i for i, names in enumerate(LAYERS) for name in names}
    graph = import_graph(PACKAGE)
    unplaced = sorted(set(graph) - set(row))
    assert not unplaced, f"course/{unplaced[0]}.py is in no layer: add it to LAYERS in {__file__}"
    upward = [f"{m} (row {row[m]}) imports {d} (row {row[d]})"
              for m, deps in graph.items() for d in sorted(deps) if row[d] > row[m]]
    assert not upward, "imports up a layer: " + "; ".join(upward)


def test_lower_layers_do_not_import_the_loop():
    graph = import_graph(PACKAGE)
    for name in ("events", "tensors", "history", "checkpoint", "metrics", "hooks", "model", "data"):
        assert "train" not in graph[name] and "run" not in graph[name], name


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
