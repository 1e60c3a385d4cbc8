"""Checkpoints: atomic save, checked load, resume.

A checkpoint is one file holding ``{'format', 'model', 'optimizer', 'meta'}``
written with ``paddle.save``. It is first written to a temporary file in the
same directory, flushed to disk, then moved over the target with
``os.replace`` (atomic on POSIX and Windows), so a crash or ``kill -9`` during
the write leaves either the old file or the new one, never half a file.

``load_checkpoint`` also accepts a bare ``model.state_dict()`` saved the
lesson's way (``paddle.save(model.state_dict(), 'mnist.pdparams')``) and a
``.safetensors`` file written by ``save_safetensors``.

Safety: ``.pdparams`` / ``.pdckpt`` files are Python pickles, and unpickling a
file can run any code its author chose (``paddle.load`` does exactly that).
``load_checkpoint`` therefore unpickles with an allow-list: dicts, lists,
tuples, numbers, strings and NumPy arrays, which is all Paddle writes for a
state dict. Anything else (``os.system``, ``subprocess``, ...) is refused before
it runs. To share weights with people who should not have to trust you, use
``save_safetensors``: that format holds only tensors and cannot carry code.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import paddle

from .errors import CheckpointError
from .rundir import checkpoint_file
from .tensors import unwrap

FORMAT = "course-checkpoint-v1"
# Everything paddle.save writes for state dicts and optimizer state (NumPy 1 and 2 module names).
SAFE_GLOBALS = {
    ("collections", "OrderedDict"), ("builtins", "tuple"), ("builtins", "list"), ("builtins", "dict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        # numpy.dtypes.*DType: how NumPy 2 may name a dtype's class in a pickle.
        if (module, name) in SAFE_GLOBALS or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise CheckpointError(
            f"refused to load: the file asks to import {module}.{name}, which a checkpoint never needs "
            "and which could run code on your machine (pickle files can). Use weights from a source "
            "you trust, or ask for a .safetensors file, which cannot carry code.")


def _to_tensors(obj):
    """Paddle's on-disk forms of a tensor, ``(name, ndarray)`` or ``ndarray``, back to Tensors."""
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray):
        return paddle.to_tensor(obj[1])
    if isinstance(obj, np.ndarray):
        return paddle.to_tensor(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _to_tensors(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_to_tensors(v) for v in obj]
    return obj


def safe_load(path) -> object:
    """``paddle.load`` for state dicts and checkpoints, without running code from the file."""
    data = Path(path).read_bytes()
    return _to_tensors(_AllowListUnpickler(io.BytesIO(data)).load())


def _safetensors_numpy():
    """``safetensors.numpy``, or a one-line ``CheckpointError`` naming the install (it is optional)."""
    try:
        import safetensors.numpy
    except ImportError:
        raise CheckpointError("reading or writing .safetensors needs the safetensors package, which is not "
                              "installed: pip install safetensors (or use a .pdparams checkpoint).") from None
    return safetensors.numpy


def save_safetensors(model, path) -> Path:
    """Write the model's weights as ``.safetensors``: tensors only, safe to share and to load.
    Written atomically, as every file of this module (``atomic_write``)."""
    save_file = _safetensors_numpy().save_file

    state = {k: v.numpy() for k, v in unwrap(model).state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata={"format": "course-mnist-state-dict"}))


def atomic_save(obj, path) -> Path:
    """``paddle.save(obj, path)`` through a temporary file and ``os.replace`` (``atomic_write``)."""
    return atomic_write(path, lambda tmp: paddle.save(obj, str(tmp)))


def _umask() -> int:
    """This process's umask, read without changing it (Linux /proc); 0o022, the common default, elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        return 0o022


def atomic_write(path, write) -> Path:
    """Call ``write(tmp)`` to write a temporary file beside ``path``, flush it to disk, move it over
    ``path`` with ``os.replace``; a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # the permissions a plain open() would give (some writers create their file 0600: an export
        # "safe to share" must be readable by others where the umask allows it)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _remove_stale_temporaries(path)
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # not supported on every platform / file system
    return path


