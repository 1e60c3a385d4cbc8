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
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
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
    shutil.copy2(ROOT / "notebooks" / "00_quickstart.ipynb", folder / "notebooks")
    return python, folder


def _bare_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MPLBACKEND")}
    return {**env, "COURSE_SMOKE": "1", "OMP_NUM_THREADS": "1", **extra}


@pytest.mark.notebook
def test_the_quickstart_runs_in_a_kernel_without_tqdm_or_visualdl(minimal, monkeypatch, out_dir):
    python, folder = minimal
    for key, value in _bare_env(JUPYTER_PATH=str(python.parent.parent / "share" / "jupyter"),
                                IPYTHONDIR=str(folder / ".ipython")).items():
        monkeypatch.setenv(key, value)
    for key in ("PYTHONPATH", "VIRTUAL_ENV", "MPLBACKEND"):
        monkeypatch.delenv(key, raising=False)
    path = folder / "notebooks" / "00_quickstart.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import importlib.util, sys\n"
        "print('kernel', sys.executable, '| course from', course.__file__)\n"
        "assert importlib.util.find_spec('tqdm') is None and importlib.util.find_spec('visualdl') is None"))
    try:
        NotebookClient(nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        nbformat.write(nb, out_dir / path.name)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert f"kernel {python}" in text and f"course from {folder / 'course'}" in text
    # ProgressBar's fallback: one plain line per epoch (smoke mode: one epoch), naming the install once
    assert "epoch 1/1 | train loss" in text and "pip install tqdm" in text


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
