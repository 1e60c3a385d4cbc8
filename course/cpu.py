"""CPU levers: settings that make the course CNN train faster on a CPU, each named and switchable.

Measured with ``bench/throughput.py`` (side by side, fresh processes) and explained by
``bench/profile_step.py`` (per-operator shares); see docs/benchmarks.md. Three levers:

``mkl_amd``
    Paddle's CPU wheel bundles Intel MKL 2019.0 Update 5 (``MKL_VERBOSE=1`` prints it). On a
    processor that is not Intel's, that MKL takes a generic, slow code path for its matrix
    products (the convolutions are im2col + SGEMM). MKL releases before 2020.1 honour
    ``MKL_DEBUG_CPU_TYPE=5``, which makes them use their AVX2 kernels. MKL reads the variable
    when its library is loaded, i.e. when ``paddle`` is first imported, so it must be in the
    environment before that: :func:`set_mkl_env` puts it there. It is applied only when the CPU
    vendor (``/proc/cpuinfo``) is AMD and the installed Paddle is the CPU wheel (``paddlepaddle``,
    not ``paddlepaddle-gpu``: on a GPU build the convolutions do not run in MKL). Numerics: other
    SGEMM kernels, so results differ from the default in the last bits (not bit for bit).

``pool_bias``
    ``MNIST.forward`` computes ``relu(maxpool(conv(x, w)) + b)`` instead of the course's
    ``maxpool(relu(conv(x, w) + b))``: the same function (see ``course/model.py``), but the
    broadcast add of each convolution's bias, its gradient and the ReLU run on a tensor 4x
    smaller. Paddle's CPU broadcast add of a ``[20]`` bias onto ``[64, 20, 28, 28]`` and its
    gradient were a third of a training step here. Forward outputs are bit for bit the course's;
    gradients differ only by the summation order of the bias gradient (and a max-pool tie that
    rounding creates, which is rare). The model takes the course's plain path whenever someone
    looks inside: ``check_shape`` / ``check_content``, forward hooks on its sub-layers, and with
    ``batch_norm=True`` (BatchNorm does not commute with max-pooling).

``bias_rows``
    The convolutions' bias is added as ``[N, C, H*W] + [C, 1]`` (a row per channel) instead of
    Paddle's ``[N, C, H, W] + [1, C, 1, 1]``. Same additions, same rounding: the forward is bit for
    bit; the bias gradient sums the same terms in another order. Paddle's CPU kernels for the
    4-D broadcast add and its gradient are several times slower than for the 3-D one here (with
    ``pool_bias``, the add and its gradient fell from 11 % of a profiled training step to 1.6 %,
    ``bench/profile_step.py``). Taken on the same path as
    ``pool_bias`` (and with the same exceptions); each of the two works without the other.

Switch: the environment variable ``COURSE_CPU_LEVERS``: unset, ``1`` or ``on`` = every lever
that applies here; ``0`` or ``off`` = none (Paddle's default behaviour); a comma list of names
(``COURSE_CPU_LEVERS=pool_bias``) = only those. A value you set yourself for
``MKL_DEBUG_CPU_TYPE`` is never overridden. Thread settings are not a lever: one thread per
process was fastest here (2 threads in one process: 0.56x, docs/benchmarks.md).

Process-wide state: ``import course`` calls :func:`set_mkl_env` when ``paddle`` is not imported
yet, so the variable is set in ``os.environ`` of the whole process (and inherited by the
processes it starts: sweep workers, ``--nproc`` ranks). That is the only side effect of
importing the package. Importing ``paddle`` before ``course`` leaves MKL on its default path
(the run header then says so); the command-line entry points import ``course`` first.

This module imports nothing heavy (no Paddle): it runs before Paddle is loaded.
"""
from __future__ import annotations

import os
import sys

from .errors import ConfigError

ENV_SWITCH = "COURSE_CPU_LEVERS"
LEVERS = ("mkl_amd", "pool_bias", "bias_rows")
CONV_LEVERS = ("pool_bias", "bias_rows")  # the ones MNIST.forward takes (course/model.py)
MKL_ENV, MKL_VALUE = "MKL_DEBUG_CPU_TYPE", "5"

_parsed: dict = {}


def selected_levers(value: str | None = None) -> frozenset:
    """The levers ``COURSE_CPU_LEVERS`` (or ``value``) turns on; raises ``ConfigError`` on unknown names."""
    value = os.environ.get(ENV_SWITCH) if value is None else value
    if value in _parsed:
        return _parsed[value]
    text = (value or "").strip().lower()
    if text in ("", "1", "on", "true", "yes", "all"):
        chosen = frozenset(LEVERS)
    elif text in ("0", "off", "false", "no", "none"):
        chosen = frozenset()
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = sorted(set(names) - set(LEVERS))
        if unknown:
            raise ConfigError(f"{ENV_SWITCH}={value!r} names unknown lever(s) {unknown}; use 1 (all), 0 (none) "
                              f"or a comma list of: {', '.join(LEVERS)}.")
        chosen = frozenset(names)
    _parsed[value] = chosen
    return chosen


