"""Companion library of the PaddlePaddle handwritten-digit (MNIST) course.

The from-scratch optimizers stay in their own namespace (``from course.scratch import
Adam``) so they are never mistaken for ``paddle.optimizer``'s.

Importing the package sets one environment variable for the whole process when it helps
(``MKL_DEBUG_CPU_TYPE=5`` on AMD CPUs, before Paddle loads; ``COURSE_CPU_LEVERS=0`` prevents it):
see ``course.cpu``.

Public names are imported lazily (PEP 562) so that ``python -m course --help``
and bad command lines answer without first loading Paddle (a few seconds).
"""
import importlib
import warnings
import zlib  # noqa: F401  before Paddle: Paddle 2.6 bundles a zlib that crashes gzip if loaded first (course.compat)

from .compat import check_startup

check_startup()  # a Paddle older than 2.6, or Paddle 2.6 imported before zlib: one line, not a segfault

from . import cpu as _cpu  # noqa: E402  (after the start-up check above)

# The one process-wide side effect of `import course`: put MKL_DEBUG_CPU_TYPE=5 in os.environ on
# an AMD CPU with Paddle's CPU wheel, before Paddle (and its bundled MKL 2019) is loaded, unless the
# user set it or turned the lever off (COURSE_CPU_LEVERS=0). Why and when: course/cpu.py.
_cpu.remember_mkl_status(_cpu.set_mkl_env())

__version__ = "0.1.0"

# The package's layers, top row first. A module imports only from its own row (where no cycle forms)
# and from the rows below, imports inside functions included; a subpackage's modules are named with a
# dot ("homework.answers"; "homework" is its __init__.py). A new or moved module gets its place here:
# tests/test_import_layers.py checks every module of course/ against this table, and
# docs/modules.md shows it.
LAYERS = (
    ("entry points and homework", ("__init__", "__main__", "cli", "sweep", "dashboard", "worker", "export",
                                   "homework", "homework.grade", "homework.runner", "homework.sandbox",
                                   "homework.variants", "homework.hw2_3", "homework.hw2_8")),
    ("one complete job from a Config", ("run",)),
    ("callbacks and processes", ("callbacks", "visualdl_log", "amp", "distributed", "lr_finder",
                                 "live", "diagnose")),   # diagnose evaluates the final weights (train.evaluate)
    ("the loop: fit / train_one_epoch / evaluate", ("train",)),
    ("History, the one record fit keeps", ("history",)),
    ("the callback protocol", ("events",)),
    ("building blocks", ("data", "model", "optim", "init", "losses", "metrics", "hooks", "checkpoint", "device",
                         "plots", "scratch", "trajectories", "tensors", "rundir",
                         "homework.answers", "homework.kernel")),
    ("the CPU levers: the switch, the faster conv path", ("cpu", "fast_conv")),  # below model: it only calls them
    ("settings, errors, the installed Paddle, recorded results", ("config", "errors", "compat", "results")),
)

_EXPORTS = {
    # data
    "get_MNIST_dataloader": "data", "make_loader": "data", "load_mnist": "data",
    "read_idx": "data", "MNISTLoader": "data",
    # model
    "MNIST": "model",
    # look inside: shape / content reports through forward hooks
    "LayerRecord": "hooks", "ForwardRecorder": "hooks", "layer_report": "hooks",
    "format_report": "hooks", "find_dead_units": "hooks", "first_nonfinite_layer": "hooks",
    # loop and callbacks
    "fit": "train", "train_one_epoch": "train", "evaluate": "train", "Callback": "events",
    "StopTraining": "events", "Diverged": "events", "TrainState": "events", "EVENTS": "events",
    "History": "history", "ProgressBar": "callbacks", "PrintMetrics": "callbacks",
    "LRSchedule": "callbacks", "Checkpoint": "callbacks", "NaNGuard": "callbacks",
    "EarlyStopping": "callbacks", "BestCheckpoint": "callbacks", "GradientClip": "callbacks",
    "LivePlot": "live",
    "VisualDLLogger": "visualdl_log", "start_dashboard": "dashboard", "DashboardError": "dashboard",
    # optimizers, checkpoints, device
    "make_optimizer": "optim", "make_scheduler": "optim",
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "load_into": "checkpoint",
    "save_safetensors": "checkpoint",
    "choose_device": "device", "use_device": "device", "set_seed": "device",
    # config and runs
    "Config": "config", "resolve_config": "config", "is_smoke": "config",
    "train_run": "run", "evaluate_checkpoint": "run", "model_from_checkpoint": "run",
    "MixedPrecision": "amp", "SameStart": "init",
    # losses, diagnosis
    "make_loss": "losses", "fitting_verdict": "diagnose", "FittingVerdict": "diagnose",
    "TrainSetEval": "diagnose", "measured_noise": "diagnose",
    # plots
    "plot": "plots", "plot_history": "plots",
    # metrics
    "accuracy": "metrics", "top_k_accuracy": "metrics", "RunningMean": "metrics",
    "confusion_matrix": "metrics", "most_confused_pair": "metrics", "predict_all": "metrics",
    "paddle_accuracy_stream": "metrics", "mean_of_batch_accuracies": "metrics",
    "plot_confusion_matrix": "metrics",
    "plot_trajectories": "trajectories", "plot_learning_rates": "trajectories",
    # errors
    "CourseError": "errors", "DataError": "errors", "ConfigError": "errors", "CheckpointError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        # The first public name loads Paddle, which warns on import that it found no ccache (used
        # only to compile custom C++ operators, which this course never does). The filter is scoped
        # to this import: the caller's warning filters are left as they were.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No ccache found")
            module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value  # cache: later lookups skip this function
        return value
    raise AttributeError(f"module 'course' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
