"""Device choice, seeding and the environment report printed at the start of a run.

``use_device`` and ``set_seed`` change process-wide state, as their names say; library code
that needs a device and a seed for a while (``course.run.train_run``) runs inside
``preserve_global_state()``, which puts the caller's device and random generators back.
"""
from __future__ import annotations

import os
import platform
import random
import re
from contextlib import contextmanager

import numpy as np
import paddle

from . import cpu
from .errors import ConfigError


def gpu_count() -> int:
    if not paddle.is_compiled_with_cuda():
        return 0
    try:
        return paddle.device.cuda.device_count()
    except Exception:  # a CUDA build on a machine without a driver
        return 0


def choose_device(spec: str = "auto") -> str:
    """``'auto'`` -> ``'gpu:0'`` when Paddle has CUDA and sees a GPU, else ``'cpu'``.

    ``'gpu'`` / ``'gpu:N'`` that cannot be honoured raise ``ConfigError`` saying what was found.
    """
    count = gpu_count()
    if spec == "auto":
        return "gpu:0" if count else "cpu"
    if spec == "cpu":
        return "cpu"
    match = re.fullmatch(r"gpu(?::(\d+))?", spec)
    if not match:
        raise ConfigError(f"device={spec!r} is not one of: auto, cpu, gpu, gpu:N.")
    index = int(match.group(1) or 0)
    if index >= count:
        found = ("Paddle is a CPU-only build (install paddlepaddle-gpu)" if not paddle.is_compiled_with_cuda()
                 else f"Paddle sees {count} GPU(s)")
        raise ConfigError(f"device={spec!r} asked for GPU {index} but {found}; use --device cpu or auto.")
    return f"gpu:{index}"


def use_device(spec: str = "auto") -> str:
    """Choose a device and make it Paddle's default; returns its name."""
    device = choose_device(spec)
    paddle.set_device(device)
    return device


def set_seed(seed: int) -> None:
    """Seed Paddle (parameter initialization), NumPy and Python's ``random``."""
    paddle.seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextmanager
def preserve_global_state():
    """Run a block that may call ``use_device`` / ``set_seed``, then restore what they change:
    Paddle's default device and the global generators of Paddle (CPU and CUDA), NumPy and
    Python's ``random``. A notebook that calls ``train_run`` keeps its kernel's state."""
    device = paddle.get_device()
    paddle_cpu = paddle.get_rng_state("cpu")
    paddle_cuda = paddle.get_cuda_rng_state() if gpu_count() else None
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        # set_rng_state(state, "cpu") fails on Paddle 2.6 (its `device` argument shadows a module):
        # restore the CPU generators as the current device's, then the device itself.
        paddle.set_device("cpu")
        paddle.set_rng_state(paddle_cpu)
        paddle.set_device(device)
        if paddle_cuda is not None:
            paddle.set_cuda_rng_state(paddle_cuda)
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def paddle_distributions() -> list[str]:
    """Installed Paddle wheels. More than one means they overwrite each other's ``paddle`` package."""
    from importlib import metadata

    found = []
    for name in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return found


def describe(device: str) -> str:
    """One line: Paddle version, device, CUDA / cuDNN versions, CPU threads, CPU levers, Python."""
    parts = [f"paddle {paddle.__version__}", f"device {device}"]
    if paddle.is_compiled_with_cuda():
        parts.append(f"CUDA {paddle.version.cuda()} cuDNN {paddle.version.cudnn()}")
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    parts += [f"CPU cores {os.cpu_count()}", f"OMP_NUM_THREADS {threads}"]
    parts.append(cpu.describe())
    if device == "cpu" and (os.cpu_count() or 1) > 1 and int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) == 1:
        parts.append(cpu.processes_note())
    parts.append(f"python {platform.python_version()}")
    wheels = paddle_distributions()
    if len(wheels) > 1:
        parts.append(f"WARNING: {' and '.join(wheels)} are both installed and share one `paddle` "
                     "folder; uninstall both and reinstall the one you want")
    return " | ".join(parts)
