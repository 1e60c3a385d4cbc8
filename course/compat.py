"""What the installed Paddle can do: the supported range, features by version, one start-up check.

Supported (and tested in CI, see docs/versions.md): Paddle 2.6.x and 3.x.
A feature that one line lacks is a one-line ``ConfigError`` naming the version that has it
(``require``), never an ``AttributeError`` from deep inside a run.

This module imports nothing heavy: ``check_startup`` runs from ``course/__init__.py`` before
Paddle is imported and reads versions from the installed distributions' metadata.
"""
from __future__ import annotations

import re
import sys
from importlib import metadata

from .errors import ConfigError

MIN_PADDLE = (2, 6)
# feature -> (first Paddle version that has it, what it is in Paddle)
FEATURES = {
    "radam": ((3, 0), "paddle.optimizer.RAdam"),
}


def _version_tuple(text: str) -> tuple[int, ...]:
    """``"2.6.2"`` -> ``(2, 6, 2)``; ``"3.0.0b1"`` -> ``(3, 0, 0)``; ``"0.0.0"`` (a source build) kept."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def paddle_version() -> tuple[int, ...]:
    """The version of the ``paddle`` that is (or would be) imported, e.g. ``(3, 3, 1)``."""
    paddle = sys.modules.get("paddle")
    if paddle is not None and hasattr(paddle, "__version__"):
        return _version_tuple(paddle.__version__)
    for name in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            return _version_tuple(metadata.version(name))
        except metadata.PackageNotFoundError:
            pass
    import paddle  # another distribution name (a source build, AI Studio's image): ask Paddle itself

    return _version_tuple(paddle.__version__)


def has(feature: str) -> bool:
    """True when the installed Paddle has ``feature`` (a key of ``FEATURES``)."""
    first, _ = FEATURES[feature]
    version = paddle_version()
    return version >= first or version[:2] == (0, 0)  # 0.0.0: a development build of the newest code


def require(feature: str, what: str | None = None) -> None:
    """Raise a one-line ``ConfigError`` unless the installed Paddle has ``feature``."""
    if not has(feature):
        first, paddle_name = FEATURES[feature]
        have = ".".join(map(str, paddle_version()))
        raise ConfigError(f"{what or feature} needs Paddle {first[0]}.{first[1]} or later ({paddle_name}); "
                          f"this is Paddle {have}: upgrade Paddle (pip install -U paddlepaddle) "
                          f"or choose another option.")


def zlib_order_problem() -> str | None:
    """Why reading gzip data would crash this process, or ``None``.

    Paddle 2.6's ``libpaddle.so`` exports a zlib of its own. When it is loaded before the
    system's ``libz`` is first used through Python's ``zlib`` module, ``libz``'s
    ``inflateInit2_`` binds to Paddle's ``inflateReset2`` and the first decompression
    (``gzip``, ``zlib.compress``, matplotlib's PNG writer, NumPy's ``numpy.random`` import) dies with
    SIGSEGV. ``import zlib`` *before* Paddle avoids it, which ``course/__init__.py`` does; this tells
    whether Paddle was first, as in a script that starts with the course's own first cell
    (``import paddle``, then ``from data_process import ...``). Then ``gunzip`` and
    ``course.plots`` do their zlib work in a child process. Paddle 3.x does not export zlib.
    """
    order = list(sys.modules)
    if "paddle.base.libpaddle" not in order or paddle_version() >= (3,):
        return None
    if "zlib" in order and order.index("zlib") < order.index("paddle.base.libpaddle"):
        return None
    return ("Paddle 2.6 was imported before Python's zlib, so zlib, gzip and PNG writing crash in this "
            "process (segmentation fault); course reads its data and saves its plots in a child process "
            "instead. To use them yourself, import course (or zlib) before paddle, or use Paddle 3.x.")


# Run by a fresh interpreter (-I: no user site, no PYTHON* variables): gzip there uses the system zlib.
_GUNZIP_CHILD = "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"


def gunzip(data: bytes) -> bytes:
    """``gzip.decompress(data)``, in a child process when this one's zlib would crash (``zlib_order_problem``).

    That is a script whose first line is ``import paddle`` on Paddle 2.6, as the course's own first cell
    is: the embedded MNIST is then decompressed by a fresh Python and handed back through a pipe (a
    fraction of a second more per file than in process). A corrupt file is an ``OSError`` either way.
    """
    if zlib_order_problem() is None:
        import gzip

        return gzip.decompress(data)
    import subprocess

    done = subprocess.run([sys.executable, "-I", "-c", _GUNZIP_CHILD], input=data, capture_output=True)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise OSError(lines[-1] if lines else f"gzip in a child process exited with status {done.returncode}")
    return done.stdout


def check_startup() -> None:
    """Refuse a Paddle older than 2.6 (one line); warn, once, when Paddle 2.6 came before zlib."""
    try:
        version = paddle_version()
    except ImportError:
        return  # no Paddle: `python -m course --help` and the dashboard still answer
    if version[:2] != (0, 0) and version[:2] < MIN_PADDLE:
        raise ImportError(f"course needs Paddle {MIN_PADDLE[0]}.{MIN_PADDLE[1]} or later, found "
                          f"{'.'.join(map(str, version))}: pip install -U paddlepaddle (or paddlepaddle-gpu).")
    problem = zlib_order_problem()
    if problem:  # the course's first cell in a script: `import paddle`, then `from data_process import ...`
        import warnings

        warnings.warn(problem, RuntimeWarning, stacklevel=3)
