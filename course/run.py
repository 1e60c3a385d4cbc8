"""One complete run from a ``Config``: data, model, optimizer, callbacks, fit, test, outputs.

This is the main job (``python -m course train``) and the unit a sweep repeats. ``train_run``
is a short sequence of named steps, each usable on its own from a notebook::

    model = build_model(config)
    train_loader, val_loader, test_loader = build_loaders(config)
    optimizer, scheduler = build_optimizer(config, model, len(train_loader))
    callbacks = build_callbacks(config, is_main=True, run_dir=None, scheduler=scheduler)
    history = fit(model, train_loader, optimizer, config.num_epochs, val_loader=val_loader,
                  loss_fn=make_loss(config.loss), callbacks=callbacks)

The run directory's layout is ``course.rundir.RunDir``'s. ``train_run`` takes its device and
seed from the config and gives the caller's back afterwards (``device.preserve_global_state``).
In a multi-process job (``course.distributed``) every process runs ``train_run``; rank 0 alone
writes the directory.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import paddle

from . import distributed
from .amp import MixedPrecision, check_dtype
from .callbacks import Checkpoint, LRSchedule, NaNGuard, PrintMetrics, ProgressBar
from .checkpoint import atomic_save, load_checkpoint, load_into
from .config import Config
from .data import make_loader
from .device import describe, preserve_global_state, set_seed, use_device
from .history import History
from .init import apply_init
from .losses import make_loss
from .model import MNIST
from .optim import check_available, make_optimizer, make_scheduler
from .plots import plot, plot_history
from .rundir import CONFIG, ENVIRONMENT, RunDir
from .tensors import unwrap
from .train import evaluate, fit
from .visualdl_log import VisualDLLogger, visualdl_missing


def run_dir_name(config: Config) -> str:
    return config.run_name or RunDir.default_name(config.optimizer, config.lr, config.schedule,
                                                  config.batch_size)


def make_run_dir(config: Config) -> Path:
    """A new directory under ``config.out_dir``; never reuses an existing one (adds -2, -3 ...)."""
    return RunDir.create(config.out_dir, run_dir_name(config)).path


# --------------------------------------------------------------------------- the build steps
def build_model(config: Config) -> MNIST:
    """The course CNN with the config's variant (``batch_norm``) and initialization (``init``)."""
    return apply_init(MNIST(batch_norm=config.batch_norm), config.init)


def build_loaders(config: Config):
    """``train_loader, val_loader (or None), test_loader`` for a config.

    In a multi-process job each is this rank's shard (``course.distributed.shard``).
    """
    data = dict(data_dir=config.data_dir or None, normalize=config.normalize)
    train_loader = make_loader(config.train_split, config.batch_size, train=True, seed=config.seed,
                               subset=config.train_subset, **data)
    val_loader = (make_loader("val", config.eval_batch_size, subset=config.eval_subset, **data)
                  if config.train_split == "train50k" else None)
    test_loader = make_loader("test", config.eval_batch_size, subset=config.eval_subset, **data)
    shard = distributed.shard
    return shard(train_loader, train=True), shard(val_loader), shard(test_loader)


def build_optimizer(config: Config, model, steps_per_epoch: int):
    """``(optimizer, scheduler)``: the config's optimizer over ``model``'s parameters, and its LR
    scheduler (``None`` for a constant rate), to be stepped every batch (``LRSchedule``)."""
    lr = make_scheduler(config.schedule, config.lr, steps_per_epoch, config.num_epochs)
    optimizer = make_optimizer(config.optimizer, lr, model.parameters(), config.weight_decay, config.momentum,
                               config.regularizer)
    return optimizer, (None if isinstance(lr, float) else lr)


