"""The VisualDL dashboard: ``python -m course dashboard`` in a shell, ``start_dashboard`` in a notebook.

Both run VisualDL 2.5.3's own server (``python -m visualdl.server.app``) in a
child process, with the options a course needs set explicitly:

- bound to ``127.0.0.1`` unless asked otherwise (the dashboard serves the
  log files to whoever can reach the port);
- ``--disable-telemetry``: otherwise VisualDL posts a usage record to
  paddlepaddle.org.cn at start and gives the page an analytics id;
- ``--language zh|en``: without it VisualDL answers HTTP 500 to a page request
  that carries no ``Accept-Language`` header (``curl``, many proxies), because
  it picks the language from that header;
- run names relative to the log directory's parent (``runs/<run>/vdl``), not
  absolute paths, by starting the server in that parent;
- the address printed is the scalar (curves) page, ``.../app/scalar``: VisualDL's
  ``/app`` goes to the first entry of ``/api/component_tabs``, which the server
  builds from a Python set, so it lands on whichever tab the string hashes put
  first (the hyper-parameter page, as often as not);
- the curves' smoothing starts at ``smoothing`` (default 0, the logged values).
  VisualDL has one smoothing slider for every chart and starts it at 0.6 (an
  exponential moving average, debiased). The charts with the fewest points are
  the per-epoch ones (``epoch/*``, one point per epoch: 3 in the main job), and on
  3 points 0.6 moves the last one far off: the smoothed final lr reads 2.6e-3
  where the logged one is 8e-7. The per-step ``train/*`` curves (hundreds of
  points) are noisier at 0; a student raises the slider for them.
  The page reads the slider's start from ``?smoothing=`` in its address, but its
  navigation bar drops the query before the lazily loaded scalar page reads it,
  so the value is set where the page keeps it: the browser's localStorage key
  ``scalar_smoothing``. The server is VisualDL's own (``visualdl.server.app``),
  started through ``_SERVER`` below, which adds one script to the HTML it serves;
  the script sets the key only when this value differs from the one it set last,
  so a student's own slider setting is kept from visit to visit.

``serve`` blocks until Ctrl-C (the CLI); ``start_dashboard`` returns at once
with a ``Dashboard`` whose ``stop()`` ends the server (notebooks/2.8.5_visualdl.ipynb).
"""
from __future__ import annotations

import atexit
import errno
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .errors import CourseError

DEFAULT_PORT = 8040  # VisualDL's own default
DEFAULT_HOST = "127.0.0.1"
LANGUAGES = ("zh", "en")  # what VisualDL 2.5.3 supports
DEFAULT_SMOOTHING = 0.0   # see the module docstring

# The child process: VisualDL's server (its own argument parser and app) with one after-request
# hook that puts the smoothing script into the page's HTML. argv: SMOOTHING, then VisualDL's arguments.
_SERVER = """
import sys
from visualdl.server import app as vdl

smoothing = sys.argv.pop(1)
token = sys.argv.pop(1)  # answered on every response: start() knows the server on the port is this one
script = ('<script>try{if(localStorage.getItem("course_smoothing")!=="%s"){'
          'localStorage.setItem("scalar_smoothing","%s");localStorage.setItem("course_smoothing","%s")}'
          '}catch(e){}</script>' % (smoothing, smoothing, smoothing))
create_app = vdl.create_app

def create_app_with_smoothing(args):
    app = create_app(args)

    @app.after_request
    def set_smoothing(response):
        response.headers["X-Course-Dashboard"] = token
        if response.mimetype == "text/html" and not response.direct_passthrough:
            page = response.get_data(as_text=True)
            if "<head>" in page:
                response.set_data(page.replace("<head>", "<head>" + script, 1))
        return response
    return app

vdl.create_app = create_app_with_smoothing
vdl.main()
"""


class DashboardError(CourseError, RuntimeError):
    """The dashboard cannot start: no logs, port taken, or the VisualDL server failed."""


def find_runs(logdir) -> list[Path]:
    """Directories under ``logdir`` that hold VisualDL logs (one per run), sorted.

    Raises ``DashboardError`` when ``logdir`` is missing or holds no VisualDL log.
    """
    path = Path(logdir)
    if not path.is_dir():
        raise DashboardError(f"log directory {path} not found; train a run first (python -m course train) "
                             "or pass --logdir DIR.")
    # VisualDL reads every file whose name contains 'vdlrecords' (visualdl.reader.reader).
    runs = sorted({p.parent for p in path.rglob("*vdlrecords*") if p.is_file()})
    if not runs:
        raise DashboardError(f"{path} holds no VisualDL logs (no vdlrecords.* file below it); train with "
                             "VisualDL on (the default) or pass the --logdir that holds your runs.")
    return runs


