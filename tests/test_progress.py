"""The progress bar in a terminal, and no carriage-return frames when the output is a file.

Both run the real ``train_run`` in a real subprocess: once with stdout / stderr redirected to a
file (``make demo > log``, nohup, CI), once on a pseudo-terminal.
"""
import os
import pty
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ("from course import Config, train_run; train_run(Config(train_subset=640, eval_subset=128, "
         "num_epochs=2, batch_size=32, visualdl=False, out_dir={out!r}))")


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "COURSE_SMOKE": "0"}


def test_a_log_file_gets_the_epoch_lines_and_no_progress_frames(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "wb") as out:
        subprocess.run([sys.executable, "-c", TRAIN.format(out=str(tmp_path / "runs"))], stdout=out,
                       stderr=subprocess.STDOUT, env=_env(), cwd=tmp_path, check=True, timeout=300)
    text = log.read_bytes().decode()
    assert "\r" not in text and "batch/s" not in text and "it/s" not in text
    assert "epoch 1/2 | train loss" in text and "epoch 2/2 | train loss" in text
    assert "test: loss" in text


def test_a_terminal_gets_the_bar(tmp_path):
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", TRAIN.format(out=str(tmp_path / "runs"))], stdout=follower,
                            stderr=follower, env=_env(), cwd=tmp_path)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=300) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "\r" in text and "batch" in text  # tqdm's frames
    assert "epoch 2/2 | train loss" in text


def _fit_without_tqdm(monkeypatch, *callbacks, num_epochs=2):
    from course import History, MNIST, fit, make_loader, make_optimizer, set_seed

    for name in ("tqdm", "tqdm.auto", "tqdm.autonotebook"):  # what an environment without tqdm has
        monkeypatch.setitem(sys.modules, name, None)
    set_seed(0)
    model = MNIST()
    fit(model, make_loader("train50k", 64, subset=256), make_optimizer("adam", 0.001, model.parameters()),
        num_epochs, val_loader=make_loader("val", 200, subset=200), callbacks=[History(2), *callbacks])


def test_without_tqdm_the_bar_is_a_plain_line_per_epoch(monkeypatch):
    import io

    from course import ProgressBar

    out = io.StringIO()
    _fit_without_tqdm(monkeypatch, ProgressBar(enabled=True, file=out))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("epoch 1/2 | train loss") and "| val loss" in lines[0] and "4 batches in" in lines[0]
    assert "pip install tqdm" in lines[0] and "pip install" not in lines[1]  # said once
    assert lines[1].startswith("epoch 2/2 | train loss")


def test_without_tqdm_the_epoch_lines_of_print_metrics_are_not_repeated(monkeypatch, capsys):
    from course import PrintMetrics, ProgressBar

    _fit_without_tqdm(monkeypatch, ProgressBar(enabled=True), PrintMetrics(), num_epochs=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("epoch 1/1 | train loss"), lines
