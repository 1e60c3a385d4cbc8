import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/_helpers.py, tests/_scalar_guard.py
from _helpers import ROOT, TEST_OUTPUT  # noqa: E402

# Tests import the public API as a user does, including the lesson-facing
# top-level modules (data_process, MNIST_network, tools) from the repository root.
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import course  # noqa: E402, F401  (imports zlib before Paddle: see course.compat)
import _scalar_guard  # noqa: E402

# NumPy 2's scalar rule on every leg: float()/int() of a tensor or array with dimensions is an error.
_scalar_guard.install()


@pytest.fixture(autouse=True)
def _no_smoke_leak(monkeypatch):
    """Tests choose smoke mode explicitly; a developer's shell setting must not change them."""
    monkeypatch.delenv("COURSE_SMOKE", raising=False)
    monkeypatch.delenv("COURSE_MNIST_DIR", raising=False)


@pytest.fixture
def out_dir(request):
    """A per-test folder under test-output/ (``TEST_OUTPUT``) kept after the run (plots, run directories) for inspection."""
    path = TEST_OUTPUT / request.node.name
    if path.exists():
        import shutil
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
