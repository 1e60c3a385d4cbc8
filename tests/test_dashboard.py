"""The VisualDL dashboard: the real server on a free port serves the page (with and without an
Accept-Language header) and the logged values; ``python -m course dashboard`` errors and Ctrl-C."""
import http.server
import json
import os
import selectors
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from course import (History, MNIST, VisualDLLogger, fit, make_loader, make_optimizer, set_seed,
                    start_dashboard)
from course.dashboard import DashboardError, start

from _helpers import http_server, start_course

TELEMETRY_ID = "63a600296f8a71f576c4806376a9245b"  # what VisualDL 2.5.3 puts in the page when telemetry is on


def get(url, headers=None, timeout=30):
    """(status, headers, body); urllib sends no Accept-Language unless asked."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def api(dashboard, route, **params):
    status, _, body = get(f"{dashboard.url}/api/{route}?{urllib.parse.urlencode(params)}")
    assert status == 200, body[:300]
    answer = json.loads(body)
    assert answer["status"] == 0, answer
    return answer["data"]


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """Two short runs, one directory each, as ``course train`` lays them out (``<run>/vdl``)."""
    root = tmp_path_factory.mktemp("dash") / "runs"
    histories = {}
    for name in ("sgd", "adam"):
        set_seed(0)
        model = MNIST()
        optimizer = make_optimizer(name, 0.01, model.parameters())
        histories[name] = fit(model, make_loader("train50k", 64, train=True, subset=512), optimizer, 1,
                              val_loader=make_loader("val", 200, subset=200),
                              callbacks=[History(2), VisualDLLogger(root / name / "vdl", config={"optimizer": name})])
    return root, histories


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_page_answers_with_and_without_accept_language(logdir):
    root, _ = logdir
    with start(root, port=free_port()) as dashboard:
        assert dashboard.url.startswith("http://127.0.0.1:")  # bound to localhost by default
        for headers in ({}, {"Accept-Language": "en-US,en;q=0.9"}):
            status, response_headers, body = get(dashboard.url + "/index", headers)
            assert status == 200, (headers, body[:300])
            assert b"<title>VisualDL</title>" in body
            assert "vdl_lng=zh" in response_headers["Set-Cookie"]  # the explicit language wins
            assert TELEMETRY_ID.encode() not in body  # telemetry off
    assert not dashboard.running


def test_the_address_is_the_scalar_page_and_the_page_starts_the_smoothing_slider(logdir):
    """What the browser gets (tests/test_dashboard_browser.py checks what it draws): the printed
    address is the scalar page, and its HTML sets VisualDL's localStorage key for the slider."""
    root, _ = logdir
    for smoothing, shown in ((0, "0"), (0.35, "0.35")):
        with start(root, port=free_port(), smoothing=smoothing) as dashboard:
            assert dashboard.page == dashboard.url + "/scalar" and dashboard.smoothing == smoothing
            status, headers, body = get(dashboard.page)
            assert status == 200 and b"<title>VisualDL</title>" in body, body[:300]
            assert f'localStorage.setItem("scalar_smoothing","{shown}")'.encode() in body
            assert int(headers["Content-Length"]) == len(body)
            status, _, script = get(dashboard.url + "/__snowpack__/env.js")  # other files untouched
            assert status == 200 and b"scalar_smoothing" not in script


@pytest.mark.parametrize("smoothing", [-0.1, 1, 1.5, "0.5"])
def test_start_refuses_a_smoothing_the_slider_cannot_show(logdir, smoothing):
    with pytest.raises(DashboardError, match="smoothing must be a number from 0 to 0.99"):
        start(logdir[0], smoothing=smoothing)


def test_scalar_api_returns_the_logged_values(logdir):
    root, histories = logdir
    with start(root, port=free_port(), language="en") as dashboard:
        runs = {f"runs/{name}/vdl": name for name in histories}  # relative to the log directory's parent
        assert sorted(api(dashboard, "runs")) == sorted(runs)
        tags = api(dashboard, "scalar/tags")
        for run, run_tags in zip(tags["runs"], tags["tags"]):
            assert {"train/loss", "train/lr", "train/grad_norm", "epoch/val_acc"} <= set(run_tags), run
        for run, name in runs.items():
            history = histories[name]
            points = api(dashboard, "scalar/list", run=run, tag="train/loss")  # [[wall ms, step, value]]
            assert [(step, value) for _, step, value in points] == [
                (s, pytest.approx(v, rel=1e-6)) for s, v in zip(history.loss_steps, history.losses)]
            (val_acc,) = api(dashboard, "scalar/list", run=run, tag="epoch/val_acc")
            assert val_acc[1:] == [1, pytest.approx(history.epochs[0]["val_acc"], rel=1e-6)]
        hparams = {row["name"]: row["hparams"] for row in api(dashboard, "hparams/list")}
        assert hparams == {run: {"optimizer": name} for run, name in runs.items()}
        assert "weights/conv1.weight" in api(dashboard, "histogram/tags")["tags"][0]
        status, headers, png = get(f"{dashboard.url}/api/image/image?run=runs/sgd/vdl"
                                   "&tag=samples/predictions&index=0")
        assert status == 200 and headers["Content-Type"] == "image/png" and png.startswith(b"\x89PNG")


