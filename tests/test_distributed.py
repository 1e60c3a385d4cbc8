"""Data-parallel training: two real CPU processes (gloo) under ``paddle.distributed.launch``.

The equivalence test: 2 processes x 32 rows = one process x 64 rows, step for step.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import paddle
import pytest

from course import Config, make_loader, train_run
from course.cli import config_flags, main, parse
from course.distributed import (ShardedLoader, launch_command, main_process_only, reduce_metrics, shard,
                                shard_bounds)
from course.errors import ConfigError

from _helpers import ROOT, run_course

# 10 steps of the default recipe (Adam, one-cycle) on global batches of 64. Evaluation in batches
# of 100 over 201 images: the last batch has one row, so rank 0's piece of it is empty.
SETTINGS = dict(batch_size=64, train_subset=640, eval_subset=201, eval_batch_size=100, num_epochs=1,
                log_every=2, seed=3, device="cpu")
WRITERS = {"PrintMetrics", "Checkpoint", "ProgressBar", "VisualDLLogger"}
TIMEOUT = 180


def launched_env():
    env = {**os.environ, "MPLBACKEND": "Agg"}
    for name in ("COURSE_SMOKE", "PADDLE_TRAINER_ID", "PADDLE_TRAINERS_NUM"):
        env.pop(name, None)
    return env


def load_params(path) -> dict:
    if str(path).endswith(".npz"):
        return dict(np.load(path))
    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


def assert_same_params(got: dict, expected: dict, **tolerance):
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], err_msg=name, **tolerance)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: the same settings in this process, batch 64 on one rank."""
    out = tmp_path_factory.mktemp("one")
    return train_run(Config(out_dir=str(out), run_name="one", progress=False, visualdl=False, **SETTINGS))


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """tests/_dp_worker.py (``train_run`` plus a recorder) in 2 CPU processes under the launcher."""
    out = tmp_path_factory.mktemp("two")
    settings = dict(SETTINGS, out_dir=str(out / "runs"), run_name="two", progress=True, visualdl=True)
    command = launch_command(2, [str(out), json.dumps(settings)], out / "logs",
                             script=ROOT / "tests" / "_dp_worker.py")
    done = subprocess.run(command, capture_output=True, text=True, env=launched_env(), cwd=out, timeout=TIMEOUT)
    logs = {r: (out / "logs" / f"workerlog.{r}").read_text() for r in (0, 1)}
    assert done.returncode == 0, done.stdout + done.stderr + logs[0][-3000:] + logs[1][-3000:]
    return out, logs


# --------------------------------------------------------------------------- real processes
@pytest.mark.slow
def test_two_processes_take_the_same_steps_as_one(one_process, two_processes):
    out, _ = two_processes
    rank0, rank1 = load_params(out / "params.rank0.npz"), load_params(out / "params.rank1.npz")
    assert_same_params(rank1, rank0, rtol=0, atol=0)  # the ranks hold identical parameters
    single = load_params(Path(one_process["run_dir"]) / "mnist.pdparams")
    # The same 10 updates as one process with batch 64; only float32 summation order differs.
    # With MKL's AVX2 path (the mkl_amd CPU lever, course/cpu.py) batch-32 and batch-64 products
    # sum in other orders, and Adam turns that into up to 3.5e-6 in one of 9,800 fc weights.
    assert_same_params(rank0, single, rtol=1e-5, atol=1e-5)
    assert_same_params(load_params(out / "runs" / "two" / "mnist.pdparams"), rank0, rtol=0, atol=0)


@pytest.mark.slow
def test_losses_and_metrics_are_those_of_the_whole_batch_and_split(one_process, two_processes):
    out, _ = two_processes
    two = json.loads((out / "runs" / "two" / "metrics.json").read_text())
    assert two["world_size"] == 2 and one_process["world_size"] == 1
    np.testing.assert_allclose(two["losses"], one_process["losses"], rtol=1e-5)  # global-batch losses
    (row2,), (row1,) = two["epochs"], one_process["epochs"]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert row2[key] == pytest.approx(row1[key], rel=1e-5), key
    assert two["test"]["n"] == one_process["test"]["n"] == 201  # every test image, counted once
    assert two["test"]["acc"] == one_process["test"]["acc"]
    assert two["test"]["loss"] == pytest.approx(one_process["test"]["loss"], rel=1e-5)


@pytest.mark.slow
def test_only_rank_0_writes(two_processes):
    out, logs = two_processes
    assert [p.name for p in (out / "runs").iterdir()] == ["two"]  # rank 1 made no run directory
    run_dir = out / "runs" / "two"
    for name in ("config.json", "checkpoint.pdckpt", "mnist.pdparams", "metrics.json", "metrics.csv",
                 "loss.png", "curves.png"):
        assert (run_dir / name).stat().st_size > 0, name
    assert len(list((run_dir / "vdl").iterdir())) == 1  # one VisualDL log, rank 0's
    callbacks = {r: set(json.loads((out / f"callbacks.rank{r}.json").read_text())) for r in (0, 1)}
    assert WRITERS <= callbacks[0] and not WRITERS & callbacks[1]
    assert {"History", "NaNGuard", "LRSchedule", "SyncMetrics"} <= callbacks[1]
    # Per-rank logs: both ranks train and report the test result; only rank 0 prints epochs.
    assert "rank 0 of 2" in logs[0] and "rank 1 of 2" in logs[1]
    assert "epoch 1/1 |" in logs[0] and "epoch 1/1 |" not in logs[1]
    assert "test: loss" in logs[1] and "(written by rank 0)" in logs[1]


