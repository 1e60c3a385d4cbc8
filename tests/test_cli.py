"""``python -m course``: the main job in smoke mode, evaluate, resume, and one-line errors."""
import csv
import json
import subprocess
import sys

import pytest

from _helpers import ROOT, course_env, run_course

from course.config import Config, field_names


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    done = run_course("train", "--out_dir", str(out), "--no-progress", smoke=True)
    assert done.returncode == 0, done.stderr
    (run_dir,) = out.iterdir()
    return done, run_dir


def test_train_prints_a_short_header_epochs_and_test_accuracy(smoke_run):
    import paddle

    done, run_dir = smoke_run
    lines = done.stdout.splitlines()
    # The header a student reads: device and versions, data, settings, the run directory; short lines.
    header = lines[:lines.index(next(l for l in lines if l.startswith("epoch 1/1")))]
    assert header == [
        f"device cpu | paddle {paddle.__version__} | python {sys.version.split()[0]}",
        "data: MNIST (embedded): train 2,000 images (train50k), validation 1,000, test 1,000",  # smoke mode
        "training: adam lr 0.012 (onecycle), batch 64, 1 epoch, seed 0",
        f"run directory: {run_dir} (all settings: config.json; environment: environment.txt)"]
    assert max(len(l) for l in header[:3]) <= 100
    assert "not applied" not in done.stdout and "\nenvironment:" not in done.stdout
    # The details: always in the run directory.
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train_subset"] == 2000 and config["num_epochs"] == 1
    environment = (run_dir / "environment.txt").read_text().splitlines()
    assert environment[0].endswith(" started") and f"  paddle {paddle.__version__}" in environment
    assert any(l.startswith("  CPU levers") for l in environment)
    assert any(l.startswith("epoch 1/1 | train loss") and "val loss" in l for l in lines)
    test_line = next(l for l in lines if l.startswith("test: loss"))
    assert f"run directory: {run_dir}" in done.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"accuracy {metrics['test']['acc']:.4f}" in test_line
    assert metrics["test"]["n"] == 1000 and metrics["test"]["acc"] > 0.5


def test_train_verbose_prints_the_config_and_the_environment_line(tmp_path):
    done = run_course("train", "--out_dir", tmp_path, "--run_name", "v", "--no-progress", "--no-visualdl",
                      "--train_subset", "256", "--eval_subset", "100", "--verbose")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert json.loads(lines[0].removeprefix("config: ")) == json.loads((tmp_path / "v" / "config.json").read_text())
    assert lines[1].startswith("environment: paddle ") and "CPU levers" in lines[1]
    assert lines[2].startswith("device cpu | paddle ")


def test_run_directory_holds_everything(smoke_run):
    _, run_dir = smoke_run
    for name in ("config.json", "environment.txt", "checkpoint.pdckpt", "mnist.pdparams", "metrics.json", "metrics.csv",
                 "loss.png", "curves.png"):
        assert (run_dir / name).stat().st_size > 0, name
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert rows[0]["epoch"] == "1" and float(rows[0]["val_acc"]) > 0.5


def test_visualdl_log_holds_the_printed_metrics(smoke_run):
    from visualdl import LogReader

    _, run_dir = smoke_run
    (log_file,) = (run_dir / "vdl").iterdir()
    reader = LogReader(file_path=str(log_file))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for tag, key in (("epoch/val_acc", "val_acc"), ("epoch/train_loss", "train_loss")):
        logged = [(r.id, r.value) for r in reader.get_data("scalar", tag)]
        assert logged == [(1, pytest.approx(metrics["epochs"][0][key], rel=1e-6))]
    steps = [r.id for r in reader.get_data("scalar", "train/loss")]
    assert steps == metrics["loss_steps"] and len(steps) == 3  # 31 batches, a point every 10


@pytest.mark.slow
def test_evaluate_a_saved_run(smoke_run):
    _, run_dir = smoke_run
    for target in (run_dir, run_dir / "mnist.pdparams"):
        done = run_course("evaluate", "--checkpoint", str(target))
        assert done.returncode == 0, done.stderr
        assert "test: loss" in done.stdout and "(10000 images)" in done.stdout
    # the run's own test figures (smoke mode: the first 1,000 test images) come back from its checkpoint
    from course import evaluate_checkpoint

    expected = json.loads((run_dir / "metrics.json").read_text())["test"]
    again = evaluate_checkpoint(run_dir, subset=expected["n"])
    assert again["n"] == expected["n"] == 1000
    assert again["acc"] == expected["acc"] and again["loss"] == pytest.approx(expected["loss"], rel=1e-5)


@pytest.mark.slow
def test_resume_continues_after_the_last_epoch(tmp_path):
    first = run_course("train", "--out_dir", str(tmp_path), "--run_name", "r", "--no-progress",
                       "--no-visualdl", "--train_subset", "256", "--eval_subset", "200", smoke=True)
    assert first.returncode == 0, first.stderr
    again = run_course("train", "--resume", str(tmp_path / "r"), "--num_epochs", "2", "--no-progress", smoke=True)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout and "epoch 2/2" in again.stdout and "epoch 1/2" not in again.stdout
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["epochs"]] == [1, 2]