def _rename_keys(state: dict, mapping: dict) -> dict:
    """Replace each key's parameter-name prefix through ``mapping`` (recursing into dicts)."""
    prefixes = sorted(mapping, key=len, reverse=True)  # longest first: conv2d_14 before conv2d_1
    renamed = {}
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        new_key = mapping[prefix] + key[len(prefix):] if prefix else key
        renamed[new_key] = _rename_keys(value, mapping) if isinstance(value, dict) else value
    return renamed


def portable_optimizer_state(model, optimizer) -> dict:
    """``optimizer.state_dict()`` keyed by structured names (``conv1.weight_moment1_0``).

    Paddle keys optimizer state by unique parameter names (``conv2d_14.w_0``) that
    depend on how many layers the process has built before, so a second model in
    the same process (a notebook cell run twice) could not load it.
    """
    return _rename_keys(optimizer.state_dict(), {p.name: k for k, p in model.named_parameters()})


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files left by writers that were killed mid-write (their process is gone)."""
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            os.kill(int(stale.name.rsplit("-", 1)[1]), 0)  # still running: leave it alone
        except (ValueError, ProcessLookupError):
            stale.unlink(missing_ok=True)
        except PermissionError:
            pass  # another user's live process


def save_checkpoint(path, model, optimizer=None, scaler=None, **meta) -> Path:
    """Save model and optimizer state (the optimizer's includes its LR scheduler) plus ``meta``.

    ``scaler``: a ``paddle.amp.GradScaler`` whose loss scale and counters are kept too (float16
    mixed precision; a disabled scaler has no state). A ``paddle.DataParallel`` model is saved
    as the model inside it, so the file loads into a plain ``MNIST``.
    """
    model = unwrap(model)
    return atomic_save({"format": FORMAT, "model": model.state_dict(),
                        "optimizer": portable_optimizer_state(model, optimizer) if optimizer is not None else None,
                        "scaler": (scaler.state_dict() or None) if scaler is not None else None,
                        "meta": meta}, path)


def load_checkpoint(path) -> dict:
    """Read a checkpoint (or a bare state dict) into ``{'model', 'optimizer', 'meta'}``
    (and ``'scaler'``, the loss scaler's state or ``None``, for checkpoints written by ``save_checkpoint``)."""
    path = checkpoint_file(path, must_exist=True)  # a run directory means its checkpoint.pdckpt
    if path.suffix == ".safetensors":
        return {"format": "safetensors", "model": _read_safetensors(path), "optimizer": None, "meta": {}}
    try:
        obj = safe_load(path)
    except CheckpointError:
        raise
    except Exception as e:  # truncated or foreign files fail in many ways
        raise CheckpointError(f"{path}: cannot be read as a Paddle checkpoint ({type(e).__name__}: {e}). "
                              "The file is corrupt or not a checkpoint; use another copy.") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict or checkpoint.")
    if obj.get("format") != FORMAT:
        obj = {"format": "state_dict", "model": obj, "optimizer": None, "meta": {}}
    # paddle.save adds this bookkeeping entry to state dicts; paddle.load drops it, so do we.
    obj["model"].pop("StructuredToParameterName@@", None)
    return obj


def _read_safetensors(path) -> dict:
    load_file = _safetensors_numpy().load_file

    try:
        return {k: paddle.to_tensor(v) for k, v in load_file(str(path)).items()}
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({e}); use another copy.") from None


def load_into(model, checkpoint: dict, optimizer=None) -> dict:
    """Load a checkpoint's weights (and optimizer state) after checking every name and shape.

    Raises ``CheckpointError`` listing missing, unexpected and mismatched parameters
    instead of Paddle's default of warning and silently skipping them.
    """
    model = unwrap(model)
    saved, expected = checkpoint["model"], model.state_dict()
    problems = [f"missing {k}" for k in expected if k not in saved]
    problems += [f"unexpected {k}" for k in saved if k not in expected]
    problems += [f"{k}: checkpoint {list(saved[k].shape)} vs model {list(v.shape)}"
                 for k, v in expected.items() if k in saved and list(saved[k].shape) != list(v.shape)]
    if problems:
        raise CheckpointError("checkpoint does not fit this model: " + "; ".join(problems)
                              + ". Load it into the network it was trained with.")
    model.set_state_dict(saved)
    if optimizer is not None and checkpoint.get("optimizer"):
        optimizer.set_state_dict(_rename_keys(checkpoint["optimizer"],
                                              {k: p.name for k, p in model.named_parameters()}))
    return checkpoint.get("meta", {})
