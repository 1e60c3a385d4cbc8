"""Every notebook runs headless in smoke mode in a real Jupyter kernel; none is committed with
outputs; none redefines a name that ``course`` exports (notebooks import, they don't copy)."""
import ast
import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

import course

from _helpers import ROOT

NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
IDS = [str(p.relative_to(ROOT / "notebooks")) for p in NOTEBOOKS]


def code_cells(path):
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def defined_names(source: str) -> set:
    """Top-level names a cell binds by def, class or assignment (IPython magics skipped)."""
    lines = [l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))]
    names = set()
    for node in ast.parse("\n".join(lines)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def test_there_are_notebooks():
    assert (ROOT / "notebooks" / "00_quickstart.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(code_cells(path)) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; strip them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_does_not_redefine_course_exports(path):
    redefined = set()
    for cell in code_cells(path):
        redefined |= defined_names("".join(cell["source"])) & set(course.__all__)
    assert not redefined, f"{path.name} redefines {sorted(redefined)}: import them from course instead"


def test_redefinition_check_catches_a_copy():
    assert defined_names("def evaluate(m, l):\n    pass\nplot = None\n%matplotlib inline") == {"evaluate", "plot"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_declares_the_standard_python3_kernel(path):
    """AI Studio saves kernels of its own name, which exist nowhere else: every notebook says python3."""
    spec = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("kernelspec", {})
    assert spec.get("name") == "python3" and spec.get("language") == "python", \
        f"{path.name}: kernelspec {spec}; set it to python3 (Python 3)"


@pytest.fixture(scope="session")
def strict_scalars_ipython_dir(tmp_path_factory):
    """An IPython profile whose startup file installs tests/_scalar_guard.py in the kernel."""
    startup = tmp_path_factory.mktemp("ipython") / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-strict-scalars.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "import zlib, _scalar_guard\n_scalar_guard.install()\n", encoding="utf-8")
    return startup.parent.parent


def run_notebook(nb, path, monkeypatch, ipython_dir):
    """Execute ``nb`` in a fresh python3 kernel in smoke mode, NumPy 2's scalar rule enforced."""
    monkeypatch.setenv("COURSE_SMOKE", "1")
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # let the kernel use its inline backend
    # the kernel imports this checkout's course, not whichever one is installed (another worktree's, say)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()


def test_a_scalar_read_from_a_tensor_with_dimensions_fails_in_a_notebook(tmp_path, monkeypatch,
                                                                         strict_scalars_ipython_dir):
    """The planted example: ``float()`` of a [1, 1] tensor, as 2.6.3 once did, is an error on every NumPy."""
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import paddle\nw = paddle.ones([1, 1])\nprint(w[0, 0].item(), "
                                          "float(paddle.ones([]).sum()))"),
                nbformat.v4.new_code_cell("float(w)")]
    with pytest.raises(CellExecutionError, match="only 0-D tensors convert"):
        run_notebook(nb, tmp_path / "planted.ipynb", monkeypatch, strict_scalars_ipython_dir)
    assert "1.0 1.0" in nb.cells[0].outputs[0]["text"]  # the 0-D reads before it were fine


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_runs_headless_in_smoke_mode(path, monkeypatch, out_dir, strict_scalars_ipython_dir):
    nb = nbformat.read(path, as_version=4)
    try:
        run_notebook(nb, path, monkeypatch, strict_scalars_ipython_dir)
    finally:
        nbformat.write(nb, out_dir / path.name)  # the executed copy, for reading failures
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
