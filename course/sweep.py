"""Sweeps: a grid of config overrides -> one run each (in parallel worker processes), a results
table (CSV and Markdown), overlaid loss curves, and one VisualDL sub-run per run.

    overrides = grid(optimizer=["sgd", "adam"], lr=[0.001, 0.01])
    rows = run_sweep(Config(num_epochs=1), overrides, "runs/sweep-opt", jobs=2)

Each run is ``train_run`` in its own directory ``<sweep_dir>/<name>``, named after what it
changes (``optimizer-adam_lr-0.01``). Runs are independent processes with their own seed, so
the results equal a sequential run's. A finished run (its ``metrics.json`` exists) is skipped
when the sweep is started again; an unfinished one resumes from its checkpoint. A run that
diverges is recorded as ``diverged``; one that raises is recorded as ``failed`` with its error; one that
finishes with its training accuracy at chance level is ``stalled``; either way the sweep goes on. The table is rewritten after every run, so an interrupted sweep
loses nothing that finished.

Used by: notebooks/2.6.x, homework/2-3, ``python -m course sweep``.
"""
from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import multiprocessing
import shutil
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from .config import Config
from .errors import CourseError

# A finished run is "stalled" when, after at least this many steps (a short smoke run has not had the
# chance to learn), its final training accuracy is still under this (chance: 0.1).
STALLED_BELOW, STALLED_AFTER_STEPS = 0.2, 150
COLUMNS = ("run", "status", "final_train_loss", "val_acc", "test_acc", "wall_seconds", "error")


