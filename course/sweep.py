"""Sweeps: a grid of config overrides -> one run each (in parallel worker processes), a results
table (CSV and Markdown), overlaid loss curves, and one VisualDL sub-run per run.

    overrides = grid(optimizer=["sgd", "adam"], lr=[0.001, 0.01])
    rows = run_sweep(Config(num_epochs=1), overrides, "runs/sweep-opt", jobs=2)

Each run is ``train_run`` in its own directory ``<sweep_dir>/<name>``, named after what it
changes (``optimizer-adam_lr-0.01``). Runs are independent processes with their own seed, so
the results equal a sequential run's. A finished run (its ``metrics.json`` exists) is skipped
when the sweep is started again; an unfinished one resumes from its checkpoint. A run that
diverges is recorded as ``diverged``; one that raises is recorded as ``failed`` with its error; one that
finishes with its training accuracy at chance level (``course.metrics.at_chance_level``) is
``stalled``; either way the sweep goes on. Each row carries the settings its run changes, so
``row["lr"]`` needs no parsing of the run's name. The table is rewritten after every run, so an
interrupted sweep loses nothing that finished.
"""
from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import multiprocessing
import platform
import shutil
import sys
import time
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from .config import Config, field_types
from .errors import CourseError
from .rundir import METRICS, RunDir

# A finished run is "stalled" when, after at least this many steps (a short smoke run has not had the
# chance to learn), its final training accuracy is still at chance level (course.metrics.at_chance_level).
STALLED_AFTER_STEPS = 150
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


def _row(name: str, metrics: dict | None, status: str, error: str = "", settings: dict | None = None) -> dict:
    """A table row: the run's name, the settings it changes (``settings``), then its results."""
    epochs = (metrics or {}).get("epochs") or [{}]
    return {"run": name, **(settings or {}), "status": status,
            "final_train_loss": epochs[-1].get("train_loss", math.nan),
            "val_acc": epochs[-1].get("val_acc", math.nan),
            "test_acc": (metrics or {}).get("test", {}).get("acc", math.nan),
            "wall_seconds": (metrics or {}).get("wall_seconds", math.nan), "error": error}


def row_from_run_dir(run_dir, keys=()) -> dict | None:
    """The table row of a finished run, or None if it has not finished.

    ``keys``: the settings the row carries (a sweep's swept names), read from the run's own
    saved config, so that nobody has to parse them back out of the run's name.
    """
    run_dir = RunDir(run_dir)
    metrics = run_dir.read_metrics()
    if metrics is None:
        return None
    status = "diverged" if metrics.get("diverged") else "interrupted" if metrics.get("stop_reason") else "ok"
    error = metrics.get("stop_reason", "")
    train_acc = ((metrics.get("epochs") or [{}])[-1]).get("train_acc", math.nan)
    steps = max(metrics.get("loss_steps") or [0])
    from .metrics import at_chance_level  # imports Paddle: here, not at the top (see _run_one)

    if status == "ok" and at_chance_level(train_acc) and steps >= STALLED_AFTER_STEPS:
        # A finite loss stuck near ln 10 is no NaN, so nothing stopped the run: say it here, or a
        # dead network (Adam at lr 0.01 does this to the course CNN) reads as a finished "ok".
        status, error = "stalled", (f"final training accuracy {train_acc:.4f} is at chance level (10 classes): "
                                    "the network did not learn; the learning rate is too large (dead "
                                    "ReLUs, loss stuck at ln 10) or too small")
    settings = {key: metrics.get("config", {}).get(key) for key in keys}
    return _row(run_dir.name, metrics, status, error, settings)


