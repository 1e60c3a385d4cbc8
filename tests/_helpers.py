"""What many test files share: the repository root, and running ``python -m course`` as a user does.

    from _helpers import ROOT, run_course

    done = run_course("train", "--out_dir", str(tmp_path), "--no-progress", smoke=True)
    assert done.returncode == 0, done.stderr

(``tests/`` is on ``sys.path``: ``tests/conftest.py`` puts it there.)
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository root


def course_env(smoke: bool = False, **variables: str | None) -> dict:
    """A child process's environment: this one's, with matplotlib headless and ``COURSE_SMOKE=1``
    only when ``smoke`` asks for it (a developer's shell setting never leaks in).
    ``NAME="value"`` sets a variable, ``NAME=None`` removes it."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("COURSE_SMOKE", None)
    if smoke:
        env["COURSE_SMOKE"] = "1"
    for name, value in variables.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def course_command(*args) -> list:
    """``[python, -m, course, *args]`` with this interpreter."""
    return [sys.executable, "-m", "course", *map(str, args)]


def run_course(*args, smoke: bool = False, env: dict | None = None, timeout: float = 300,
               cwd=ROOT) -> subprocess.CompletedProcess:
    """``python -m course ARGS`` in a child process started from the repository root, waited for;
    stdout and stderr captured as text. ``env`` (default ``course_env(smoke)``) replaces the environment."""
    return subprocess.run(course_command(*args), capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env=course_env(smoke) if env is None else env)


def start_course(*args, smoke: bool = False, env: dict | None = None, cwd=ROOT, **popen) -> subprocess.Popen:
    """``python -m course ARGS`` started and not waited for (to interrupt or kill it); ``popen``
    goes to ``subprocess.Popen`` (``stdout=subprocess.PIPE`` ...)."""
    return subprocess.Popen(course_command(*args), cwd=cwd, env=course_env(smoke) if env is None else env, **popen)