def lever_on(name: str) -> bool:
    """Is lever ``name`` selected by ``COURSE_CPU_LEVERS``? (Read on every call: cheap, and switchable.)"""
    return name in selected_levers()


def cpuinfo_field(key: str) -> str:
    """The first ``key`` line of /proc/cpuinfo (``'vendor_id'``, ``'model name'`` ...); ``''`` when absent."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_vendor() -> str:
    """``'AuthenticAMD'``, ``'GenuineIntel'`` ... from /proc/cpuinfo; ``''`` when it cannot be read."""
    return cpuinfo_field("vendor_id")


def paddle_is_gpu_wheel() -> bool:
    """True when ``paddlepaddle-gpu`` is installed (read from package metadata, without importing Paddle)."""
    from importlib import metadata

    try:
        metadata.version("paddlepaddle-gpu")
        return True
    except metadata.PackageNotFoundError:
        return False


def mkl_amd_applies() -> tuple[bool, str]:
    """``(applies, why)`` for the MKL dispatch lever on this machine, ignoring the switch."""
    vendor = cpu_vendor()
    if vendor != "AuthenticAMD":
        return False, f"CPU vendor {vendor or 'unknown'}; it is for AMD CPUs"
    if paddle_is_gpu_wheel():
        return False, "paddlepaddle-gpu: its convolutions do not run in MKL"
    return True, "AMD CPU, Paddle CPU wheel (MKL 2019)"


def set_mkl_env() -> str:
    """Put ``MKL_DEBUG_CPU_TYPE=5`` in ``os.environ`` (process-wide) when the ``mkl_amd`` lever applies.

    Does nothing when the lever is switched off, the CPU is not AMD, the GPU wheel is installed,
    the user already set the variable, or ``paddle`` is already imported (too late for MKL).
    Returns what happened, one short phrase (also what :func:`describe` reports). A lever that
    does not apply here is "not needed", one that came too late "not set": states, not failures.
    """
    try:
        if not lever_on("mkl_amd"):
            return "off"
    except ConfigError:
        return "off"  # a bad switch value: describe() raises it where the run header is printed
    applies, why = mkl_amd_applies()
    if not applies:
        return f"not needed ({why})"
    if MKL_ENV in os.environ:
        return f"{MKL_ENV}={os.environ[MKL_ENV]} (already in the environment: kept)"
    if "paddle" in sys.modules:
        return "not set (paddle was imported before course, when MKL had already read its settings)"
    os.environ[MKL_ENV] = MKL_VALUE
    return f"{MKL_ENV}={MKL_VALUE} ({why})"


_mkl_status = None  # what set_mkl_env did at `import course`


def remember_mkl_status(status: str) -> None:
    global _mkl_status
    _mkl_status = status


# Why one process stays the default on a multi-core CPU (docs/cpu-speed.md):
# measured on the idle 2-core development machine with the levers (2026-12-02), the main job
# (`python -m course train --no-progress`, 3 epochs) took 124.6 s in one process and 111.7 s with
# `--nproc 2` (1.11x), then 116.6 s and 118.1 s (0.99x): no clear gain end to end (the launcher's
# start-up and the per-epoch evaluation do not shrink), and it is another run: two ranks of batch 64 make a global batch of 128 and half the steps
# (test accuracy 99.15 % against 99.08 %), so the course's printed numbers would no longer be the
# lesson's. Opt-in, and the run header says why.
NPROC_NOTE = ("1 process (--nproc 2: at most 1.11x end to end on 2 cores, and a global batch of 2x64 changes the run; "
              "opt-in, docs/cpu-speed.md)")


def processes_note() -> str:
    """Why the run uses one process, for the run header of a CPU run on a machine with several cores."""
    return NPROC_NOTE


def describe() -> str:
    """``CPU levers: ...`` for the run header: which levers are on and why the others are not."""
    chosen = selected_levers()  # raises ConfigError on a bad COURSE_CPU_LEVERS: the run stops here
    if not chosen:
        mkl = f"; {MKL_ENV}={os.environ[MKL_ENV]} is in the environment" if MKL_ENV in os.environ else ""
        return f"CPU levers off ({ENV_SWITCH}={os.environ.get(ENV_SWITCH)}{mkl})"
    parts = []
    if "mkl_amd" in chosen:
        parts.append(f"mkl_amd {_mkl_status or set_mkl_env()}")
    if "pool_bias" in chosen:
        parts.append("pool_bias (conv bias + ReLU after max-pool)")
    if "bias_rows" in chosen:
        parts.append("bias_rows (conv bias added per channel row)")
    return "CPU levers: " + ", ".join(parts) + f" ({ENV_SWITCH}=0 turns them off)"