def _die_with_parent() -> None:
    """Worker initializer: on Linux, ask the kernel to kill this worker when the sweep's process dies.
    Without it, a sweep stopped with ``kill`` (not Ctrl-C, which reaches the whole process group)
    leaves its workers training on, and picking up the runs queued for them. A killed worker's run is
    resumed from its checkpoint when the sweep is started again (checkpoints are written atomically).

    SIGKILL, not SIGTERM: Paddle installs its own SIGTERM handler, which prints a C++ "FatalError"
    report; in CI (Paddle 2.6.2, busy machine) one worker stayed alive after the sweep was killed,
    consistent with that handler blocking. A worker has nothing to clean up that SIGTERM would allow
    (Python's default for SIGTERM runs no cleanup either)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))


def _run_one(config_dict: dict, run_dir: str, keys=()) -> dict:
    """Worker: one run, its printout in ``<run_dir>.log``. Never raises: failures become rows."""
    # Paddle loads in the workers here (this module imports nothing of Paddle at its top, so unpickling
    # this function in a spawned worker does not load it). Its "No ccache found" import warning (about
    # compiling custom C++ operators, which this course never does) is hidden around this import alone,
    # as `import course` does (course/__init__.py): a notebook running a sweep shows no warning.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No ccache found")
        from .run import train_run

    run_dir = RunDir(run_dir)
    resume = run_dir.path if run_dir.checkpoint.exists() else None
    if resume is None and run_dir.path.exists():
        shutil.rmtree(run_dir.path)  # started but no epoch finished: start over
    with open(f"{run_dir}.log", "a", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            train_run(Config(**config_dict), resume=resume)
        except Exception as e:  # recorded, not raised: the sweep goes on
            traceback.print_exc()
            return _row(run_dir.name, None, "failed", f"{type(e).__name__}: {e}",
                        {key: config_dict[key] for key in keys})
    return row_from_run_dir(run_dir, keys)


def write_table(rows: list[dict], sweep_dir: Path) -> None:
    """``results.csv`` and ``results.md`` in ``sweep_dir`` (rows sorted by test accuracy).

    The CSV has a column per swept setting after ``run`` (e.g. ``optimizer, lr``)."""
    rows = sorted(rows, key=lambda r: -r["test_acc"] if r["test_acc"] == r["test_acc"] else math.inf)
    settings = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in COLUMNS]
    with open(sweep_dir / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[COLUMNS[0], *settings, *COLUMNS[1:]])
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| run | status | final train loss | val acc | test acc | wall s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['status']} | {r['final_train_loss']:.4f} | {r['val_acc']:.4f} "
                     f"| {r['test_acc']:.4f} | {r['wall_seconds']:.0f} |")
    (sweep_dir / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_results_page(path, command: str, columns, rows, note: str = "", footer=()) -> str:
    """A measurement script's record (``docs/sweeps/<name>/results.md``): a first line saying when, on
    which Paddle and machine and by which ``command`` it was measured (then ``note``), a Markdown table
    (``rows``: one list of already formatted cells per row) and ``footer`` lines. Writes it and returns it."""
    import paddle   # only here: importing course.sweep does not load Paddle

    head = (f"Measured {time.strftime('%Y-%m-%d')}, Paddle {paddle.__version__}, {platform.machine()}, "
            f"`{command}`." + (f" {note}" if note else ""))
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
             *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]
    text = "\n".join([head, "", *table, *footer]) + "\n"
    Path(path).write_text(text, encoding="utf-8")
    return text


def read_table(path, overrides=()) -> list[dict]:
    """The rows of a sweep's ``results.csv``, typed as ``run_sweep`` returns them.

    Numbers are numbers (an empty cell is NaN) and each setting column has its ``Config`` type.
    A table written before rows carried their settings has no setting columns: give the sweep's
    ``overrides`` and each row whose name is ``run_name(change)`` (its keys in any order) gets
    that change's settings.
    """
    numeric = ("final_train_loss", "val_acc", "test_acc", "wall_seconds")
    types = field_types()
    convert = {"float": float, "int": int, "str": str, "bool": lambda v: v == "True"}
    # A run's name lists its changes in the order they were given: accept any order.
    changes = {run_name(dict(order)): change for change in overrides
               for order in itertools.permutations(change.items())}
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row = {"run": raw["run"], **changes.get(raw["run"], {})}
            for key, value in raw.items():
                if key in numeric:
                    row[key] = float(value) if value not in ("", None) else math.nan
                elif key in types and value not in ("", None):
                    row[key] = convert[types[key]](value)
                elif key not in row:
                    row[key] = value
            rows.append(row)
    return rows


def plot_sweep(sweep_dir, path=None):
    """Every run's logged training loss on one figure (log scale), from the runs' metrics.json."""
    import matplotlib.pyplot as plt

    from .plots import show_or_save  # loads matplotlib: only when plotting

    sweep_dir = Path(sweep_dir)
    files = sorted(sweep_dir.glob(f"*/{METRICS}"))
    fig, ax = plt.subplots(figsize=(11, 5.5))
    # tab20 has 20 distinct colours: the default cycle's 10 repeat in larger sweeps.
    ax.set_prop_cycle(color=plt.cm.tab20(np.linspace(0, 1, 20))[: max(len(files), 1)])
    for metrics_file in files:
        metrics = RunDir(metrics_file.parent).read_metrics()
        finite = [(s, v) for s, v in zip(metrics["loss_steps"], metrics["losses"]) if math.isfinite(v)]
        if finite:
            ax.plot(*zip(*finite), marker=".", label=metrics_file.parent.name)
    ax.set(yscale="log", xlabel="step", ylabel="training loss (window mean)", title=f"sweep {sweep_dir.name}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return show_or_save(fig, sweep_dir / "losses.png" if path is None else path, "losses.png")


def run_sweep(base: Config, overrides: list[dict], sweep_dir, jobs: int = 1) -> list[dict]:
    """Run every override on top of ``base``; returns the table rows (also written to disk).

    Each row carries the settings its run changes (``row["lr"]``, ``row["optimizer"]`` ...: the
    keys of the overrides), then ``status``, ``final_train_loss``, ``val_acc``, ``test_acc`` ...
    """
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    planned = {}
    keys = tuple(dict.fromkeys(key for change in overrides for key in change))  # every swept setting
    for change in overrides:
        name = run_name(change)
        config = base.replace(**change, out_dir=str(sweep_dir), run_name=name, progress=False)
        planned[name] = config  # validated here, in the parent: a typo fails before any run starts
    (sweep_dir / "sweep.json").write_text(json.dumps(
        {"base": base.to_dict(), "overrides": overrides, "jobs": jobs}, indent=2), encoding="utf-8")

    rows, todo = {}, []
    for name in planned:
        done = row_from_run_dir(sweep_dir / name, keys)
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
            record(name, _run_one(planned[name].to_dict(), str(sweep_dir / name), keys))
    else:
        # "spawn": a fresh interpreter per worker; forking a process that has Paddle loaded is unsafe.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_die_with_parent) as pool:
            futures = {pool.submit(_run_one, planned[n].to_dict(), str(sweep_dir / n), keys): n for n in todo}
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
    if any(RunDir(sweep_dir / n).finished() for n in planned):
        plot_sweep(sweep_dir)
    print(f"sweep of {len(planned)} runs ({len(todo)} run now, {jobs} at a time) took "
          f"{time.perf_counter() - started:.0f}s; table: {sweep_dir / 'results.md'}")
    return [rows[n] for n in planned]