def test_help_lists_every_config_field():
    done = run_course("train", "--help")
    assert done.returncode == 0
    for name in field_names():
        assert f"--{name}" in done.stdout
    assert "--resume" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--lr", "-0.1"], "lr must be a positive number"),
    (["train", "--batch_size", "0"], "batch_size must be a positive number"),
    (["train", "--optimizer", "adamm"], "invalid choice: 'adamm'"),
    (["train", "--lr", "fast"], "invalid float value: 'fast'"),
    (["train", "--no_such_flag", "1"], "unrecognized arguments"),
    (["train", "--device", "gpu:99"], "gpu:99"),
    (["evaluate", "--checkpoint", "/no/such/run"], "not found"),
])
def test_bad_input_exits_2_with_one_line_and_no_traceback(args, message):
    done = run_course(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("where, message", [
    ("no/such/run", "no such run directory or file"),
    ("empty", "is a directory without config.json, so not a run directory"),
    ("empty/checkpoint.pdckpt", "is in a directory without config.json, so not a run directory"),
])
def test_resume_from_no_run_is_one_line_naming_the_problem_and_the_fix_and_writes_nothing(tmp_path, where,
                                                                                           message):
    (tmp_path / "empty").mkdir()
    if where.endswith(".pdckpt"):
        (tmp_path / where).write_bytes(b"not a checkpoint")
    before = sorted(tmp_path.rglob("*"))
    done = run_course("train", "--resume", tmp_path / where, "--out_dir", tmp_path / "runs", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == "", done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert line == (f"python -m course train: error: --resume {tmp_path / where}: {message}; pass a run directory "
                    "that `python -m course train` wrote (runs/<name>) or its checkpoint.pdckpt, or leave "
                    "--resume out to start a new run.")
    assert sorted(tmp_path.rglob("*")) == before  # nothing written: no run directory, no runs/


# Paddle made unimportable: a command that imported it before checking its values would answer
# with an ImportError traceback instead of its one-line error.
WITHOUT_PADDLE = "import sys; sys.modules['paddle'] = None; from course.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize("args, message", [
    (["train", "--lr=-1"], "lr must be a positive number"),
    (["train", "--nproc", "0"], "nproc must be at least 1"),
    (["train", "--resume", "/no/such/run"], "--resume /no/such/run: no such run directory or file"),
    (["evaluate", "--checkpoint", "x", "--batch_size", "0"], "batch_size must be at least 1"),
    (["evaluate", "--checkpoint", "/no/such/run"], "not found"),
    (["export", "--checkpoint", "/no/such/run", "--out", "x.safetensors"], "not found"),
    (["lr-find", "--start_lr", "1", "--end_lr", "0.1"], "start_lr must be smaller"),
    (["sweep", "--jobs", "0"], "jobs must be at least 1"),
    (["sweep", "--lr=-1,0.1"], "lr must be a positive number"),
])
def test_bad_values_are_refused_before_paddle_loads(args, message, tmp_path):
    done = subprocess.run([sys.executable, "-c", WITHOUT_PADDLE, *args], capture_output=True, text=True,
                          cwd=tmp_path, env=course_env(PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_export_to_safetensors_and_evaluate_it(smoke_run, tmp_path):
    _, run_dir = smoke_run
    out = tmp_path / "mnist.safetensors"
    done = run_course("export", "--checkpoint", str(run_dir), "--out", str(out))
    assert done.returncode == 0 and out.exists(), done.stderr
    from_export = run_course("evaluate", "--checkpoint", str(out), "--split", "val")
    from_run = run_course("evaluate", "--checkpoint", str(run_dir), "--split", "val")
    assert from_export.returncode == 0, from_export.stderr
    assert "(10000 images)" in from_export.stdout and from_export.stdout == from_run.stdout


def test_sweep_takes_on_off_flags_as_values_or_as_an_axis():
    from course.cli import build_parser
    from course.sweep import grid, run_name
    parse = lambda *argv: {k: v for k, v in vars(build_parser().parse_args(["sweep", *argv])).items()
                           if k not in ("command", "jobs", "sweep_dir")}
    assert parse("--batch_norm") == {"batch_norm": [True]}          # on for every run
    assert parse("--no-normalize") == {"normalize": [False]}        # off for every run
    axes = parse("--batch_norm", "false,true", "--no-normalize")
    assert axes == {"batch_norm": [False, True], "normalize": [False]}
    assert [run_name(o) for o in grid(batch_norm=axes["batch_norm"])] == ["batch_norm-False", "batch_norm-True"]
    bad = run_course("sweep", "--batch_norm", "maybe", timeout=120)
    assert bad.returncode == 2 and "'maybe' is not true or false" in bad.stderr


def test_evaluate_and_lr_find_flags_come_from_config_fields():
    from course.cli import parse

    config = Config()
    _, evaluate = parse(["evaluate", "--checkpoint", "x"])
    assert (evaluate["batch_size"], evaluate["device"], evaluate["data_dir"]) == (
        config.eval_batch_size, config.device, config.data_dir)
    _, finder = parse(["lr-find"])
    assert (finder["optimizer"], finder["batch_size"], finder["seed"]) == (config.optimizer, config.batch_size,
                                                                           config.seed)
    with pytest.raises(SystemExit):
        parse(["lr-find", "--optimizer", "adamm"])   # the field's choices apply
