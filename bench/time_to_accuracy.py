"""Time to accuracy: wall time and epochs to reach 98.5% and 99.0% test accuracy, and the best reached,
for the tutorial's settings and for the recommended ones (``Config()``'s defaults), over 3 seeds.

Each run is the main job (``course.run.train_run``: its callbacks, checkpoint and VisualDL log
included, progress bars off) plus one extra callback that evaluates the 10,000 test images
after every epoch. That evaluation is timed and left out of the run's clock:

* **wall** = seconds from the start of training to the end of the epoch, validation, checkpoint
  and logging included, the extra test evaluations excluded;
* **train** = the training loops alone (first batch to last batch of each epoch).

Runs go ``--jobs`` at a time (default 2) in worker processes, as ``python -m course sweep --jobs 2``
runs them: on a 2-core CPU each run then has one core. A threshold counts as reached at the
first epoch whose test accuracy is at or above it.

    python bench/time_to_accuracy.py            # 6 full runs, 2 at a time (about 15 minutes on 2 cores)
    python bench/time_to_accuracy.py --quick    # 2,000 training / 1,000 test images, 1 epoch
"""
from __future__ import annotations

import contextlib
import math
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from _common import header, md_table, parse_args, spread, write_record

NAME, TITLE = "time_to_accuracy", "Time to accuracy: tutorial settings vs recommended settings"
THRESHOLDS = (0.985, 0.990)


def settings(quick: bool, only: str = "") -> dict:
    """name -> Config overrides. The recommended settings are ``Config()``'s defaults, whatever they are.
    ``only``: a comma list of names to keep (``recommended`` skips the tutorial's 5-epoch runs)."""
    from course import Config

    tutorial = dict(optimizer="adam", lr=0.01, schedule="constant", num_epochs=5, train_split="train")
    Config().replace(**tutorial)  # validated here, before any worker starts
    chosen = {"tutorial": tutorial, "recommended": {}}
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        unknown = sorted(set(names) - set(chosen))
        if unknown:
            raise SystemExit(f"--only: unknown setting(s) {unknown}; choose from {', '.join(chosen)}")
        chosen = {n: chosen[n] for n in names}
    if quick:
        chosen = {name: {**o, "num_epochs": 1, "train_subset": 2000, "eval_subset": 1000}
                  for name, o in chosen.items()}
    return chosen


def describe(config) -> str:
    split = "all 60k" if config.train_split == "train" else "50k (10k validation)"
    subset = f" (first {config.train_subset} only)" if config.train_subset else ""
    return (f"{config.optimizer}, lr {config.lr:g} {config.schedule}, batch {config.batch_size}, "
            f"{config.num_epochs} epoch{'s' if config.num_epochs > 1 else ''}, train on {split}{subset}")


def one_run(config_dict: dict, log_path: str) -> dict:
    """Worker: one main-job run with the per-epoch test evaluation; its printout goes to ``log_path``."""
    from course import Callback, Config, evaluate, make_loader, train_run

    config = Config(**config_dict)

    class TestEveryEpoch(Callback):
        order = 100  # after every other callback has finished the epoch (checkpoint, VisualDL ...)

        def before_fit(self, state):
            self.rows, self.test_seconds = [], 0.0
            self.train_seconds = 0.0
            self.loader = make_loader("test", config.eval_batch_size, subset=config.eval_subset,
                                      data_dir=config.data_dir or None, normalize=config.normalize)
            self.started = time.perf_counter()

        def before_epoch(self, state):
            self.epoch_started = self.last_batch = time.perf_counter()

        def after_batch(self, state):
            self.last_batch = time.perf_counter()

        def after_epoch(self, state):
            now = time.perf_counter()
            row = state.history.epochs[-1]  # History's row of this epoch
            self.train_seconds += self.last_batch - self.epoch_started
            test = evaluate(state.model, self.loader, state.loss_fn)
            spent = time.perf_counter() - now
            self.rows.append({"epoch": state.epoch + 1, "test_acc": test["acc"], "test_loss": test["loss"],
                              "val_acc": None if math.isnan(row["val_acc"]) else row["val_acc"],
                              "wall_seconds": now - self.started - self.test_seconds,
                              "train_seconds": self.train_seconds, "test_eval_seconds": spent})
            self.test_seconds += spent

    recorder = TestEveryEpoch()
    with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        results = train_run(config, extra_callbacks=[recorder])
    return {"epochs": recorder.rows, "final_test_acc": results["test"]["acc"],
            "run_seconds": results["wall_seconds"], "diverged": results["diverged"],
            "stop_reason": results["stop_reason"]}


