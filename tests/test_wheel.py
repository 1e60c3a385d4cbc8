"""The package is self-contained: built as a wheel and installed outside the repository, it grades a homework
(the checks' measured data and the source notebooks are package data; nothing is read from the checkout)."""
import csv
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from _helpers import ROOT



@pytest.mark.slow
def test_a_wheel_installed_package_grades_a_homework(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir",
                            str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("paddle_mnist_course-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the wheel's files only; its dependencies (Paddle, nbclient, ...) from this environment, added after it
    import zipfile
    zipfile.ZipFile(wheel).extractall(site)
    Path(site, "zz-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")

    nb = nbformat.v4.new_notebook()
    nb.metadata["course_homework"] = {"id": "2-3"}
    nb.cells = [nbformat.v4.new_code_cell('my_best_optimizer = "Momentum"\nmy_best_lr = 0.01\n'
                                          'my_reason = "momentum 0.01 的 loss 曲线最低"')]
    work = tmp_path / "elsewhere"
    work.mkdir()
    nbformat.write(nb, work / "alice.ipynb")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(COURSE_SMOKE="1")
    where = subprocess.run([str(python), "-c", "import course, course.homework.hw2_3 as h; print(course.__file__); "
                            "print(h.SWEEP_DIR)"], capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert where.returncode == 0, where.stderr[-2000:]
    assert all(line.startswith(site) for line in where.stdout.split()), where.stdout   # not the checkout
    done = subprocess.run([str(python), "-m", "course", "grade", "2-3", "alice.ipynb", "--out", "grades"],
                          capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with open(work / "grades" / "grades.csv", newline="", encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    assert (row["status"], row["total"]) == ("ok", "5"), row
