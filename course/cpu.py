"""CPU levers: settings that make the course CNN train faster on a CPU, each named and switchable.

What each lever does, why it is exact (or where it is not), what it is worth on which CPU and what
was tried and not kept: **docs/cpu-speed.md** (the one explanation; measured with
``bench/throughput.py``, explained by ``bench/profile_step.py``). In short:

``mkl_amd``
    ``MKL_DEBUG_CPU_TYPE=5`` for the MKL 2019 inside Paddle's CPU wheel on an AMD CPU; set by
    :func:`set_mkl_env` at ``import course`` (before Paddle loads), never over a value you set.
``pool_bias``
    ``MNIST.forward`` adds the conv bias and applies ReLU after max-pooling (the same function, on a
    4x smaller tensor); taken only when nobody looks inside (course/fast_conv.py).
``bias_rows``
    the conv bias added as ``[N, C, H*W] + [C, 1]`` instead of ``[N, C, H, W] + [1, C, 1, 1]``.

Switch: ``COURSE_CPU_LEVERS``: unset, ``1`` or ``on`` = every lever that applies here; ``0`` or
``off`` = none (Paddle's default behaviour); a comma list of names = only those. Threads are not a
lever (one thread per process, docs/cpu-speed.md).

Process-wide state: ``import course`` calls :func:`set_mkl_env` when ``paddle`` is not imported yet
(the package's only side effect of importing it; processes it starts inherit the variable).
This module imports nothing heavy (no Paddle): it runs before Paddle is loaded.
"""
from __future__ import annotations

import os
import re
import sys

from .errors import ConfigError

ENV_SWITCH = "COURSE_CPU_LEVERS"
LEVERS = ("mkl_amd", "pool_bias", "bias_rows")
CONV_LEVERS = ("pool_bias", "bias_rows")  # the ones MNIST.forward takes (course/fast_conv.py)
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


# Flags that tell apart CPUs sold under one name (a VM often reports only "AMD EPYC") and that decide
# which kernels MKL / oneDNN / PyTorch pick.
NOTABLE_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_identity() -> dict:
    """Which CPU this is, from /proc/cpuinfo: vendor, model name, family / model / stepping, notable flags.

    ``label`` is what benchmarks print (``AMD EPYC (family 25 model 17 stepping 1; avx2 fma avx512f ...)``)
    and ``slug`` names the one record kept per CPU (``amd-epyc-f25-m17-s1-avx512``): a VM that reports
    only "AMD EPYC" still gets a name that tells two processor generations apart.
    """
    import platform

    name = cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown CPU"
    numbers = {key: cpuinfo_field(field) for key, field in
               (("family", "cpu family"), ("model", "model\t"), ("stepping", "stepping"))}
    present = set(cpuinfo_field("flags").split())
    flags = [f for f in NOTABLE_FLAGS if f in present]
    known = [f"{k} {v}" for k, v in numbers.items() if v]
    label = name + (f" ({' '.join(known)}" + (f"; {' '.join(flags)}" if flags else "") + ")" if known else "")
    words = re.sub(r"\((r|tm)\)|\bcpu\b|\bprocessor\b|@.*$", " ", name.lower())
    slug = "-".join(re.findall(r"[a-z0-9]+", words))[:60] or "cpu"
    slug += "".join(f"-{k[0]}{v}" for k, v in numbers.items() if v)
    if "avx512f" in present:
        slug += "-avx512"
    return {"vendor": cpu_vendor(), "model_name": name, **numbers, "flags": flags, "label": label, "slug": slug}


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
