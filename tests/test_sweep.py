"""Sweeps: grid, names, parallel == sequential, resume skips finished runs, failures and
divergence recorded while the sweep goes on, table and overlay plot written."""
import csv
import json
import math
import os
import subprocess
import sys

import pytest

from course import Config, ConfigError
from course.sweep import grid, read_table, run_name, run_sweep, write_results_page

from _helpers import ROOT, run_course, start_course

TINY = Config(train_subset=256, eval_subset=200, num_epochs=1, visualdl=False, log_every=2)


def test_grid_and_names():
    assert grid(optimizer=["sgd", "adam"], lr=[0.1, 0.01]) == [
        {"optimizer": "sgd", "lr": 0.1}, {"optimizer": "sgd", "lr": 0.01},
        {"optimizer": "adam", "lr": 0.1}, {"optimizer": "adam", "lr": 0.01}]
    assert run_name({"optimizer": "adam", "lr": 0.001}) == "optimizer-adam_lr-0.001"
    assert run_name({}) == "base"


def test_a_typo_fails_before_any_run(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting"):
        run_sweep(TINY, [{"learning_rate": 0.1}], tmp_path)
    assert not any(tmp_path.glob("*/metrics.json"))


@pytest.mark.slow
def test_parallel_equals_sequential_and_resume_skips(tmp_path, capsys):
    overrides = grid(optimizer=["sgd", "adam"], lr=[0.01])
    parallel = run_sweep(TINY, overrides, tmp_path / "parallel", jobs=2)
    sequential = run_sweep(TINY, overrides, tmp_path / "sequential", jobs=1)
    for a, b in zip(parallel, sequential):
        assert a["status"] == b["status"] == "ok"
        assert (a["final_train_loss"], a["test_acc"]) == (b["final_train_loss"], b["test_acc"])
    for name in ("optimizer-sgd_lr-0.01", "optimizer-adam_lr-0.01"):
        p = json.loads((tmp_path / "parallel" / name / "metrics.json").read_text())
        s = json.loads((tmp_path / "sequential" / name / "metrics.json").read_text())
        assert p["losses"] == s["losses"]
    rows = list(csv.DictReader((tmp_path / "parallel" / "results.csv").open()))
    assert {r["run"] for r in rows} == {"optimizer-sgd_lr-0.01", "optimizer-adam_lr-0.01"}
    # Rows carry their run's settings: nobody parses them back out of the run's name.
    assert [(r["optimizer"], r["lr"]) for r in parallel] == [("sgd", 0.01), ("adam", 0.01)]
    assert list(rows[0])[:3] == ["run", "optimizer", "lr"]
    assert {r["run"]: r for r in read_table(tmp_path / "parallel" / "results.csv")} == {r["run"]: r for r in parallel}
    assert "| optimizer-adam_lr-0.01 | ok |" in (tmp_path / "parallel" / "results.md").read_text()
    assert (tmp_path / "parallel" / "losses.png").stat().st_size > 0

    # An interrupted sweep: one run was killed after its checkpoint but before metrics.json; one is new.
    (tmp_path / "parallel" / "optimizer-adam_lr-0.01" / "metrics.json").unlink()
    capsys.readouterr()
    again = run_sweep(TINY, overrides + [{"optimizer": "momentum", "lr": 0.01}], tmp_path / "parallel", jobs=2)
    out = capsys.readouterr().out
    assert "[skip] optimizer-sgd_lr-0.01" in out and "[skip] optimizer-adam" not in out
    assert [r["status"] for r in again] == ["ok", "ok", "ok"]
    assert [r["optimizer"] for r in again] == ["sgd", "adam", "momentum"]  # skipped rows too
    assert again[1]["test_acc"] == parallel[1]["test_acc"]  # resumed from its checkpoint: same result


@pytest.mark.slow
def test_workers_do_not_print_paddles_ccache_warning(tmp_path, capfd):
    """A sweep in a notebook: the spawned workers' stderr is the notebook's, and Paddle's import warning
    about ccache (irrelevant to the course) must not show up there."""
    rows = run_sweep(TINY, grid(optimizer=["sgd", "adam"]), tmp_path / "s", jobs=2)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert "No ccache found" not in capfd.readouterr().err


@pytest.mark.slow
def test_diverged_and_failed_runs_are_recorded_and_the_sweep_goes_on(tmp_path):
    overrides = [{"optimizer": "sgd", "lr": 1e20, "schedule": "constant"},
                 {"optimizer": "sgd", "lr": 0.01, "data_dir": str(tmp_path / "no-such-dir")},
                 {"optimizer": "sgd", "lr": 0.01},
                 {"optimizer": "sgd", "lr": 1e-9, "schedule": "constant", "batch_size": 2, "train_subset": 320}]
    rows = run_sweep(TINY, overrides, tmp_path / "s", jobs=2)
    assert [r["status"] for r in rows] == ["diverged", "failed", "ok", "stalled"]
    assert "at chance level" in rows[3]["error"]
    assert "training diverged" in rows[0]["error"]
    assert "DataError" in rows[1]["error"] and "no-such-dir" in rows[1]["error"]
    log = (tmp_path / "s" / f"{rows[1]['run']}.log").read_text()
    assert "Traceback" in log  # the full story is in the run's log, not on the console


@pytest.mark.slow
def test_cli_sweep(tmp_path):
    done = run_course("sweep", "--optimizer", "sgd,adam", "--lr", "0.01", "--train_subset", "256",
                      "--eval_subset", "200", "--no-visualdl", "--sweep_dir", tmp_path, "--jobs", "2",
                      smoke=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "sweep: optimizer ['sgd', 'adam'] into" in done.stdout
    assert (tmp_path / "results.md").exists() and len(list(tmp_path.glob("*/metrics.json"))) == 2
    bad = run_course("sweep", "--optimizer", "sgd,adamm", smoke=True, timeout=120)
    assert bad.returncode == 2 and "adamm" in bad.stderr and "Traceback" not in bad.stderr


def test_a_script_without_main_guard_gets_an_explanation(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from course import Config\nfrom course.sweep import run_sweep\n"
        f"run_sweep(Config(train_subset=128, eval_subset=100, num_epochs=1, visualdl=False), "
        f"[{{'lr': 0.01}}, {{'lr': 0.1}}], {str(tmp_path / 's')!r}, jobs=2)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr


@pytest.mark.slow
def test_killing_the_sweep_stops_its_workers(tmp_path):
    # `kill <sweep pid>` used to leave the workers training on (and starting the runs queued for them).
    import signal
    import time

    import psutil
    sweep = start_course("sweep", "--optimizer", "sgd", "--lr", "0.01,0.02,0.03", "--train_subset", "6400",
                         "--eval_subset", "200", "--num_epochs", "20", "--no-visualdl", "--sweep_dir", tmp_path,
                         "--jobs", "2", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(sweep.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(tmp_path.glob("*/config.json"))) < 2:
        time.sleep(0.5)  # both workers have started a run
    workers = [p for p in parent.children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2
    sweep.send_signal(signal.SIGTERM)
    sweep.wait(timeout=30)
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"workers still running after the sweep was killed: {alive}"
    assert not (tmp_path / "lr-0.03").exists()  # the queued run never started


def test_read_table_gives_an_old_table_its_settings_from_the_overrides(tmp_path):
    table = tmp_path / "results.csv"
    table.write_text("run,status,final_train_loss,val_acc,test_acc,wall_seconds,error\n"
                     "optimizer-adam_lr-0.001,ok,0.06,0.98,0.985,292.5,\n"
                     "lr-0.0001_optimizer-sgd,stalled,2.3,,0.1135,200,dead\n")   # keys in another order
    rows = read_table(table, grid(optimizer=["sgd", "adam"], lr=[0.0001, 0.001]))
    assert [(r["optimizer"], r["lr"], r["status"]) for r in rows] == [("adam", 0.001, "ok"),
                                                                       ("sgd", 0.0001, "stalled")]
    assert rows[0]["test_acc"] == 0.985 and math.isnan(rows[1]["val_acc"])



def test_write_results_page_says_when_and_how_it_was_measured(tmp_path):
    path = tmp_path / "results.md"
    text = write_results_page(path, "python docs/sweeps/x/measure.py", ["mode", "acc"], [["full", "0.9800"]],
                              note="One seed.", footer=["", "done"])
    assert path.read_text(encoding="utf-8") == text
    head, blank, header, rule, row, *footer = text.splitlines()
    assert head.startswith("Measured ") and head.endswith(", `python docs/sweeps/x/measure.py`. One seed.")
    assert (blank, header, rule, row, footer) == ("", "| mode | acc |", "|---|---|", "| full | 0.9800 |", ["", "done"])