def reached(epochs: list[dict], threshold: float) -> dict | None:
    return next((row for row in epochs if row["test_acc"] >= threshold), None)


def summarize(runs: list[dict]) -> dict:
    """Per threshold: how many seeds reached it, epochs and seconds (mean, spread); best accuracy."""
    summary = {}
    for threshold in THRESHOLDS:
        hits = [reached(r["epochs"], threshold) for r in runs]
        hits = [h for h in hits if h is not None]
        summary[f"{threshold:.3f}"] = {
            "reached": len(hits), "of": len(runs),
            "epochs": [h["epoch"] for h in hits], "wall_seconds": [h["wall_seconds"] for h in hits],
            "train_seconds": [h["train_seconds"] for h in hits]}
    best = [max(r["epochs"], key=lambda row: row["test_acc"]) if r["epochs"] else None for r in runs]
    summary["best_test_acc"] = [b["test_acc"] if b else float("nan") for b in best]
    summary["best_epoch"] = [b["epoch"] if b else None for b in best]
    summary["final_test_acc"] = [r["final_test_acc"] for r in runs]
    summary["total_wall_seconds"] = [r["epochs"][-1]["wall_seconds"] if r["epochs"] else float("nan")
                                     for r in runs]
    return summary


def main():
    def add_arguments(parser):
        parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
        parser.add_argument("--seeds", type=int, default=3, help="seeds per setting (default 3: 0, 1, 2)")
        parser.add_argument("--only", default="", help="comma list of settings to run: tutorial, recommended "
                                                       "(default both)")

    args = parse_args(NAME, __doc__.splitlines()[0], add_arguments)
    started = time.perf_counter()
    machine = header(TITLE, args.quick)

    from course import Config

    chosen = settings(args.quick, args.only)
    runs = {name: {} for name in chosen}
    with tempfile.TemporaryDirectory() as out:
        planned = []
        for seed in range(args.seeds):  # interleaved, so each pair running together mixes the two settings
            for name, overrides in chosen.items():
                config = Config().replace(**overrides, seed=seed, progress=False, out_dir=out,
                                          run_name=f"{name}-seed{seed}")
                planned.append((name, seed, config))
        for name in chosen:
            config = next(c for n, _, c in planned if n == name)
            print(f"{name}: {describe(config)}")
        print(f"{len(planned)} runs, {args.jobs} at a time ...", flush=True)
        context = multiprocessing.get_context("spawn")  # forking a process with Paddle loaded is unsafe
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = {pool.submit(one_run, config.to_dict(), str(Path(out) / f"{name}-seed{seed}.log")):
                       (name, seed) for name, seed, config in planned}
            for future in as_completed(futures):
                name, seed = futures[future]
                run = runs[name][seed] = future.result()
                accs = " ".join(f"{row['test_acc']:.4f}" for row in run["epochs"])
                print(f"  {name} seed {seed}: test accuracy by epoch {accs}; "
                      f"{run['epochs'][-1]['wall_seconds'] if run['epochs'] else float('nan'):.0f}s"
                      + (f" ({run['stop_reason']})" if run["stop_reason"] else ""), flush=True)

    results = {"jobs": args.jobs, "seeds": args.seeds, "settings": {}}
    rows, seed_rows = [], []
    print()
    for name, overrides in chosen.items():
        config = Config().replace(**overrides)
        ordered = [runs[name][s] for s in sorted(runs[name])]
        summary = summarize(ordered)
        results["settings"][name] = {"description": describe(config), "config": config.to_dict(),
                                     "runs": ordered, "summary": summary}
        cells = []
        for threshold in THRESHOLDS:
            s = summary[f"{threshold:.3f}"]
            cells += [f"{s['reached']}/{s['of']}",
                      spread(s["epochs"], ".1f") if s["epochs"] else "-",
                      spread(s["wall_seconds"], ".0f") if s["wall_seconds"] else "-"]
        best = [100 * a for a in summary["best_test_acc"]]
        rows.append([f"**{name}**: {describe(config)}", *cells, spread(best, ".2f") + " %",
                     spread(summary["total_wall_seconds"], ".0f")])
        print(f"{name} ({describe(config)}):")
        for threshold in THRESHOLDS:
            s = summary[f"{threshold:.3f}"]
            print(f"  {threshold:.1%}: reached by {s['reached']}/{s['of']} seeds; epochs {spread(s['epochs'], '.1f')}; "
                  f"wall s {spread(s['wall_seconds'], '.0f')}; training-loop s {spread(s['train_seconds'], '.0f')}")
        print(f"  best test accuracy {spread(best, '.2f')} % (at epochs {summary['best_epoch']}); "
              f"all epochs: wall s {spread(summary['total_wall_seconds'], '.0f')}")
        for seed, run in zip(sorted(runs[name]), ordered):
            seed_rows.append([name, seed, " / ".join(f"{100 * r['test_acc']:.2f}" for r in run["epochs"]),
                              " / ".join(f"{r['wall_seconds']:.0f}" for r in run["epochs"]),
                              f"{sum(r['test_eval_seconds'] for r in run['epochs']):.1f}"])

    def to99(s):
        return (f"{s['reached']}/{s['of']} seeds reach 99.0%"
                + (f" after {spread(s['epochs'], '.1f')} epochs, {spread(s['wall_seconds'], '.0f')} s"
                   if s["epochs"] else ""))

    summaries = {n: results["settings"][n]["summary"] for n in chosen}
    headline = [[f"time to 99.0% test accuracy, {n} settings ({results['settings'][n]['description']})",
                 to99(summaries[n]["0.990"])] for n in chosen]
    headline.append([f"best test accuracy, {' vs '.join(chosen)}",
                     " vs ".join(f"{spread([100 * a for a in summaries[n]['best_test_acc']], '.2f')} %"
                                 for n in chosen)])
    threshold_header = []
    for threshold in THRESHOLDS:
        threshold_header += [f"reached {threshold:.1%}", f"epochs to {threshold:.1%}", f"wall s to {threshold:.1%}"]
    section = (f"{args.seeds} seeds per setting, {args.jobs} runs at a time (one core each on a 2-core CPU). "
               "Test accuracy over the test set after every epoch; *wall s* runs from the start of training "
               "to the end of that epoch (validation, checkpoint and VisualDL logging included, the extra "
               "test evaluations excluded). Figures are mean ± standard deviation (min-max) over the seeds "
               "that reached the threshold.\n\n"
               + md_table(["settings", *threshold_header, "best test accuracy", "wall s, all epochs"], rows)
               + "\n\nPer run: test accuracy (%) and wall seconds at the end of each epoch, and the time "
               "spent on the extra test evaluations.\n\n"
               + md_table(["settings", "seed", "test accuracy by epoch", "wall s by epoch", "test eval s"],
                          seed_rows))
    extra = " ".join(([f"--jobs {args.jobs}"] if args.jobs != 2 else []) + ([f"--only {args.only}"] if args.only else []))
    write_record(args, NAME, TITLE, machine, results, headline, section, started, extra_command=extra)


if __name__ == "__main__":
    main()
