"""Real interruptions: kill -9 mid-run then --resume equals an uninterrupted run; kill -9 during
checkpoint writes never leaves a corrupt checkpoint."""
import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from course import MNIST, load_checkpoint, save_checkpoint

from _helpers import ROOT, course_env, run_course, start_course

pytestmark = pytest.mark.slow  # real processes train 3,000 images for up to 3 epochs, killed and resumed

TRAIN = ["train", "--train_subset", "3000", "--eval_subset", "200", "--num_epochs", "3",
         "--no-visualdl", "--no-progress", "--seed", "3"]


def test_kill_9_then_resume_reaches_the_same_parameters(tmp_path):
    straight = run_course(*TRAIN, "--out_dir", tmp_path, "--run_name", "straight")
    assert straight.returncode == 0, straight.stderr

    run = tmp_path / "killed"
    proc = start_course(*TRAIN, "--out_dir", tmp_path, "--run_name", "killed",
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (run / "checkpoint.pdckpt").exists():  # epoch 1 finished
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(0.5)  # well into epoch 2
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    killed_at = load_checkpoint(run)["meta"]["epoch"]
    assert killed_at in (1, 2) and not (run / "mnist.pdparams").exists()

    resumed = run_course("train", "--resume", run, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert f"after epoch {killed_at}" in resumed.stdout
    a = load_checkpoint(tmp_path / "straight" / "mnist.pdparams")["model"]
    b = load_checkpoint(run / "mnist.pdparams")["model"]
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)


WRITER = textwrap.dedent("""
    import sys
    from course import MNIST, save_checkpoint
    model = MNIST()
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        save_checkpoint(sys.argv[1], model, None, version=i)
""")


def test_kill_9_during_checkpoint_writes_never_corrupts_it(tmp_path):
    path = tmp_path / "c.pdckpt"
    versions = []
    for delay in (0.05, 0.13, 0.21, 0.37):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                                text=True, env=course_env(), cwd=ROOT)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        versions.append(load_checkpoint(path)["meta"]["version"])  # always a whole checkpoint
    assert all(v >= 1 for v in versions)
    save_checkpoint(path, MNIST(), None, version=0)  # a later save clears temporaries of killed writers
    assert [p.name for p in tmp_path.iterdir()] == ["c.pdckpt"]


def test_ctrl_c_in_the_cli_keeps_history_and_flushes_logs(tmp_path):
    run = tmp_path / "int"
    proc = start_course(*TRAIN[:-4], "--no-progress", "--out_dir", tmp_path, "--run_name", "int", "--log_every", "5",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (run / "checkpoint.pdckpt").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.5)  # into epoch 2 (about 47 batches of 64 in all): at least one window of 5 logged
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Training interrupted" in out and "Traceback" not in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stop_reason"].startswith("interrupted") and len(metrics["epochs"]) >= 1
    assert len(metrics["losses"]) > 3000 // 64 // 5  # losses of the interrupted epoch are kept too
    from visualdl import LogReader
    (log,) = (run / "vdl").iterdir()
    assert [r.id for r in LogReader(file_path=str(log)).get_data("scalar", "train/loss")] == metrics["loss_steps"]