def build_callbacks(config: Config, is_main: bool = True, *, run_dir: RunDir | None = None,
                    scheduler=None) -> list:
    """The run's callbacks: ``History`` first, ``NaNGuard``, the LR schedule, mixed precision, the
    rank sync of a multi-process job; on the main process (``is_main``) also the ones that print
    (``PrintMetrics``, ``ProgressBar``) and, with a ``run_dir``, those that write (``Checkpoint``,
    ``VisualDLLogger``)."""
    callbacks = [History(config.log_every), NaNGuard()]
    if scheduler is not None:
        callbacks.append(LRSchedule(scheduler, every="batch"))
    if config.amp != "off":
        callbacks.append(MixedPrecision(config.amp))  # an unsupported dtype: ConfigError
    if distributed.get_world_size() > 1:
        callbacks.append(distributed.SyncMetrics())
    if is_main:  # the callbacks that print or write
        callbacks.append(PrintMetrics())
        if config.progress:
            callbacks.append(ProgressBar())
        if run_dir is not None:
            callbacks.append(Checkpoint(run_dir.checkpoint, {"config": config.to_dict()}))
            if config.visualdl:
                callbacks.append(VisualDLLogger(run_dir.visualdl, config=config.to_dict()))
    return callbacks


def resume_from(checkpoint: dict, model, optimizer, callbacks) -> tuple[int, int]:
    """Load a ``train_run`` checkpoint into the model, optimizer, history and loss scaler;
    returns ``(start_epoch, start_step)`` for ``fit``."""
    meta = load_into(model, checkpoint, optimizer)
    for callback in callbacks:
        if isinstance(callback, History):
            callback.set_state_dict(meta["history"])
        elif isinstance(callback, MixedPrecision):
            callback.set_state_dict(checkpoint.get("scaler"))
    return meta["epoch"], meta["step"]


def prepare_run_dir(config: Config, resume=None, run_dir=None, is_main: bool = True) -> RunDir | None:
    """The directory the run writes: the resumed run's, the given one, or a new one; ``None`` on the
    other ranks of a multi-process job (the rank-0 rule). Saves ``config.json`` into it."""
    if not is_main:
        return None
    run_dir = RunDir.of(resume) if resume is not None else RunDir(run_dir or make_run_dir(config))
    config.save(run_dir.config)
    return run_dir


# --------------------------------------------------------------------------- the job
def train_run(config: Config, resume: str | os.PathLike | None = None, extra_callbacks=(),
              run_dir: str | os.PathLike | None = None, verbose: bool = False) -> dict:
    """Train, evaluate on the test set and write a run directory; returns ``metrics.json``'s content.

    ``resume``: a run directory (or its checkpoint file) to continue in place;
    training goes on from the epoch after the last saved one.
    ``extra_callbacks``: added to the run's own (benchmarks and sweeps use this).
    ``run_dir``: an existing, empty directory to write into instead of a new one under
    ``config.out_dir`` (``python -m course train --nproc N`` makes it before it starts the job).
    ``verbose``: the run header also prints the whole config (JSON) and the environment line
    (CPU levers, threads, process advice); both are in the run directory either way
    (``config.json``, ``environment.txt``).

    The device and seeds come from ``config``; the caller's default device and global random
    generators are the same afterwards. Under ``paddle.distributed.launch`` every process runs
    this; only rank 0 writes (``course.distributed``) and ``run_dir`` is ``None`` in the others' results.
    """
    with preserve_global_state():
        return _train_run(config, resume, extra_callbacks, run_dir, verbose)


