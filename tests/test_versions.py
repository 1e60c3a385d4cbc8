"""Both supported Paddle lines: the start-up checks, version-gated features, NumPy 2's scalar rule,
and a README table that says what CI runs."""
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


def test_paddle_imported_before_zlib_is_a_one_line_error_on_paddle_2_and_fine_on_3():
    done = _python("import paddle\nimport course\nfrom course import load_mnist\nprint(load_mnist('test')[0].shape)")
    if PADDLE_2:
        assert done.returncode == 1 and "Segmentation" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("ImportError: Paddle 2.6 was imported before Python's zlib") and \
            "import course (or zlib) before paddle" in last
    else:
        assert done.returncode == 0, done.stderr[-2000:]
        assert "(10000, 28, 28)" in done.stdout


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


def test_readme_supported_versions_say_what_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Supported versions", 1)[1].split("\n## ", 1)[0]
    ci = (ROOT / ".ci" / "run").read_text()
    legs = re.findall(r'^run_leg "[^"]+" (make [^\n]*?)(?: PYTEST_ARGS="-ra")?$', ci, re.M)
    assert legs == ["make test", "make test PADDLE_VERSION=2.6.2", "make rebuild-check"], legs
    for command in legs:
        assert f"`{command}`" in section, command
    makefile = (ROOT / "Makefile").read_text()
    assert "NUMPY ?= $(if $(filter 2.%,$(PADDLE_VERSION)),numpy<2,)" in makefile
    for cell in ("2.6.2", "1.26", "3.x", "2.x"):
        assert cell in section
