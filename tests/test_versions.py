"""Both supported Paddle lines: the start-up checks, version-gated features, NumPy 2's scalar rule,
and a table (docs/versions.md) that says what CI runs."""
import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest

from course import compat
from course.errors import ConfigError

from _helpers import ROOT

PADDLE_2 = compat.paddle_version() < (3,)


def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})


def test_the_issues_reproducer_trains_without_a_segfault(tmp_path):
    """``from course import ...`` first: on Paddle 2.6 this died with SIGSEGV in zlib's inflateReset2."""
    done = _python("from course import Config, train_run; train_run(Config(train_subset=256, eval_subset=256, "
                   f"num_epochs=1, visualdl=False, progress=False, out_dir={str(tmp_path)!r}))")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test: loss" in done.stdout


# The course's first cell (2.6 优化算法, In [1]) verbatim, then a short loop of the lesson and its plot.
COURSE_FIRST_CELL = """import paddle
from data_process import get_MNIST_dataloader
from MNIST_network import MNIST
train_loader, test_loader = get_MNIST_dataloader()
"""
COURSE_LOOP = """import paddle.nn.functional as F
from tools import plot
model = MNIST()
opt = paddle.optimizer.Adam(learning_rate=0.001, parameters=model.parameters())
loss_list = []
for batch_id, (images, labels) in enumerate(train_loader()):
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    opt.step()
    opt.clear_grad()
    if batch_id % 10 == 0:
        loss_list.append(float(loss))
print("losses", len(loss_list), loss_list[0] > loss_list[-1])
plot(loss_list, path="loss.png")
"""
# the same cell in the order that was always safe: the course's modules first, then Paddle
COURSE_FIRST_CELL_ZLIB_FIRST = """from data_process import get_MNIST_dataloader
from MNIST_network import MNIST
import paddle
train_loader, test_loader = get_MNIST_dataloader()
"""


@pytest.mark.parametrize("first_cell", [COURSE_FIRST_CELL, COURSE_FIRST_CELL_ZLIB_FIRST],
                         ids=["paddle-first", "course-first"])
def test_the_courses_first_cell_as_a_script_trains_and_plots_in_either_import_order(first_cell, tmp_path):
    """On Paddle 2.6 ``import paddle`` first breaks this process's zlib (a segfault in gzip and in PNG
    writing): the data is then decompressed, and the plot saved, by a child process (course.compat)."""
    script = tmp_path / "lesson.py"
    script.write_text(first_cell + COURSE_LOOP, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "COURSE_SMOKE": "1",
                               "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "losses 4 True" in done.stdout  # smoke mode: 31 batches of 64, a loss every 10; it fell
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    warned = "Paddle 2.6 was imported before Python's zlib" in done.stderr
    assert warned == (PADDLE_2 and first_cell is COURSE_FIRST_CELL)  # said once, where it happens


def test_the_main_job_after_import_paddle_writes_its_whole_run_directory(tmp_path):
    """Paddle first, then ``train_run`` with VisualDL: on Paddle 2.6 the PNGs come from a child process and
    the VisualDL sample images (PNG through Pillow's zlib, a segfault here) are left out in one line."""
    done = _python("import paddle\nfrom course import Config, train_run\n"
                   "train_run(Config(train_subset=256, eval_subset=256, num_epochs=1, progress=False, log_every=1, "
                   f"out_dir={str(tmp_path)!r}, run_name='run'))")
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    for name in ("loss.png", "curves.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert list((run / "vdl").glob("vdlrecords.*"))
    assert ("VisualDL: no sample-prediction images in this run" in done.stdout) == PADDLE_2


def test_zlib_first_then_paddle_then_course_works():
    done = _python("import zlib, paddle, course\nfrom course import load_mnist\nprint(load_mnist('test')[0].shape)")
    assert done.returncode == 0 and "(10000, 28, 28)" in done.stdout, done.stderr[-2000:]


def test_a_paddle_older_than_2_6_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(compat, "paddle_version", lambda: (2, 5, 2))
    with pytest.raises(ImportError, match=r"^course needs Paddle 2.6 or later, found 2.5.2: pip install -U"):
        compat.check_startup()


def test_feature_table_agrees_with_the_installed_paddle():
    assert compat.has("radam") == hasattr(paddle.optimizer, "RAdam")
    assert compat.paddle_version()[:2] == tuple(int(p) for p in paddle.__version__.split(".")[:2])


def test_require_names_the_feature_and_the_version_that_has_it(monkeypatch):
    monkeypatch.setattr(compat, "paddle_version", lambda: (2, 6, 2))
    with pytest.raises(ConfigError) as error:
        compat.require("radam", what="optimizer 'radam'")
    assert str(error.value).startswith("optimizer 'radam' needs Paddle 3.0 or later (paddle.optimizer.RAdam); "
                                       "this is Paddle 2.6.2")


def test_scalar_reads_from_values_with_dimensions_fail_on_every_numpy():
    """The planted example, in the test process (tests/_scalar_guard.py, installed by conftest)."""
    w = paddle.ones([1, 1])
    with pytest.raises(TypeError, match=r"float\(\) of a Tensor of shape \[1, 1\]"):
        float(w)
    with pytest.raises(TypeError, match=r"int\(\) of a Tensor of shape \[1\]"):
        int(paddle.ones([1], dtype="int64"))
    with pytest.raises((TypeError, DeprecationWarning)):  # NumPy 2: TypeError; 1.25-1.26: the warning, as an error
        float(np.ones(1))
    assert w[0, 0].item() == 1.0 and float(w.sum()) == 1.0 and int(paddle.ones([], dtype="int64")) == 1


def test_versions_page_says_what_ci_runs():
    page = (ROOT / "docs" / "versions.md").read_text(encoding="utf-8")   # README links to it
    section = page.split("# Supported versions", 1)[1].split("\n## ", 1)[0]
    ci = (ROOT / ".ci" / "run").read_text()
    # `run_leg "legN-..." make ... || status=1`, in two lanes: read in leg order
    legs = [command for _, *command in sorted(re.findall(
        r'^ *run_leg "leg(\d)[^"]*" (make [^\n]*?)(?: PYTEST_ARGS="-ra(?: -m \'([^\']*)\')?")?(?: \|\| status=1)?$',
        ci, re.M))]
    assert [command for command, _ in legs] == [
        "make test", "make test PADDLE_VERSION=2.6.2 PYTHON_VERSION=3.10", "make rebuild-check",
        "make test PYTHON_VERSION=3.13", "make test PYTHON_VERSION=3.9"], legs
    assert [selection for _, selection in legs] == [  # leg 1 runs everything (README's `make test`)
        "", "not once", "", "not notebook and not once and not paddle_line",
        "not notebook and not once and not paddle_line"], legs
    for command, selection in legs:  # the table says which tests each leg leaves out
        shown = f"`{command} PYTEST_ARGS=\"-m '{selection}'\"`" if selection else f"`{command}`"
        assert shown in section, shown
    markers = (ROOT / "setup.cfg").read_text()
    for marker in ("once", "paddle_line", "notebook"):  # every marker a leg deselects is registered
        assert f"\n    {marker}: " in markers
    makefile = (ROOT / "Makefile").read_text()
    assert "NUMPY ?= $(if $(filter 2.%,$(PADDLE_VERSION)),numpy<2,)" in makefile
    for cell in ("2.6.2", "1.26", "3.x", "2.x"):
        assert cell in section
