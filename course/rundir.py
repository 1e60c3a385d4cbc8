"""``RunDir``: the one place that knows a run directory's layout.

A run directory (written by ``course.run.train_run``, one per run, a sweep's runs inside
the sweep directory) holds::

    config.json        the resolved settings
    environment.txt    Paddle, device, CPU levers, threads, Python: one block per start (resume appends)
    checkpoint.pdckpt  model + optimizer + history after the last finished epoch (resume from it)
    mnist.pdparams     the trained weights, loadable the lesson's way (model.load_dict(paddle.load(...)))
    metrics.json       per-epoch metrics, the logged losses, test loss / accuracy, wall time, environment
    metrics.csv        per-epoch metrics as a table
    loss.png           the course's loss curve; curves.png: loss and accuracy per epoch
    vdl/               VisualDL logs (python -m course dashboard --logdir runs)
    logs/              with ``--nproc N``: each process's output, workerlog.<rank> (paddle.distributed.launch)

``python -m course lr-find`` writes a directory of its own the same way, holding
``lr_finder.png`` (the plot) and ``lr_finder.json`` (settings, suggestion, the curve).

Commands take "a run directory or a file in it" (``--resume``, ``--checkpoint``):
``RunDir.of(path)`` is the directory either way, ``checkpoint_file(path)`` the checkpoint
(the path itself when it is a file: a ``.pdckpt``, ``.pdparams`` or ``.safetensors``).
No Paddle here: only paths and JSON.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .errors import CheckpointError

CONFIG, CHECKPOINT, WEIGHTS = "config.json", "checkpoint.pdckpt", "mnist.pdparams"
METRICS, METRICS_CSV, LOSS_PLOT, CURVES_PLOT = "metrics.json", "metrics.csv", "loss.png", "curves.png"
VISUALDL, LOGS, ENVIRONMENT = "vdl", "logs", "environment.txt"
LR_FINDER_PLOT, LR_FINDER_JSON = "lr_finder.png", "lr_finder.json"


def checkpoint_file(path: str | os.PathLike, must_exist: bool = False) -> Path:
    """``path/checkpoint.pdckpt`` for a run directory, ``path`` itself for a file.
    ``must_exist=True``: a ``CheckpointError`` naming the fix when there is no such file."""
    path = Path(path)
    found = path / CHECKPOINT if path.is_dir() else path
    if must_exist and not found.is_file():
        raise CheckpointError(f"checkpoint {str(found)!r} not found. Pass a run directory or a "
                              ".pdckpt / .pdparams file written by this package or by paddle.save.")
    return found


class RunDir:
    """Paths of one run directory: ``RunDir("runs/x").checkpoint`` is ``runs/x/checkpoint.pdckpt``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def of(cls, run_dir_or_file: str | os.PathLike) -> "RunDir":
        """The run directory of ``run_dir_or_file``: itself, or the directory of a file in it."""
        path = Path(run_dir_or_file)
        return cls(path if path.is_dir() else path.parent)

    @classmethod
    def create(cls, parent: str | os.PathLike, name: str) -> "RunDir":
        """A new directory ``parent/name``; never reuses an existing one (adds -2, -3 ...)."""
        parent = Path(parent)
        parent.mkdir(parents=True, exist_ok=True)
        for suffix in range(1, 10_000):
            candidate = parent / (name if suffix == 1 else f"{name}-{suffix}")
            try:
                candidate.mkdir()  # atomic: two runs started in the same second get different directories
                return cls(candidate)
            except FileExistsError:
                continue
        raise RuntimeError(f"could not create a fresh run directory under {parent}")

    @staticmethod
    def default_name(optimizer: str, lr: float, schedule: str, batch_size: int) -> str:
        """``<YYYYmmdd-HHMMSS>-adam-lr0.008-onecycle-bs64``: when and what."""
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{optimizer}-lr{lr:g}-{schedule}-bs{batch_size}"

    # ------------------------------------------------------------------ the files
    config = property(lambda self: self.path / CONFIG)
    checkpoint = property(lambda self: self.path / CHECKPOINT)
    weights = property(lambda self: self.path / WEIGHTS)
    metrics = property(lambda self: self.path / METRICS)
    metrics_csv = property(lambda self: self.path / METRICS_CSV)
    loss_plot = property(lambda self: self.path / LOSS_PLOT)
    curves_plot = property(lambda self: self.path / CURVES_PLOT)
    visualdl = property(lambda self: self.path / VISUALDL)
    logs = property(lambda self: self.path / LOGS)
    environment = property(lambda self: self.path / ENVIRONMENT)
    lr_finder_plot = property(lambda self: self.path / LR_FINDER_PLOT)
    lr_finder_json = property(lambda self: self.path / LR_FINDER_JSON)

    @property
    def name(self) -> str:
        return self.path.name

    def finished(self) -> bool:
        """True once the run wrote its results (``metrics.json`` is written last)."""
        return self.metrics.exists()

    def read_metrics(self) -> dict | None:
        """``metrics.json``'s content, or None if the run has not finished."""
        return json.loads(self.metrics.read_text(encoding="utf-8")) if self.finished() else None

    def write_metrics(self, results: dict) -> None:
        with open(self.metrics, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)
