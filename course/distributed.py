"""Data-parallel training with Paddle's own engine: ``paddle.distributed.launch`` + ``paddle.DataParallel``.

Start it with ``python -m course train --nproc 2`` or the launch line it runs::

    python -m paddle.distributed.launch --nproc_per_node 2 --log_dir runs/logs course/worker.py train [flags]

The launcher starts one process per rank (CPU processes talking over gloo on a machine
without a GPU, one process per GPU over NCCL elsewhere) and writes each rank's output
to ``<log_dir>/workerlog.<rank>``. In every process the same program runs; what
differs is decided here, and ``fit`` itself is unchanged:

* ``shard(loader)``: every global batch (``batch_size`` rows, the same shuffled order on
  every rank, because ``MNISTLoader`` draws it from ``(seed, epoch)``) is cut into
  ``world`` contiguous pieces; rank ``r`` trains on piece ``r``. One process with batch 64
  and two with 32 rows each see the same 64 images per step.
* ``wrap(model)``: ``paddle.DataParallel`` copies rank 0's parameters to every rank and,
  during ``backward``, averages the gradients over the ranks, so every rank takes the same
  step as one process on the whole batch (up to float32 summation order).
* ``SyncMetrics``: the loss every callback sees is the mean over the whole global batch,
  and each epoch's train / validation sums (loss, correct, seen) are added over the ranks,
  so every rank holds the same numbers and takes the same decisions (a NaN stop, early
  stopping). Validation and test are sharded too and all-reduced: each rank evaluates
  ``1/world`` of the split; the result is that of the whole split.
* The rank-0 rule: only rank 0 writes (run directory, checkpoints, plots, metrics.json,
  VisualDL, progress bars, epoch lines): ``main_process_only(callbacks)``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import paddle

from .device import gpu_count
from .errors import ConfigError
from .events import ORDER, Callback

WORKER = Path(__file__).resolve().parent / "worker.py"  # the script every launched process runs


# --------------------------------------------------------------------------- who am I
def get_rank() -> int:
    """This process's rank (0 outside the launcher). Read from the launcher's environment."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def get_world_size() -> int:
    """Number of processes in the job (1 outside the launcher)."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def is_main_process() -> bool:
    """True on rank 0, the one process that writes files and prints progress."""
    return get_rank() == 0


def main_process_only(callbacks) -> list:
    """``callbacks`` on rank 0, ``[]`` on the other ranks: the rank-0 rule for writers."""
    return list(callbacks) if is_main_process() else []


def rank_device(spec: str = "auto") -> str:
    """The device spec this process should use: under the launcher on GPUs, the GPU it was given.

    The launcher hands each rank one GPU (``FLAGS_selected_gpus``); ``auto`` / ``gpu`` then mean
    that GPU, not ``gpu:0`` for everyone. A CPU job (``cpu``, or ``auto`` without a GPU) is unchanged.
    """
    if get_world_size() == 1 or spec == "cpu":
        return spec
    if spec.startswith("gpu:"):
        raise ConfigError(f"device={spec!r}: under paddle.distributed.launch each process uses the GPU the "
                          "launcher gives it (choose them with its --devices); use --device auto or gpu.")
    if not gpu_count():
        return spec  # auto -> cpu; 'gpu' -> choose_device's error saying what was found
    return f"gpu:{paddle.distributed.ParallelEnv().device_id}"


def init(device: str = "cpu") -> tuple[int, int]:
    """Join the job started by the launcher (a no-op in a single process); returns ``(rank, world)``.

    CPU processes talk over gloo; GPUs over NCCL (Paddle's default for a CUDA build).
    """
    world = get_world_size()
    if world > 1 and not paddle.distributed.is_initialized():
        if device == "cpu":
            # The launcher already asks for gloo when it finds no GPU; say it also for a CPU
            # job on a GPU machine, where Paddle would otherwise pick NCCL.
            os.environ["PADDLE_DISTRI_BACKEND"] = "gloo"
        paddle.distributed.init_parallel_env()
    return get_rank(), world


# --------------------------------------------------------------------------- model and data
def wrap(model: paddle.nn.Layer) -> paddle.nn.Layer:
    """``paddle.DataParallel(model)`` in a multi-process job, ``model`` itself otherwise.

    The wrapper broadcasts rank 0's parameters when it is built and averages gradients
    over the ranks in ``backward``; ``state_dict()`` keys are the model's own.
    """
    return paddle.DataParallel(model) if get_world_size() > 1 else model


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of ``n`` that ``rank`` takes: contiguous pieces, sizes differ by at most one."""
    return rank * n // world, (rank + 1) * n // world


class ShardedLoader:
    """This rank's piece of every batch of ``loader``: rows ``shard_bounds(len(batch), rank, world)``.

    ``len``, ``set_epoch`` and the shuffled order are the wrapped loader's, so every rank
    walks the same global batches. Empty pieces (a last batch shorter than ``world``) are
    skipped. ``for X, y in loader`` and ``loader()`` both work, as for ``MNISTLoader``.
    """

    def __init__(self, loader, rank: int, world: int):
        self.loader, self.rank, self.world = loader, rank, world

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def __iter__(self):
        for X, y in self.loader:
            lo, hi = shard_bounds(X.shape[0], self.rank, self.world)
            if hi > lo:
                yield X[lo:hi], y[lo:hi]

    def __call__(self):
        return iter(self)

    def __repr__(self) -> str:
        return f"ShardedLoader(rank={self.rank}, world={self.world}, loader={self.loader!r})"


def shard(loader, train: bool = False):
    """``loader`` cut into this rank's pieces in a multi-process job; ``loader`` itself otherwise.

    ``train=True`` insists that ``loader.batch_size`` splits evenly: DataParallel averages the
    ranks' gradients with equal weights, which is the whole batch's gradient only if every
    rank's piece has the same number of rows.
    """
    world = get_world_size()
    if world == 1 or loader is None:
        return loader
    batch_size = getattr(loader, "batch_size", None)
    if train and batch_size is not None and batch_size % world:
        raise ConfigError(f"batch_size {batch_size} does not split evenly over {world} processes; "
                          f"use a multiple of {world} (the global batch is cut into equal pieces).")
    return ShardedLoader(loader, get_rank(), world)


# --------------------------------------------------------------------------- metrics over all ranks
def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum over the ranks of a few host numbers (float64: exact for counts)."""
    if get_world_size() == 1:
        return list(values)
    tensor = paddle.to_tensor(values, dtype="float64")
    paddle.distributed.all_reduce(tensor)
    return tensor.tolist()


def reduce_metrics(metrics: dict) -> dict:
    """``{'loss', 'acc', 'n'}`` of this rank's shard -> the same over every rank's samples together.

    Sums ``loss * n``, ``acc * n`` (= correct) and ``n`` over the ranks: the result is the
    sample-weighted loss and accuracy of the whole split. (If every rank evaluated the whole
    split, the sums are ``world`` copies and the means come out the same.)
    """
    if get_world_size() == 1 or not metrics:
        return metrics
    loss_sum, correct, n = all_reduce_sum([metrics["loss"] * metrics["n"], metrics["acc"] * metrics["n"],
                                           metrics["n"]])
    n = int(round(n))
    return {"loss": loss_sum / max(n, 1), "acc": round(correct) / max(n, 1), "n": n}


class SyncMetrics(Callback):
    """Makes every rank see the numbers of the whole global batch and of whole splits.

    ``after_loss``: ``state.loss`` becomes the mean loss of the global batch (one scalar
    all-reduce per step) while its gradient stays that of this rank's own loss, so
    ``NaNGuard``, ``History`` and the epoch's train loss read the global value and every rank
    stops at the same step. ``after_epoch``: train and validation metrics are summed over the
    ranks (``reduce_metrics``) before ``History`` records them. Every rank must run it.
    """

    order = ORDER["SyncMetrics"]  # before NaNGuard and History read the loss and the metrics

    def after_loss(self, state):
        local = state.loss
        mean = local.detach().clone()
        paddle.distributed.all_reduce(mean)
        mean = mean / get_world_size()
        # Value: the global mean. Gradient: d(local) (the added term is a constant), which
        # DataParallel then averages over the ranks, as it would without this callback.
        state.loss = local + (mean - local.detach())

    def after_epoch(self, state):
        state.train_metrics = reduce_metrics(state.train_metrics)
        state.val_metrics = reduce_metrics(state.val_metrics)


# --------------------------------------------------------------------------- starting a job
def launch_env(nproc: int, device: str = "auto") -> dict:
    """The launcher's environment, or a clear error for a job it would start wrongly.

    The launcher decides CPU or GPU by itself: any ``CUDA_VISIBLE_DEVICES`` in the environment
    (even empty, as some CPU images set it) makes it hand each rank one of the listed GPUs,
    and it fails with an IndexError when there are fewer than processes, whatever
    ``--device`` says. So with no usable GPU the variable is removed (CPU processes over gloo),
    and a GPU job with too few GPUs, or a CPU job on a machine whose GPUs the launcher would
    use anyway, is refused up front with what to do instead.
    """
    env = dict(os.environ)
    gpus = gpu_count()
    if not gpus:
        if device not in ("auto", "cpu"):
            raise ConfigError(f"--nproc {nproc} with device={device!r}: no GPU found; use --device cpu "
                              f"for {nproc} CPU processes.")
        env.pop("CUDA_VISIBLE_DEVICES", None)
    elif device == "cpu":
        raise ConfigError(f"--nproc {nproc} --device cpu on a machine with {gpus} GPU(s): "
                          "paddle.distributed.launch would give the processes GPUs anyway; use the GPUs "
                          "(--device auto) or train in one CPU process (leave out --nproc).")
    elif gpus < nproc:
        raise ConfigError(f"--nproc {nproc} needs {nproc} GPUs (one per process), found {gpus}; "
                          f"use --nproc {gpus}.")
    return env


def launch_command(nproc: int, args: list[str], log_dir, script=WORKER) -> list[str]:
    """The ``paddle.distributed.launch`` command that runs ``script args`` in ``nproc`` processes.

    ``--log_level WARNING`` keeps the launcher's own 40-line settings report out of the
    terminal; it still echoes rank 0's output and reports a failed rank with its log file.
    """
    return [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc),
            "--log_dir", str(log_dir), "--log_level", "WARNING", str(script), *args]