def _train_run(config, resume, extra_callbacks, run_dir, verbose=False) -> dict:
    started = time.perf_counter()
    device = use_device(distributed.rank_device(config.device))
    rank, world = distributed.init(device)
    main = distributed.is_main_process()
    if config.amp != "off":
        check_dtype(config.amp)  # before a run directory exists
    check_available(config.optimizer)  # radam on Paddle 2.6: ConfigError before anything is written
    checkpoint = load_checkpoint(resume) if resume is not None else None
    missing = visualdl_missing() if config.visualdl and main else None
    if missing:
        # Skipped with a warning rather than refused: VisualDL is on by default, and its logs are one
        # more view of numbers the run directory keeps anyway (metrics.csv, loss.png, curves.png), so
        # `python -m course train` in a Paddle + NumPy + matplotlib-only environment still trains.
        # config.json records what was done (visualdl false); the line says how to get the logs.
        print(missing[:-1] + "; the run's numbers are still in metrics.csv and its plots.")
        config = config.replace(visualdl=False)
    run_dir = prepare_run_dir(config, resume, run_dir, main)
    environment = describe(device) + (f" | rank {rank} of {world} processes" if world > 1 else "")
    if run_dir is not None:
        write_environment(run_dir, environment, resumed=resume is not None)
    if verbose:
        print(f"config: {json.dumps(config.to_dict())}")
        print(f"environment: {environment}")
    else:
        if world > 1:  # each rank's workerlog says which rank wrote it (notebooks/2.7 reads this line)
            print(f"environment: paddle {paddle.__version__} | device {device} | rank {rank} of {world} processes")
        # a broken installation is not a detail (course.device.describe)
        for warning in (part for part in environment.split(" | ") if part.startswith("WARNING")):
            print(warning)

    set_seed(config.seed)
    train_loader, val_loader, test_loader = build_loaders(config)
    print_header(config, device, (train_loader, val_loader, test_loader), run_dir, verbose)
    model = build_model(config)
    optimizer, scheduler = build_optimizer(config, model, len(train_loader))
    callbacks = build_callbacks(config, main, run_dir=run_dir, scheduler=scheduler) + list(extra_callbacks)
    start_epoch = start_step = 0
    if checkpoint is not None:  # every rank loads it: optimizer state is not broadcast
        start_epoch, start_step = resume_from(checkpoint, model, optimizer, callbacks)
        print(f"resuming {run_dir or resume} after epoch {start_epoch} (step {start_step})")
    model = distributed.wrap(model)  # paddle.DataParallel in a multi-process job

    loss_fn = make_loss(config.loss)
    history = fit(model, train_loader, optimizer, config.num_epochs, val_loader=val_loader, loss_fn=loss_fn,
                  callbacks=callbacks, start_epoch=start_epoch, start_step=start_step)
    test = distributed.reduce_metrics(evaluate(model, test_loader, loss_fn))

    results = {"run_dir": str(run_dir) if run_dir else None, "config": config.to_dict(), "device": device,
               "world_size": world, "paddle": paddle.__version__, "epochs": history.epochs,
               "losses": history.losses, "loss_steps": history.loss_steps, "log_every": history.log_every,
               "stop_reason": history.stop_reason, "diverged": history.diverged, "test": test,
               "wall_seconds": time.perf_counter() - started}
    if run_dir is not None:
        write_outputs(run_dir, model, history, results)
    report(results, history, run_dir)
    return results


def print_header(config: Config, device: str, loaders, run_dir: RunDir | None, verbose: bool) -> None:
    """The run header a student reads: what trains on what, where, and where the run goes.

    The details (every setting, CPU levers and threads, the advice on ``--nproc``) are in the
    run directory's ``config.json`` and ``environment.txt``, and printed with ``--verbose``.
    """
    sizes = [getattr(getattr(loader, "loader", loader), "num_samples", None) for loader in loaders]
    data = f"MNIST from {config.data_dir}" if config.data_dir else "MNIST (embedded)"
    parts = [f"train {sizes[0]:,} images ({config.train_split})"] + ([f"validation {sizes[1]:,}"] if sizes[1] else [])
    parts.append(f"test {sizes[2]:,}")
    print(f"device {device} | paddle {paddle.__version__} | python {platform.python_version()}")
    print(f"data: {data}: {', '.join(parts)}")
    print(f"training: {config.optimizer} lr {config.lr:g} ({config.schedule}), batch {config.batch_size}, "
          f"{config.num_epochs} epoch{'s' if config.num_epochs != 1 else ''}, seed {config.seed}")
    if run_dir is not None:
        print(f"run directory: {run_dir.path} (all settings: {CONFIG}; environment: {ENVIRONMENT})", flush=True)