def _port_is_free(host: str, port: int) -> bool:
    """False when another program holds ``port``; ``DashboardError`` when ``host`` cannot be bound at all."""
    if not 0 < port < 65536:
        raise DashboardError(f"port must be between 1 and 65535, got {port}.")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        # As the server binds (werkzeug sets SO_REUSEADDR): closed connections still in TIME_WAIT
        # from an earlier dashboard do not count as "in use"; a listening server does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
            raise DashboardError(f"cannot listen on {host}:{port} ({e.strerror or e}); "
                                 "pass --host 127.0.0.1 or an address of this machine.") from None
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Dashboard:
    """A running VisualDL server (a child process). Stop it with ``stop()`` or a ``with`` block.

    Attributes
    ----------
    url : str
        The dashboard's root, e.g. ``http://127.0.0.1:8040/app`` (its API is under ``url + '/api'``).
    page : str
        The address to open: the scalar (curves) page, ``url + '/scalar'``.
    smoothing : float
        The curves' smoothing the page starts with.
    logdir : pathlib.Path
        The log directory it serves.
    runs : list of pathlib.Path
        The run directories found at start (runs written later show up too).
    process : subprocess.Popen
        The server process.
    log_path : pathlib.Path
        The server's own output while it runs (deleted by ``stop()``).
    """

    def __init__(self, url: str, logdir: Path, runs: list, process: subprocess.Popen, log_path: Path,
                 smoothing: float = DEFAULT_SMOOTHING):
        self.url, self.logdir, self.runs, self.process, self.log_path = url, logdir, runs, process, log_path
        self.page, self.smoothing = url + "/scalar", smoothing

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """End the server (SIGTERM, then SIGKILL after ``timeout`` seconds); safe to call twice."""
        atexit.unregister(self.stop)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        state = "running" if self.running else f"stopped (exit {self.process.returncode})"
        return f"Dashboard(url={self.url!r}, logdir={str(self.logdir)!r}, runs={len(self.runs)}, {state})"

    def _repr_html_(self):  # a clickable link when a notebook cell ends with the object
        return f'<a href="{self.page}" target="_blank">VisualDL: {self.page}</a> ({len(self.runs)} runs)'


def start(logdir="runs", port: int | None = None, host: str = DEFAULT_HOST, language: str = "zh",
          timeout: float = 60.0, smoothing: float = DEFAULT_SMOOTHING) -> Dashboard:
    """Start VisualDL on ``logdir`` in a child process and wait (at most ``timeout`` s) until it answers.

    Parameters
    ----------
    logdir
        A directory holding run directories with VisualDL logs (e.g. ``runs``).
    port
        ``None``: 8040 if free, else any free port. A given port must be free.
    host
        Address to bind; ``0.0.0.0`` exposes the logs to the network.
    language
        ``zh`` or ``en``: the UI language for every visitor (see the module docstring).
    smoothing
        Where the curves' smoothing slider starts, 0 to 0.99 (default 0: the logged values;
        see the module docstring).

    Returns
    -------
    Dashboard
        Its ``url`` answers; ``stop()`` ends it (also done when Python exits).
    """
    if language not in LANGUAGES:
        raise DashboardError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}.")
    if not (isinstance(smoothing, (int, float)) and 0 <= smoothing <= 0.99):
        raise DashboardError(f"smoothing must be a number from 0 to 0.99 (VisualDL's slider), got {smoothing!r}.")
    smoothing = round(float(smoothing), 2)  # the slider's step
    logdir = Path(logdir).resolve()
    runs = find_runs(logdir)
    if port is not None:
        if not _port_is_free(host, port):
            # Checked here because VisualDL's own start-up check would find the other server
            # answering on that port and announce itself as running.
            raise DashboardError(f"port {port} on {host} is in use (another dashboard?); pass another --port.")
        return _launch(logdir, runs, port, host, language, timeout, smoothing)
    port = DEFAULT_PORT if _port_is_free(host, DEFAULT_PORT) else _free_port(host)
    try:
        return _launch(logdir, runs, port, host, language, timeout, smoothing)
    except _PortLost:
        # Another program (a second dashboard started at the same moment) bound the port between
        # the check and VisualDL's bind: once more on a port the system hands out.
        return _launch(logdir, runs, _free_port(host), host, language, timeout, smoothing)


class _PortLost(DashboardError):
    """The port was free when checked, but by the time the server started another program answered on it."""


