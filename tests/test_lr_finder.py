"""The learning-rate range test: exponential schedule, stop on explosion, a sensible suggestion,
model restored."""
import json
import math

import numpy as np
import pytest

from course import MNIST, make_loader, set_seed
from course.lr_finder import LRRangeTest, lr_range_test, plot_lr_finder, suggest_lr

from _helpers import run_course


def test_schedule_is_exponential_from_start_to_end():
    finder = LRRangeTest(1e-5, 1e-1, num_steps=5)
    assert [round(math.log10(finder.lr_at(k)), 6) for k in range(5)] == [-5, -4, -3, -2, -1]


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = np.logspace(-5, 0, 60)
    loss = np.concatenate([np.full(20, 2.3), np.linspace(2.3, 0.3, 20), [0.3, 0.3], np.linspace(0.3, 5, 18)])
    # After the blow-up the loss "falls" again (dead ReLUs settle at ln 10): not a candidate.
    loss[-5:] = np.linspace(5, 2.3, 5)
    suggestion = suggest_lr(lrs, loss)
    assert lrs[20] <= suggestion <= lrs[39]


@pytest.mark.slow
def test_range_test_on_the_cnn(out_dir):
    set_seed(0)
    model = MNIST()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    result = lr_range_test(model, make_loader("train", 64, subset=6400), "adam", 1e-5, 10.0, num_steps=150)
    assert "exploded" in result.stop_reason and len(result.lrs) < 150  # Adam at lr ~1 blows up
    assert np.all(np.diff(result.lrs) > 0)
    assert 1e-4 < result.suggestion < result.min_loss_lr < 1.0
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)  # restored
    assert plot_lr_finder(result, path=out_dir / "lr_finder.png").exists()


@pytest.mark.slow
def test_cli_lr_find_writes_a_run_directory_or_the_given_path_never_the_current_folder(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = run_course("lr-find", "--num_steps", "30", "--start_lr", "1e-4", "--out_dir", tmp_path / "runs",
                      "--run_name", "finder", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert "suggested learning rate for adam:" in done.stdout
    run_dir = tmp_path / "runs" / "finder"
    assert f"plot: {run_dir / 'lr_finder.png'}; numbers: {run_dir / 'lr_finder.json'}" in done.stdout
    assert (run_dir / "lr_finder.png").read_bytes().startswith(b"\x89PNG")
    record = json.loads((run_dir / "lr_finder.json").read_text())
    assert record["settings"]["num_steps"] == 30 and len(record["lrs"]) == len(record["losses"]) <= 30
    assert f"{record['suggestion']:.3g}" in done.stdout
    assert list(cwd.iterdir()) == []  # nothing in the current folder

    done = run_course("lr-find", "--num_steps", "30", "--start_lr", "1e-4", "--out", tmp_path / "f.png", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert f"plot: {tmp_path / 'f.png'}" in done.stdout and (tmp_path / "f.png").exists()
    assert list(cwd.iterdir()) == []
    bad = run_course("lr-find", "--start_lr", "1", "--end_lr", "0.1", timeout=120)
    assert bad.returncode == 2 and "start_lr must be smaller" in bad.stderr