@pytest.mark.slow
def test_cli_nproc_starts_the_launcher_and_keeps_per_rank_logs(one_process, tmp_path):
    flags = [f"--{k}={v}" for k, v in SETTINGS.items()]
    # A CUDA_VISIBLE_DEVICES left in the environment of a machine without a usable GPU made the
    # launcher hand rank 1 a GPU that does not exist and fail with an IndexError.
    env = {**launched_env(), "CUDA_VISIBLE_DEVICES": "0"}
    done = run_course("train", "--nproc", "2", *flags, "--no-progress", "--no-visualdl", "--out_dir", tmp_path,
                      "--run_name", "cli", env=env, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "paddle.distributed.launch --nproc_per_node 2" in done.stdout
    assert "epoch 1/1 |" in done.stdout  # the launcher echoes rank 0's output
    (run_dir,) = tmp_path.iterdir()
    assert sorted(p.name for p in (run_dir / "logs").glob("workerlog.*")) == ["workerlog.0", "workerlog.1"]
    for rank in (0, 1):  # which rank wrote a log, in the short header too (notebooks/2.7 reads it)
        log = (run_dir / "logs" / f"workerlog.{rank}").read_text().splitlines()
        assert any(l.startswith("environment: paddle ") and l.endswith(f"| rank {rank} of 2 processes") for l in log)
    assert "  rank 0 of 2 processes" in (run_dir / "environment.txt").read_text().splitlines()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["test"]["n"] == 201
    assert_same_params(load_params(run_dir / "mnist.pdparams"),
                       load_params(Path(one_process["run_dir"]) / "mnist.pdparams"), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- in this process
def test_pieces_of_every_global_batch_are_contiguous_and_cover_it():
    loader = make_loader("train50k", 64, seed=5, subset=640)
    pieces = {}
    for rank in (0, 1):
        sharded = ShardedLoader(loader, rank, 2)
        sharded.set_epoch(0)  # every rank walks epoch 0's shuffled order
        pieces[rank] = list(sharded)
    loader.set_epoch(0)
    for i, (X, y) in enumerate(loader):
        (X0, y0), (X1, y1) = pieces[0][i], pieces[1][i]
        assert X0.shape[0] == X1.shape[0] == 32
        np.testing.assert_array_equal(np.concatenate([X0.numpy(), X1.numpy()]), X.numpy())
        np.testing.assert_array_equal(np.concatenate([y0.numpy(), y1.numpy()]), y.numpy())
    sharded = ShardedLoader(loader, 1, 2)
    sharded.set_epoch(3)
    assert len(sharded) == len(loader) == 10 and loader.epoch == 3  # same batches, same shuffle


def test_shard_bounds_partition_and_empty_pieces_are_skipped():
    for n in (0, 1, 7, 64, 1000):
        for world in (1, 2, 3):
            bounds = [shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    loader = make_loader("test", 100, subset=201)  # batches of 100, 100 and 1
    sizes = {r: [X.shape[0] for X, _ in ShardedLoader(loader, r, 2)] for r in (0, 1)}
    assert sizes == {0: [50, 50], 1: [50, 50, 1]}


def test_one_process_changes_nothing():
    loader = make_loader("test", 100, subset=200)
    assert shard(loader, train=True) is loader
    metrics = {"loss": 0.5, "acc": 0.9, "n": 200}
    assert reduce_metrics(metrics) is metrics
    assert main_process_only(["a"]) == ["a"]


def test_rank_helpers_read_the_launcher_environment(monkeypatch):
    loader = make_loader("test", 63, subset=200)
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")
    monkeypatch.setenv("PADDLE_TRAINER_ID", "1")
    assert main_process_only(["writer"]) == []
    assert isinstance(shard(loader), ShardedLoader) and shard(loader).rank == 1
    with pytest.raises(ConfigError, match="batch_size 63 does not split evenly over 2 processes"):
        shard(loader, train=True)


def test_nproc_inside_a_launched_process_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")
    assert main(["train", "--nproc", "2"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "leave --nproc out" in err


def test_worker_flags_reproduce_the_command_line():
    argv = ["train", "--lr", "0.003", "--no-visualdl", "--progress", "--optimizer", "sgd", "--batch_size", "32",
            "--amp", "off", "--resume", "runs/x"]
    _, args = parse(argv)
    args.pop("nproc"), args.pop("run_dir"), args.pop("verbose")   # what the CLI takes out before config_flags
    _, again = parse(["train", *config_flags(args)])
    again.pop("nproc"), again.pop("run_dir"), again.pop("verbose")
    assert again == args


def test_a_gpu_job_without_a_gpu_is_refused_before_anything_starts(tmp_path, capsys):
    from course.cli import main
    from course.device import gpu_count
    if gpu_count():
        pytest.skip("this machine has a GPU")
    rc = main(["train", "--nproc", "2", "--device", "gpu", "--out_dir", str(tmp_path)])
    assert rc == 2
    assert "no GPU found; use --device cpu" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # no run directory left behind
