"""Checkpoints: atomic save, checked load, resume.

A checkpoint is one file holding ``{'format', 'model', 'optimizer', 'meta'}``
written with ``paddle.save``. It is first written to a temporary file in the
same directory, flushed to disk, then moved over the target with
``os.replace`` (atomic on POSIX and Windows), so a crash or ``kill -9`` during
the write leaves either the old file or the new one, never half a file.

``load_checkpoint`` also accepts a bare ``model.state_dict()`` saved the
lesson's way (``paddle.save(model.state_dict(), 'mnist.pdparams')``).

Note: ``.pdparams`` files are Python pickles; load only files you trust.
"""
from __future__ import annotations

import os
from pathlib import Path

import paddle

from .errors import CheckpointError

FORMAT = "course-checkpoint-v1"


def atomic_save(obj, path) -> Path:
    """``paddle.save(obj, path)`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        paddle.save(obj, str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
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


def save_checkpoint(path, model, optimizer=None, **meta) -> Path:
    """Save model and optimizer state (the optimizer's includes its LR scheduler) plus ``meta``."""
    return atomic_save({"format": FORMAT, "model": model.state_dict(),
                        "optimizer": portable_optimizer_state(model, optimizer) if optimizer is not None else None,
                        "meta": meta}, path)


def load_checkpoint(path) -> dict:
    """Read a checkpoint (or a bare state dict) into ``{'model', 'optimizer', 'meta'}``."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pdckpt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} not found. Pass a run directory or a "
                              ".pdckpt / .pdparams file written by this package or by paddle.save.")
    try:
        obj = paddle.load(str(path))
    except Exception as e:  # paddle raises many types for unreadable files
        raise CheckpointError(f"{path}: cannot be read as a Paddle checkpoint ({type(e).__name__}: {e}). "
                              "The file is corrupt or not a checkpoint; use another copy.") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict or checkpoint.")
    if obj.get("format") == FORMAT:
        return obj
    return {"format": "state_dict", "model": obj, "optimizer": None, "meta": {}}


def load_into(model, checkpoint: dict, optimizer=None) -> dict:
    """Load a checkpoint's weights (and optimizer state) after checking every name and shape.

    Raises ``CheckpointError`` listing missing, unexpected and mismatched parameters
    instead of Paddle's default of warning and silently skipping them.
    """
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