def test_start_dashboard_prints_the_address_and_stops(logdir, capsys):
    root, _ = logdir
    dashboard = start_dashboard(root, port=free_port())
    try:
        printed = capsys.readouterr().out
        assert f"{dashboard.url}/scalar " in printed and "AI Studio" in printed and str(root) in printed
        assert "smoothing 0 " in printed
        assert get(dashboard.url + "/index")[0] == 200
    finally:
        dashboard.stop()
    assert not dashboard.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(dashboard.url + "/index", timeout=5)
    dashboard.stop()  # twice is harmless


def test_start_refuses_missing_or_empty_log_directories_and_a_taken_port(logdir, tmp_path):
    with pytest.raises(DashboardError, match="not found"):
        start(tmp_path / "missing")
    with pytest.raises(DashboardError, match="no VisualDL logs"):
        start(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(DashboardError, match="in use"):
            start(logdir[0], port=taken.getsockname()[1])


class _Alive(http.server.BaseHTTPRequestHandler):
    """Another program answering ``/alive`` (what a second dashboard started a moment earlier looks like)."""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"alive")

    def log_message(self, *args):
        pass


def test_start_never_takes_another_server_for_its_own(logdir, monkeypatch):
    """The race of two dashboards started at once (two notebooks, two CI lanes): both find 8040
    free, one binds it. The other must not report the first one's address as its own; with
    ``port=None`` it moves to a free port, with a given port it stops with a clear error."""
    import course.dashboard as dashboard_module

    with http_server(_Alive) as foreign_port:
        monkeypatch.setattr(dashboard_module, "_port_is_free", lambda host, port: True)  # the check came first
        monkeypatch.setattr(dashboard_module, "DEFAULT_PORT", foreign_port)
        with start(logdir[0], port=None, language="en") as dashboard:
            assert f":{foreign_port}/" not in dashboard.url
            status, headers, _ = get(f"{dashboard.url}/api/runs")
            assert status == 200 and headers["X-Course-Dashboard"]
        with pytest.raises(DashboardError, match="another server took"):
            start(logdir[0], port=foreign_port, language="en")


def course(*args, **kwargs):
    return start_course(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.parametrize("where, message", [("missing", "not found"), ("empty", "no VisualDL logs")])
def test_cli_one_line_error_exit_2(tmp_path, where, message):
    (tmp_path / "empty").mkdir()
    proc = course("dashboard", "--logdir", str(tmp_path / where))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def read_until(proc, text, timeout):
    """stdout until it contains ``text``; fails after ``timeout`` seconds instead of hanging.

    Reads the pipe's file descriptor directly: a buffered readline() can pull two lines into
    Python's buffer at once, after which select() never reports the second one as readable.
    """
    printed, deadline = b"", time.monotonic() + timeout
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while text.encode() not in printed:
            left = deadline - time.monotonic()
            assert left > 0 and proc.poll() is None, (printed, proc.stderr.read() if proc.poll() is not None else "")
            if selector.select(left):
                printed += os.read(fd, 65536)
    return printed.decode()


def test_cli_serves_until_ctrl_c_then_exits_0(logdir):
    port = free_port()
    proc = course("dashboard", "--logdir", str(logdir[0]), "--port", str(port), "--smoothing", "0.25")
    try:
        printed = read_until(proc, "Ctrl-C", timeout=90)
        url = f"http://127.0.0.1:{port}/app"
        assert f"{url}/scalar\n" in printed and "2 runs" in printed and "smoothing 0.25 " in printed
        assert b'"scalar_smoothing","0.25"' in get(url + "/scalar")[2]
        assert get(url + "/index")[0] == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "dashboard stopped" in out
    with pytest.raises(urllib.error.URLError):  # the server went with it
        urllib.request.urlopen(url + "/index", timeout=5)
