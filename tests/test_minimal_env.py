"""The course where students are: only Paddle, NumPy and matplotlib installed (AI Studio's preinstalled
set), the three lesson files and ``course/`` copied into a folder (as AI Studio users upload them).

A fresh virtual environment gets exactly those three (the versions this environment has, so pip's cache
serves them) plus ``ipykernel``, so that it can be a Jupyter kernel; it is not made with
``--system-site-packages``, which would let it see this environment's tqdm and VisualDL. The course is
not installed into it: the quickstart's first cell finds ``course/`` beside the notebook, and
``python -m course`` finds it in the current directory. The driving process (this one) runs nbclient.
"""
import json
import os
import shutil
import subprocess
import venv
from importlib import metadata

import nbformat
import pytest
from nbclient import NotebookClient

from _helpers import ROOT

LESSON_FILES = ("data_process.py", "MNIST_network.py", "tools.py")
KERNEL = "course-minimal"

# slow: builds a virtual environment, about a minute with pip's cache warm. paddle_line, not once: it
# installs this environment's Paddle, and the two Paddle lines differ where it looks (on 2.6 the
# import order of zlib and Paddle decides whether gzip and PNG writing work; AI Studio's older images
# are Paddle 2.x on Python 3.10: CI's leg 2 is that environment). What it checks beyond the other
# tests (tqdm and VisualDL missing) is pure Python that does not change with the Python version, so
# the legs of other Pythons on the same Paddle line as leg 1 (4 and 5) deselect it (setup.cfg).
pytestmark = [pytest.mark.slow, pytest.mark.paddle_line]


def _paddle_requirement() -> str:
    """The CPU wheel of this environment's Paddle version (a GPU build here is not what we test there)."""
    for name in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            return f"paddlepaddle=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            pass
    pytest.skip("no paddlepaddle distribution here to mirror (a source build of Paddle)")


@pytest.fixture(scope="module")
def minimal(tmp_path_factory):
    """``(python, folder)``: the bare environment's interpreter and a plain copy of the course."""
    base = tmp_path_factory.mktemp("minimal")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    requirements = [_paddle_requirement(), f"numpy=={metadata.version('numpy')}",
                    f"matplotlib=={metadata.version('matplotlib')}", f"ipykernel=={metadata.version('ipykernel')}"]
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
                   check=True, timeout=900)
    for optional in ("tqdm", "visualdl"):  # what this test is about: they must really be missing there
        found = subprocess.run([str(python), "-c", f"import importlib.util as u; print(u.find_spec({optional!r}))"],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert found == "None", f"{optional} is installed in the bare environment ({found}): the test proves nothing"
    subprocess.run([str(python), "-m", "ipykernel", "install", "--prefix", str(env_dir), "--name", KERNEL],
                   check=True, capture_output=True, timeout=120)

    folder = base / "course-copy"  # what an AI Studio user uploads
    folder.mkdir()
    shutil.copytree(ROOT / "course", folder / "course", ignore=shutil.ignore_patterns("__pycache__"))
    for name in LESSON_FILES:
        shutil.copy2(ROOT / name, folder / name)
    (folder / "notebooks").mkdir()
    for name in ("00_quickstart.ipynb", "2.8.5_visualdl.ipynb"):
        shutil.copy2(ROOT / "notebooks" / name, folder / "notebooks")
    return python, folder


def _open_in_bare_kernel(minimal, monkeypatch, name):
    """``(python, folder, path, nb)``: notebook ``name`` of the copied course, read, with this process set to run
    it in the bare environment's kernel."""
    python, folder = minimal
    _use_bare_kernel(python, folder, monkeypatch)
    path = folder / "notebooks" / name
    return python, folder, path, nbformat.read(path, as_version=4)


def _use_bare_kernel(python, folder, monkeypatch) -> None:
    for key, value in _bare_env(JUPYTER_PATH=str(python.parent.parent / "share" / "jupyter"),
                                IPYTHONDIR=str(folder / ".ipython")).items():
        monkeypatch.setenv(key, value)
    for key in ("PYTHONPATH", "VIRTUAL_ENV", "MPLBACKEND"):
        monkeypatch.delenv(key, raising=False)


def _execute(nb, path, saved, **options) -> None:
    """Run ``nb`` (read from ``path``) in the bare kernel, in ``path``'s folder; keep the executed copy as ``saved``."""
    try:
        NotebookClient(nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(path.parent)}},
                       **options).execute()
    finally:
        nbformat.write(nb, saved)


def _bare_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MPLBACKEND")}
    return {**env, "COURSE_SMOKE": "1", "OMP_NUM_THREADS": "1", **extra}


@pytest.mark.notebook
def test_the_quickstart_runs_in_a_kernel_without_tqdm_or_visualdl(minimal, monkeypatch, out_dir):
    python, folder, path, nb = _open_in_bare_kernel(minimal, monkeypatch, "00_quickstart.ipynb")
    nb.cells.append(nbformat.v4.new_code_cell(
        "import importlib.util, sys\n"
        "print('kernel', sys.executable, '| course from', course.__file__)\n"
        "assert importlib.util.find_spec('tqdm') is None and importlib.util.find_spec('visualdl') is None"))
    _execute(nb, path, out_dir / path.name)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert f"kernel {python}" in text and f"course from {folder / 'course'}" in text
    # ProgressBar's fallback: one plain line per epoch (smoke mode: one epoch), naming the install once
    assert "epoch 1/1 | train loss" in text and "pip install tqdm" in text


@pytest.mark.notebook
def test_the_visualdl_notebook_says_what_to_install_instead_of_a_traceback(minimal, monkeypatch, out_dir):
    """2.8.5 needs VisualDL: without it, its first code cell ends with one message naming the install."""
    _, _, path, nb = _open_in_bare_kernel(minimal, monkeypatch, "2.8.5_visualdl.ipynb")
    first = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")
    nb.cells = nb.cells[:first + 1]   # the cell that imports; nothing after it could run without VisualDL
    _execute(nb, path, out_dir / "2.8.5_visualdl-without-visualdl.ipynb", allow_errors=True)
    (error,) = [o for o in nb.cells[first].outputs if o.output_type == "error"]
    assert error.ename == "SystemExit" and "pip install visualdl" in error.evalue, error
    assert "most recent call last" not in "\n".join(error.traceback)   # the message alone, no stack of frames


def test_the_main_job_trains_and_skips_visualdl_in_one_line(minimal, tmp_path):
    python, folder = minimal
    runs = tmp_path / "runs"
    proc = subprocess.run([str(python), "-m", "course", "train", "--out_dir", str(runs), "--run_name", "bare"],
                          cwd=folder, env=_bare_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    skipped = [line for line in proc.stdout.splitlines() if "VisualDL" in line]
    assert len(skipped) == 1 and "pip install visualdl" in skipped[0], skipped
    assert "test: loss" in proc.stdout
    run = runs / "bare"
    assert json.loads((run / "config.json").read_text())["visualdl"] is False  # what was done, not what was asked
    assert (run / "metrics.json").is_file() and not (run / "vdl").exists()
