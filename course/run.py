"""One complete run from a ``Config``: data, model, optimizer, callbacks, fit, test, outputs.

This is the main job (``python -m course train``) and the unit a sweep repeats.
A run directory holds::

    config.json        the resolved settings
    checkpoint.pdckpt  model + optimizer + history after the last finished epoch (resume from it)
    mnist.pdparams     the trained weights, loadable the lesson's way (model.load_dict(paddle.load(...)))
    metrics.json       per-epoch metrics, the logged losses, test loss / accuracy, wall time, environment
    metrics.csv        per-epoch metrics as a table
    loss.png           the course's loss curve; curves.png: loss and accuracy per epoch
    vdl/               VisualDL logs (visualdl --logdir runs)
    logs/              with ``--nproc N``: each process's output, workerlog.<rank> (paddle.distributed.launch)

In a multi-process job (``course.distributed``) every process runs ``train_run``; rank 0 alone
writes the directory.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import paddle

from . import distributed
from .amp import MixedPrecision
from .callbacks import Checkpoint, History, LRSchedule, NaNGuard, PrintMetrics, ProgressBar
from .checkpoint import atomic_save, load_checkpoint, load_into
from .config import Config
from .data import make_loader
from .device import describe, set_seed, use_device
from .init import apply_init
from .losses import make_loss
from .model import MNIST
from .optim import check_available, make_optimizer, make_scheduler
from .plots import plot, plot_history
from .train import evaluate, fit


def run_dir_name(config: Config) -> str:
    if config.run_name:
        return config.run_name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{config.optimizer}-lr{config.lr:g}-{config.schedule}-bs{config.batch_size}"


def make_run_dir(config: Config) -> Path:
    """A new directory under ``config.out_dir``; never reuses an existing one (adds -2, -3 ...)."""
    parent = Path(config.out_dir)
    parent.mkdir(parents=True, exist_ok=True)
    base = run_dir_name(config)
    for suffix in range(1, 10_000):
        candidate = parent / (base if suffix == 1 else f"{base}-{suffix}")
        try:
            candidate.mkdir()  # atomic: two runs started in the same second get different directories
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a fresh run directory under {parent}")


def build_loaders(config: Config):
    """``train_loader, val_loader (or None), test_loader`` for a config.

    In a multi-process job each is this rank's shard (``course.distributed.shard``).
    """
    data = dict(data_dir=config.data_dir or None, normalized=config.normalize)
    train_loader = make_loader(config.train_split, config.batch_size, train=True, seed=config.seed,
                               subset=config.train_subset, **data)
    val_loader = (make_loader("val", config.eval_batch_size, subset=config.eval_subset, **data)
                  if config.train_split == "train50k" else None)
    test_loader = make_loader("test", config.eval_batch_size, subset=config.eval_subset, **data)
    shard = distributed.shard
    return shard(train_loader, train=True), shard(val_loader), shard(test_loader)


def train_run(config: Config, resume: str | os.PathLike | None = None, extra_callbacks=(),
              run_dir: str | os.PathLike | None = None) -> dict:
    """Train, evaluate on the test set and write a run directory; returns ``metrics.json``'s content.

    ``resume``: a run directory (or its checkpoint file) to continue in place;
    training goes on from the epoch after the last saved one.
    ``extra_callbacks``: added to the run's own (benchmarks and sweeps use this).
    ``run_dir``: an existing, empty directory to write into instead of a new one under
    ``config.out_dir`` (``python -m course train --nproc N`` makes it before it starts the job).

    Under ``paddle.distributed.launch`` every process runs this; only rank 0 writes
    (``course.distributed``) and ``run_dir`` is ``None`` in the others' results.
    """
    started = time.perf_counter()
    device = use_device(distributed.rank_device(config.device))
    rank, world = distributed.init(device)
    main = distributed.is_main_process()
    amp = MixedPrecision(config.amp) if config.amp != "off" else None  # an unsupported dtype: ConfigError
    check_available(config.optimizer)  # radam on Paddle 2.6: ConfigError before anything is written
    checkpoint = load_checkpoint(resume) if resume is not None else None
    if resume is not None:
        run_dir = Path(resume) if Path(resume).is_dir() else Path(resume).parent
    elif run_dir is not None:
        run_dir = Path(run_dir)
    elif main:
        run_dir = make_run_dir(config)
    if main:
        config.save(run_dir / "config.json")
    else:
        run_dir = None  # the rank-0 rule: the other processes write nothing
    print(f"config: {json.dumps(config.to_dict())}")
    print(f"environment: {describe(device)}" + (f" | rank {rank} of {world} processes" if world > 1 else ""))

    set_seed(config.seed)
    train_loader, val_loader, test_loader = build_loaders(config)
    model = apply_init(MNIST(batch_norm=config.batch_norm), config.init)
    loss_fn = make_loss(config.loss)
    lr = make_scheduler(config.schedule, config.lr, len(train_loader), config.num_epochs)
    optimizer = make_optimizer(config.optimizer, lr, model.parameters(), config.weight_decay, config.momentum,
                               config.regularizer)
    history = History(config.log_every)
    callbacks = [history, NaNGuard()]
    if not isinstance(lr, float):
        callbacks.append(LRSchedule(lr, every="batch"))
    if amp is not None:
        callbacks.append(amp)
    if world > 1:
        callbacks.append(distributed.SyncMetrics())
    if main:  # the callbacks that print or write
        callbacks += [PrintMetrics(), Checkpoint(run_dir / "checkpoint.pdckpt", {"config": config.to_dict()})]
        if config.progress:
            callbacks.append(ProgressBar())
        if config.visualdl:
            from .visualdl_log import VisualDLLogger
            callbacks.append(VisualDLLogger(run_dir / "vdl", config=config.to_dict()))
    callbacks += list(extra_callbacks)

    start_epoch = start_step = 0
    if checkpoint is not None:  # every rank loads it: optimizer state is not broadcast
        meta = load_into(model, checkpoint, optimizer)
        if amp is not None:
            amp.set_state_dict(checkpoint.get("scaler"))
        history.set_state_dict(meta["history"])
        start_epoch, start_step = meta["epoch"], meta["step"]
        print(f"resuming {run_dir or resume} after epoch {start_epoch} (step {start_step})")
    model = distributed.wrap(model)  # paddle.DataParallel in a multi-process job

    fit(model, train_loader, optimizer, config.num_epochs, val_loader=val_loader, loss_fn=loss_fn,
        callbacks=callbacks, start_epoch=start_epoch, start_step=start_step)
    test = distributed.reduce_metrics(evaluate(model, test_loader, loss_fn))

    results = {"run_dir": str(run_dir) if run_dir else None, "config": config.to_dict(), "device": device,
               "world_size": world, "paddle": paddle.__version__, "epochs": history.epochs,
               "losses": history.losses, "loss_steps": history.loss_steps, "log_every": history.log_every,
               "stop_reason": history.stop_reason, "diverged": history.diverged, "test": test,
               "wall_seconds": time.perf_counter() - started}
    if main:
        write_outputs(run_dir, model, history, results)
    if history.stop_reason:
        print(f"stopped early: {history.stop_reason}")
        if history.diverged and main:
            saved = run_dir / "checkpoint.pdckpt"
            print("the model holds the parameters that produced the non-finite loss; "
                  + (f"{saved} holds the last finished epoch ({len(history.epochs)})" if saved.exists()
                     else "no epoch finished, so no checkpoint was written"))
    print(f"test: loss {test['loss']:.4f} accuracy {test['acc']:.4f} ({test['n']} images)")
    print(f"wall time {results['wall_seconds']:.1f}s; run directory: {run_dir or '(written by rank 0)'}")
    return results


def write_outputs(run_dir: Path, model, history: History, results: dict) -> None:
    """The run directory's weights, metrics and plots (rank 0 only in a multi-process job)."""
    atomic_save(distributed.unwrap(model).state_dict(), run_dir / "mnist.pdparams")
    with open(run_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    history.save_csv(run_dir / "metrics.csv")
    if history.losses:
        plot(history.losses, path=run_dir / "loss.png")
    if history.epochs:
        plot_history(history, path=run_dir / "curves.png")


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
    with the inputs and loss its run was trained with (``model_from_checkpoint``)."""
    use_device(device)
    model, config = model_from_checkpoint(load_checkpoint(path))
    loader = make_loader(split, batch_size, train=False, subset=subset, data_dir=data_dir,
                         normalized=config.normalize)
    metrics = evaluate(model, loader, make_loss(config.loss))
    print(f"{split}: loss {metrics['loss']:.4f} accuracy {metrics['acc']:.4f} ({metrics['n']} images)")
    return metrics

