"""What many test files share: the repository root, and running ``python -m course`` as a user does.

    from _helpers import ROOT, run_course

    done = run_course("train", "--out_dir", str(tmp_path), "--no-progress", smoke=True)
    assert done.returncode == 0, done.stderr

(``tests/`` is on ``sys.path``: ``tests/conftest.py`` puts it there.)
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository root
# Where tests leave what a person may want to look at afterwards (plots, run folders, executed notebooks).
# `make test` gives each environment its own (test-output/<venv>), so two legs can run at once (.ci/run).
TEST_OUTPUT = Path(os.environ.get("COURSE_TEST_OUTPUT") or ROOT / "test-output").resolve()


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


@contextlib.contextmanager
def http_server(handler):
    """A local HTTP server (``handler``: a ``BaseHTTPRequestHandler`` class or factory) on a free port,
    serving from a thread; yields the port, shuts down on exit."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


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


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAS_CHROMIUM = os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000")


@contextlib.contextmanager
def chromium(*flags: str, wait: float = 60):
    """Headless Chromium (Debian's, driven through its chromedriver) in a throw-away profile, with
    CHROMIUM_FLAGS plus ``flags``; page loads and scripts wait at most ``wait`` seconds. Skips the test
    when Chromium is not installed (CI installs it: .ci/run)."""
    import pytest

    if not HAS_CHROMIUM:
        pytest.skip("chromium / chromedriver not installed (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + flags:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="course-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(wait)
    driver.set_script_timeout(wait)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