def _launch(logdir: Path, runs: list, port: int, host: str, language: str, timeout: float,
            smoothing: float) -> Dashboard:
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    shown = f"[{probe.strip('[]')}]" if ":" in probe else probe
    url = f"http://{shown}:{port}/app"

    log_file = tempfile.NamedTemporaryFile("wb", prefix="course-dashboard-", suffix=".log", delete=False)
    token = secrets.token_hex(8)
    command = [sys.executable, "-c", _SERVER, f"{smoothing:g}", token, "--logdir", logdir.name or str(logdir),
               "--host", host, "--port", str(port), "--language", language, "--disable-telemetry"]
    # Own session: a Ctrl-C in the terminal or a notebook kernel interrupt reaches only
    # this process, which then stops the server itself (no half-printed child traceback).
    process = subprocess.Popen(command, cwd=logdir.parent, stdin=subprocess.DEVNULL, stdout=log_file,
                               stderr=subprocess.STDOUT, start_new_session=True)
    log_file.close()
    dashboard = Dashboard(url, logdir, runs, process, Path(log_file.name), smoothing)
    atexit.register(dashboard.stop)
    try:
        _wait_until_alive(dashboard, f"http://{shown}:{port}/alive", token, timeout)
    except BaseException:
        dashboard.stop()
        raise
    return dashboard


def _wait_until_alive(dashboard: Dashboard, alive_url: str, token: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    someone_else = False  # a server answered on the port without this dashboard's token
    while True:
        # VisualDL 2.5.3 that finds its port taken prints "Address already in use" and keeps running.
        if not dashboard.running or (someone_else and "Address already in use" in dashboard.log_tail(20)):
            if someone_else:
                raise _PortLost(f"another server took {alive_url.rsplit('/', 1)[0]} while the dashboard started; "
                                "pass a free --port.")
            raise DashboardError(f"the VisualDL server exited at start (status {dashboard.process.returncode}): "
                                 f"{dashboard.log_tail() or 'no output'}")
        try:
            with urllib.request.urlopen(alive_url, timeout=2) as response:
                if response.status < 400:
                    if response.headers.get("X-Course-Dashboard") == token:
                        return
                    someone_else = True
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise DashboardError(f"the VisualDL server did not answer at {alive_url} within {timeout:g}s; "
                                 f"its output: {dashboard.log_tail() or 'none'}")
        time.sleep(0.2)


def start_dashboard(logdir="runs", port: int | None = None, host: str = DEFAULT_HOST, language: str = "zh",
                    timeout: float = 60.0, smoothing: float = DEFAULT_SMOOTHING) -> Dashboard:
    """From a notebook: start the dashboard in the background, print where to open it, return it.

    Same parameters as ``start``. Call ``.stop()`` on the result when done (it
    is also stopped when the kernel exits). On AI Studio the printed address is
    not reachable from your browser; use its built-in VisualDL tab instead,
    with the log directory set there (the message says which).
    """
    dashboard = start(logdir, port, host, language, timeout, smoothing)
    print(f"VisualDL dashboard: {dashboard.page}  ({len(dashboard.runs)} runs under {dashboard.logdir})\n"
          f"  Open it in a browser on this machine; stop it with .stop().\n"
          f"  {_smoothing_note(smoothing)}\n"
          f"  On AI Studio that address is not reachable from your browser: open the built-in VisualDL tab "
          f"(left sidebar, 可视化 / Visualization), set its log directory (logdir) to {dashboard.logdir}, "
          f"start the service there and open it.")
    return dashboard


def _smoothing_note(smoothing: float) -> str:
    return (f"Curves start with smoothing {smoothing:g} (the slider on the left, 平滑度 / Smoothing): per-epoch "
            f"curves have one point per epoch, and VisualDL's usual 0.6 bends them; raise it for the noisy "
            f"per-step train/ curves.")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(logdir="runs", port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, language: str = "zh",
          smoothing: float = DEFAULT_SMOOTHING) -> int:
    """``python -m course dashboard``: run the dashboard until Ctrl-C (or SIGTERM); returns exit status 0.

    Raises ``DashboardError`` (the CLI prints it as one line, exit 2) when it cannot start
    or when the server dies on its own.
    """
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the server too
    dashboard = None
    try:
        dashboard = start(logdir, port, host, language, smoothing=smoothing)
        print(f"VisualDL dashboard for {dashboard.logdir} ({len(dashboard.runs)} runs): {dashboard.page}"
              + ("  (bound to all interfaces: anyone who reaches this port sees the logs)"
                 if host in ("0.0.0.0", "::", "") else "")
              + f"\n{_smoothing_note(smoothing)}\nPress Ctrl-C to stop.", flush=True)
        status = dashboard.process.wait()
        raise DashboardError(f"the VisualDL server stopped on its own (status {status}): "
                             f"{dashboard.log_tail() or 'no output'}")
    except KeyboardInterrupt:
        print("\ndashboard stopped", flush=True)
        return 0
    finally:
        if dashboard is not None:
            dashboard.stop()
        signal.signal(signal.SIGTERM, previous)