def write_environment(run_dir: RunDir, environment: str, resumed: bool) -> None:
    """``environment.txt``: one block per start of the run (a resumed run appends), one item a line."""
    lines = [f"{time.strftime('%Y-%m-%d %H:%M:%S')} {'resumed' if resumed else 'started'}"]
    lines += [f"  {part}" for part in environment.split(" | ")]
    with open(run_dir.environment, "a" if resumed else "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def report(results: dict, history: History, run_dir: RunDir | None) -> None:
    """The run's last lines: why it stopped early (if it did), test loss and accuracy, wall time."""
    if history.stop_reason:
        print(f"stopped early: {history.stop_reason}")
        if history.diverged and run_dir is not None:
            saved = run_dir.checkpoint
            print("the model holds the parameters that produced the non-finite loss; "
                  + (f"{saved} holds the last finished epoch ({len(history.epochs)})" if saved.exists()
                     else "no epoch finished, so no checkpoint was written"))
    test = results["test"]
    print(f"test: loss {test['loss']:.4f} accuracy {test['acc']:.4f} ({test['n']} images)")
    print(f"wall time {results['wall_seconds']:.1f}s; run directory: {run_dir or '(written by rank 0)'}")


def write_outputs(run_dir: RunDir, model, history: History, results: dict) -> None:
    """The run directory's weights, metrics and plots (rank 0 only in a multi-process job)."""
    run_dir = RunDir(run_dir)
    atomic_save(unwrap(model).state_dict(), run_dir.weights)
    run_dir.write_metrics(results)
    history.save_csv(run_dir.metrics_csv)
    if history.losses:
        # the course's plot() labels its x-axis 'freq' (it plots a list); here the points are known steps
        plot(history.losses, path=run_dir.loss_plot, label=f"train loss (mean of {history.log_every} batches)",
             xlabel=f"logged point (one every {history.log_every} batches)")
    if history.epochs:
        plot_history(history, path=run_dir.curves_plot)


def model_from_checkpoint(checkpoint: dict):
    """``(model, config)``: an ``MNIST`` built the way the checkpoint's run was trained, weights loaded.

    A checkpoint written by ``train_run`` carries its run's settings (BatchNorm, raw
    inputs, loss); for a bare ``.pdparams`` the defaults are assumed, except that
    ``bn1`` parameters mean the BatchNorm variant.
    """
    saved = (checkpoint.get("meta") or {}).get("config") or {}
    config = Config().replace(**{k: v for k, v in saved.items() if k in ("batch_norm", "normalize", "loss")})
    if not config.batch_norm and any(k.startswith("bn1.") for k in checkpoint["model"]):
        config = config.replace(batch_norm=True)
    model = MNIST(batch_norm=config.batch_norm)
    load_into(model, checkpoint)
    return model, config


def evaluate_checkpoint(path, split: str = "test", batch_size: int = 1000, data_dir=None,
                        device: str = "auto", subset: int = 0) -> dict:
    """Load a checkpoint (or a bare ``.pdparams``) into ``MNIST`` and evaluate it on ``split``,
    with the inputs and loss its run was trained with (``model_from_checkpoint``).
    The caller's default device is the same afterwards."""
    with preserve_global_state():
        use_device(device)
        model, config = model_from_checkpoint(load_checkpoint(path))
        loader = make_loader(split, batch_size, train=False, subset=subset, data_dir=data_dir,
                             normalize=config.normalize)
        metrics = evaluate(model, loader, make_loss(config.loss))
    print(f"{split}: loss {metrics['loss']:.4f} accuracy {metrics['acc']:.4f} ({metrics['n']} images)")
    return metrics

