"""One frozen dataclass of run settings, smoke mode, and (de)serialization.

The CLI's flags are generated from these fields (``course.cli``), a sweep is a
list of ``dataclasses.replace`` overrides, and every run saves its resolved
config as ``config.json`` beside its logs and checkpoints.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field, fields

from .errors import ConfigError

SMOKE_ENV = "COURSE_SMOKE"
SMOKE_TRAIN_SUBSET = 2000
SMOKE_EVAL_SUBSET = 1000

OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw", "radam")
SCHEDULES = ("constant", "onecycle", "cosine", "step", "inverse_time", "exponential", "warmup")
TRAIN_SPLITS = ("train50k", "train")
LOSSES = ("cross_entropy", "mse")
REGULARIZERS = ("l2", "l1")
AMP_MODES = ("off", "float16", "bfloat16")
# course.init.INITIALIZERS implements these (kept here so that config never imports Paddle).
INITS = ("default", "constant", "normal", "uniform", "truncated_normal", "xavier_normal",
         "xavier_uniform", "kaiming_normal", "kaiming_uniform")


def is_smoke() -> bool:
    """True when ``COURSE_SMOKE`` is set to a true value (1, true, yes)."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _opt(default, help, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class Config:
    """Settings of one training run. Defaults are the recommended settings for the course CNN.

    Adam with a one-cycle schedule peaking at 0.012, batch 64, 2 epochs: chosen on the validation
    set among peak lr 0.003 / 0.005 / 0.008 / 0.012 x batch 32 / 64 / 128 at 2 epochs (docs/main-job.md),
    measured over 3 seeds by bench/time_to_accuracy.py. (It was peak 0.008 for 3 epochs,
    docs/sweeps/recommended-settings.)
    """

    optimizer: str = _opt("adam", "optimizer", choices=OPTIMIZERS)
    lr: float = _opt(0.012, "learning rate (the peak rate for the onecycle schedule)")
    schedule: str = _opt("onecycle", "learning-rate schedule, stepped every batch", choices=SCHEDULES)
    batch_size: int = _opt(64, "images per training batch")
    num_epochs: int = _opt(2, "passes over the training split")
    momentum: float = _opt(0.9, "momentum coefficient (optimizer=momentum only)")
    weight_decay: float = _opt(0.0, "coefficient of the weight penalty on all parameters (0 = off)")
    regularizer: str = _opt("l2", "the penalty weight_decay scales: l2 (L2Decay; decoupled for adamw) "
                                  "or l1 (L1Decay)", choices=REGULARIZERS)
    loss: str = _opt("cross_entropy", "training loss: cross_entropy, or mse (squared error of the "
                                      "softmax against one-hot labels)", choices=LOSSES)
    batch_norm: bool = _opt(False, "add BatchNorm after each convolution (an ablation; not the course's network)")
    normalize: bool = _opt(True, "scale pixels to [-1, 1] as the course does ((x - 127.5) / 127.5); "
                                 "--no-normalize feeds raw 0-255 pixels (an ablation)")
    init: str = _opt("default", "weight initialization of conv and fc layers (default: Paddle's own: "
                                "conv Normal(0, sqrt(2/fan_in)), fc Xavier uniform; biases 0)", choices=INITS)
    seed: int = _opt(0, "seed for parameter initialization and shuffling")
    train_split: str = _opt("train50k", "train50k: train on the first 50k and validate on the last 10k; "
                                        "train: all 60k, no validation", choices=TRAIN_SPLITS)
    train_subset: int = _opt(0, "keep only the first N training images (0 = all)")
    eval_subset: int = _opt(0, "keep only the first N validation and test images (0 = all)")
    eval_batch_size: int = _opt(1000, "images per evaluation batch (no gradients, so larger is fine)")
    data_dir: str = _opt("", "directory with the four MNIST IDX files (.gz or raw); empty = embedded copy")
    device: str = _opt("auto", "auto, cpu, gpu or gpu:N")
    amp: str = _opt("off", "mixed precision (paddle.amp, O1): float16 with a loss scaler, or bfloat16; "
                           "GPU only (Paddle's autocast does nothing on the CPU)", choices=AMP_MODES)
    out_dir: str = _opt("runs", "parent directory of run directories")
    run_name: str = _opt("", "name of the run directory (default: time stamp and settings)")
    log_every: int = _opt(200, "record the mean training loss every N batches (the course uses 200)")
    visualdl: bool = _opt(True, "write VisualDL logs into the run directory (skipped, in one line "
                                  "naming pip install visualdl, when it is not installed)")
    progress: bool = _opt(True, "show progress bars")

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            # bool is a subclass of int: accept only the exact declared kind.
            ok = (isinstance(value, bool) if f.type == "bool"
                  else isinstance(value, (int, float)) and not isinstance(value, bool) if f.type == "float"
                  else isinstance(value, int) and not isinstance(value, bool) if f.type == "int"
                  else isinstance(value, str))
            if not ok:
                raise ConfigError(f"{f.name} must be of type {f.type}, got {value!r} ({type(value).__name__}).")
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise ConfigError(f"{f.name}={value!r} is not one of: {', '.join(choices)}.")
        positive = {"lr": self.lr, "batch_size": self.batch_size, "num_epochs": self.num_epochs,
                    "eval_batch_size": self.eval_batch_size, "log_every": self.log_every}
        for name, value in positive.items():
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive number, got {value!r}.")
        for name in ("weight_decay", "momentum", "train_subset", "eval_subset"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be zero or positive, got {getattr(self, name)!r}.")
        if not self.momentum < 1:
            raise ConfigError(f"momentum must be below 1 (the velocity would grow without bound), got {self.momentum!r}.")
        if not re.fullmatch(r"auto|cpu|gpu(:\d+)?", self.device):
            raise ConfigError(f"device={self.device!r} is not one of: auto, cpu, gpu, gpu:N.")

    # ----------------------------------------------------------------- helpers
    def replace(self, **overrides) -> "Config":
        unknown = sorted(set(overrides) - set(field_names()))
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(field_names())}.")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")

    @classmethod
    def load(cls, path) -> "Config":
        """Read a ``config.json``; any problem is a ``ConfigError`` naming the file."""
        try:
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read run settings from {path} ({e}); pass a run directory "
                              "written by `python -m course train`.") from None
        if not isinstance(saved, dict):
            raise ConfigError(f"{path} does not hold a settings object.")
        return cls().replace(**saved)


def field_names() -> list[str]:
    return [f.name for f in fields(Config)]


def field_types() -> dict[str, str]:
    """``{field name: "int" | "float" | "str" | "bool"}`` (the annotations, as strings)."""
    return {f.name: f.type for f in fields(Config)}


def smoke_overrides() -> dict:
    """What ``COURSE_SMOKE=1`` changes: a small slice, one epoch, a loss point every 10 batches."""
    return {"train_subset": SMOKE_TRAIN_SUBSET, "eval_subset": SMOKE_EVAL_SUBSET, "num_epochs": 1,
            "log_every": 10}


def resolve_config(**overrides) -> Config:
    """Defaults, then smoke mode (if ``COURSE_SMOKE`` is set), then explicit overrides.

    For entry points (the CLI, benchmarks, a notebook's settings cell): with ``is_smoke`` the only
    readers of ``COURSE_SMOKE``; library functions take smoke mode as an argument or a config."""
    base = smoke_overrides() if is_smoke() else {}
    return Config().replace(**{**base, **overrides})
