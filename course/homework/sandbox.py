"""Where a submission's kernel runs: a bubblewrap sandbox on Linux, or best effort elsewhere.

Two modes (``python -m course grade --sandbox auto|bwrap|none``; ``auto`` takes bwrap when it works here):

``bwrap``  The kernel is started by bubblewrap (https://github.com/containers/bubblewrap, Debian/Ubuntu package
           ``bubblewrap``; the tool Flatpak builds on). It gets new user, PID, network, IPC, UTS and cgroup
           namespaces and no capabilities; it runs as uid 65534 inside; it sees a read-only view of only what it
           needs (/usr, the dynamic linker's cache, the Python installation, the ``course`` package and the
           lesson files), a private writable home (its working folder), a private /tmp, and the folder with its
           own connection sockets. The grader talks to it over Unix sockets (``transport="ipc"``) because the
           kernel has no network at all. It cannot see the output folder, the cache, the teacher's files or any
           other submission, cannot reach the network, cannot signal the grader (another PID namespace), and
           every process it starts dies with it (``--die-with-parent`` + the PID namespace).
``none``   Best effort (no bubblewrap, another OS, or a machine where user namespaces are off): the kernel runs
           with the teacher's rights in a temporary folder of its own, in a new session; resource limits still
           apply and every descendant is killed afterwards, but it could read or write anything the teacher can.
           The grader says so on its first line and in ``grades.csv``.

Why bubblewrap: it is small, unprivileged (no daemon, no root), packaged by every Linux distribution, and does
exactly namespaces + bind mounts; a container engine would need a daemon and an image, a separate user needs
root. ``unshare(1)`` has the same namespaces but no bind-mount layout of its own.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import CourseError

SANDBOX_HOME = "/home/student"
SANDBOX_UID = 65534
MODES = ("auto", "bwrap", "none")

# What each mode protects against, one line each: docs/teachers.md's table and the run's first line use these.
PROTECTS = {
    "bwrap": ("no network; sees only the Python installation, the course package and its own folder (read-only "
              "except its folder); cannot see the output folder, the cache or other submissions; cannot signal the "
              "grader; every process it starts ends with it"),
    "none": ("BEST EFFORT ONLY: limits on time, memory, file size and output, its own temporary folder, every "
             "descendant killed afterwards; it runs with your rights and could read or write your files or use the "
             "network (install bubblewrap to isolate it)"),
}


@dataclass(frozen=True)
class Sandbox:
    mode: str          # "bwrap" or "none"
    detail: str        # why this mode (e.g. "bubblewrap 0.8.0", "bwrap not found")

    @property
    def protects(self) -> str:
        return PROTECTS[self.mode]

    def banner(self) -> str:
        return f"sandbox: {self.mode} ({self.detail}): {self.protects}"

    def wrap(self, argv: list[str], *, home: Path, private: list[Path]) -> list[str]:
        """``argv`` as it must be started: inside bubblewrap with ``home`` as its home and working folder and
        the ``private`` folders (its connection sockets) at their own paths; unchanged in best-effort mode."""
        if self.mode == "none":
            return argv
        return [_bwrap(), *_bwrap_args(home, private), "--", *argv]


def _bwrap() -> str:
    return shutil.which("bwrap") or "bwrap"


def _read_only_paths() -> list[str]:
    """What a kernel must read: the Python installation (base and venv), the course package, the lesson files."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    # site-packages folders outside those prefixes (a user site, a .pth-added environment): the kernel's
    # imports come from there too. A project folder on sys.path (an editable install) is not bound whole:
    # only the course package and the lesson files in it, below.
    paths |= {p for p in sys.path if p and Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()}
    for name in ("course", "data_process", "MNIST_network", "tools"):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        paths.add(str(origin.parent if origin.name == "__init__.py" else origin))
    # a path inside another one is already visible
    kept = sorted(paths)
    return [p for p in kept if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in kept)]


def _bwrap_args(home: Path, private: list[Path]) -> list[str]:
    args = ["--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--cap-drop", "ALL", "--die-with-parent", "--new-session",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/fonts"):
        args += ["--ro-bind-try", etc, etc]
    for path in _read_only_paths():
        args += ["--ro-bind", path, path]
    for path in private:
        args += ["--bind", str(path), str(path)]
    args += ["--bind", str(home), SANDBOX_HOME, "--chdir", f"{SANDBOX_HOME}/work",
             # ipykernel exits when its parent pid is not the one the launcher passed (inside, its parent is pid 1)
             "--unsetenv", "JPY_PARENT_PID", "--setenv", "HOME", SANDBOX_HOME, "--setenv", "USER", "student",
             "--setenv", "TMPDIR", "/tmp"]
    return args


@functools.lru_cache(maxsize=None)
def _bwrap_works() -> tuple[bool, str]:
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bwrap not found: install bubblewrap (Debian/Ubuntu: apt install bubblewrap)"
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap needs Linux, this is {sys.platform}"
    import tempfile
    with tempfile.TemporaryDirectory(prefix="course-grade-probe-") as home:
        (Path(home) / "work").mkdir()
        try:
            done = subprocess.run([exe, *_bwrap_args(Path(home), []), "--", sys.executable, "-c", "import course"],
                                  capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, f"bwrap could not start ({e})"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return False, f"bwrap does not work here ({last[:160]}; are unprivileged user namespaces disabled?)"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip() or "bwrap"
    return True, version


def choose(requested: str = "auto") -> Sandbox:
    """The sandbox for this machine: ``bwrap`` if asked for (an error if it does not work) or if ``auto`` finds
    it working, else ``none`` (best effort)."""
    if requested not in MODES:
        raise CourseError(f"unknown sandbox {requested!r}: choose one of {', '.join(MODES)}.")
    if requested == "none":
        return Sandbox("none", "asked for with --sandbox none")
    works, detail = _bwrap_works()
    if works:
        return Sandbox("bwrap", detail)
    if requested == "bwrap":
        raise CourseError(f"--sandbox bwrap: {detail}. Install bubblewrap, or grade with --sandbox none "
                          "(best effort, see docs/teachers.md).")
    return Sandbox("none", detail)


# ------------------------------------------------------------------------------------------ process trees

def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Linux /proc; empty elsewhere)."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``), so that a
    process a submission detaches (double fork, ``setsid``) is still found below the grader and killed. Changes
    this process: called only by the ``grade`` command."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0   # PR_SET_CHILD_SUBREAPER = 36
    except (OSError, AttributeError):
        return False


def kill_tree(pid: int | None, *, keep: set[int] = frozenset()) -> int:
    """SIGKILL ``pid`` and everything below it (and, with ``pid`` None, every descendant of this process not in
    ``keep``); reap what is ours. Returns how many processes were killed."""
    targets = descendants(os.getpid()) if pid is None else [pid, *descendants(pid)]
    targets = [p for p in targets if p not in keep and p != os.getpid()]
    for p in targets:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:   # reap our zombies so they do not pile up over a class
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if reaped == 0:
            if not any(os.path.exists(f"/proc/{p}") and _alive(p) for p in targets):
                break
            time.sleep(0.02)
    return len(targets)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().decode("utf-8", "replace")
        return state[state.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return False