def grid(**axes) -> list[dict]:
    """Every combination of the given values: ``grid(lr=[0.1, 0.01], optimizer=["sgd"])``."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))]


def run_name(overrides: dict) -> str:
    """A directory name that says what a run changes: ``optimizer-adam_lr-0.01``."""
    parts = [f"{key}-{value:g}" if isinstance(value, float) else f"{key}-{value}"
             for key, value in overrides.items()]
    name = "_".join(parts) or "base"
    return "".join(c if c.isalnum() or c in "-_.+" else "-" for c in name)


def _row(name: str, metrics: dict | None, status: str, error: str = "") -> dict:
    epochs = (metrics or {}).get("epochs") or [{}]
    return {"run": name, "status": status,
            "final_train_loss": epochs[-1].get("train_loss", math.nan),
            "val_acc": epochs[-1].get("val_acc", math.nan),
            "test_acc": (metrics or {}).get("test", {}).get("acc", math.nan),
            "wall_seconds": (metrics or {}).get("wall_seconds", math.nan), "error": error}


def row_from_run_dir(run_dir: Path) -> dict | None:
    """The table row of a finished run, or None if it has not finished."""
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.exists():
        return None
    metrics = json.loads(metrics_file.read_text())
    status = "diverged" if metrics.get("diverged") else "interrupted" if metrics.get("stop_reason") else "ok"
    error = metrics.get("stop_reason", "")
    train_acc = ((metrics.get("epochs") or [{}])[-1]).get("train_acc", math.nan)
    steps = max(metrics.get("loss_steps") or [0])
    if status == "ok" and train_acc < STALLED_BELOW and steps >= STALLED_AFTER_STEPS:
        # A finite loss stuck near ln 10 is no NaN, so nothing stopped the run: say it here, or a
        # dead network (Adam at lr 0.01 does this to the course CNN) reads as a finished "ok".
        status, error = "stalled", (f"final training accuracy {train_acc:.4f} is at chance level (10 classes): "
                                    "the network did not learn; the learning rate is too large (dead "
                                    "ReLUs, loss stuck at ln 10) or too small")
    return _row(run_dir.name, metrics, status, error)


def _die_with_parent() -> None:
    """Worker initializer: on Linux, ask the kernel to send this worker SIGTERM when the sweep's
    process dies. Without it, a sweep stopped with ``kill`` (not Ctrl-C, which reaches the whole
    process group) leaves its workers training on, and picking up the runs queued for them. A
    killed worker's run is resumed from its checkpoint when the sweep is started again."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _run_one(config_dict: dict, run_dir: str) -> dict:
    """Worker: one run, its printout in ``<run_dir>.log``. Never raises: failures become rows."""
    from .run import train_run

    run_dir = Path(run_dir)
    resume = run_dir if (run_dir / "checkpoint.pdckpt").exists() else None
    if resume is None and run_dir.exists():
        shutil.rmtree(run_dir)  # started but no epoch finished: start over
    with open(f"{run_dir}.log", "a", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            train_run(Config(**config_dict), resume=resume)
        except Exception as e:  # recorded, not raised: the sweep goes on
            traceback.print_exc()
            return _row(run_dir.name, None, "failed", f"{type(e).__name__}: {e}")
    return row_from_run_dir(run_dir)


def write_table(rows: list[dict], sweep_dir: Path) -> None:
    """``results.csv`` and ``results.md`` in ``sweep_dir`` (rows sorted by test accuracy)."""
    rows = sorted(rows, key=lambda r: -r["test_acc"] if r["test_acc"] == r["test_acc"] else math.inf)
    with open(sweep_dir / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| run | status | final train loss | val acc | test acc | wall s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['status']} | {r['final_train_loss']:.4f} | {r['val_acc']:.4f} "
                     f"| {r['test_acc']:.4f} | {r['wall_seconds']:.0f} |")
    (sweep_dir / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot_sweep(sweep_dir, path=None):
    """Every run's logged training loss on one figure (log scale), from the runs' metrics.json."""
    import matplotlib.pyplot as plt

    from .plots import show_or_save

    sweep_dir = Path(sweep_dir)
    files = sorted(sweep_dir.glob("*/metrics.json"))
    fig, ax = plt.subplots(figsize=(11, 5.5))
    # tab20 has 20 distinct colours: the default cycle's 10 repeat in larger sweeps.
    ax.set_prop_cycle(color=plt.cm.tab20(np.linspace(0, 1, 20))[: max(len(files), 1)])
    for metrics_file in files:
        metrics = json.loads(metrics_file.read_text())
        finite = [(s, v) for s, v in zip(metrics["loss_steps"], metrics["losses"]) if math.isfinite(v)]
        if finite:
            ax.plot(*zip(*finite), marker=".", label=metrics_file.parent.name)
    ax.set(yscale="log", xlabel="step", ylabel="training loss (window mean)", title=f"sweep {sweep_dir.name}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return show_or_save(fig, sweep_dir / "losses.png" if path is None else path, "losses.png")


def run_sweep(base: Config, overrides: list[dict], sweep_dir, jobs: int = 1) -> list[dict]:
    """Run every override on top of ``base``; returns the table rows (also written to disk)."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    planned = {}
    for change in overrides:
        name = run_name(change)
        config = base.replace(**change, out_dir=str(sweep_dir), run_name=name, progress=False)
        planned[name] = config  # validated here, in the parent: a typo fails before any run starts
    (sweep_dir / "sweep.json").write_text(json.dumps(
        {"base": base.to_dict(), "overrides": overrides, "jobs": jobs}, indent=2), encoding="utf-8")

    rows, todo = {}, []
    for name, config in planned.items():
        done = row_from_run_dir(sweep_dir / name)
        if done is not None and done["status"] != "interrupted":
            rows[name] = done
            print(f"[skip] {name}: finished before (test acc {done['test_acc']:.4f})")
        else:
            todo.append(name)
    started = time.perf_counter()

    def record(name, row):
        rows[name] = row
        write_table(list(rows.values()), sweep_dir)
        print(f"[{len(rows)}/{len(planned)}] {name}: {row['status']}, test acc {row['test_acc']:.4f}, "
              f"{row['wall_seconds']:.0f}s" + (f" ({row['error']})" if row["status"] == "failed" else ""),
              flush=True)

    if jobs <= 1:  # one at a time, in this process: no start-up cost, no __main__ guard needed
        for name in todo:
            record(name, _run_one(planned[name].to_dict(), str(sweep_dir / name)))
    else:
        # "spawn": a fresh interpreter per worker; forking a process that has Paddle loaded is unsafe.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_die_with_parent) as pool:
            futures = {pool.submit(_run_one, planned[n].to_dict(), str(sweep_dir / n)): n for n in todo}
            for future in as_completed(futures):
                try:
                    row = future.result()
                except BrokenProcessPool as e:
                    raise CourseError(
                        "the sweep's worker processes could not start or died. A script that calls "
                        "run_sweep with jobs > 1 must do so under `if __name__ == \"__main__\":` (worker "
                        "processes import the script); otherwise use jobs=1. Finished runs are kept: "
                        f"run the sweep again to continue. ({e})") from None
                record(futures[future], row)
    write_table(list(rows.values()), sweep_dir)
    if any((sweep_dir / n / "metrics.json").exists() for n in planned):
        plot_sweep(sweep_dir)
    print(f"sweep of {len(planned)} runs ({len(todo)} run now, {jobs} at a time) took "
          f"{time.perf_counter() - started:.0f}s; table: {sweep_dir / 'results.md'}")
    return [rows[n] for n in planned]
