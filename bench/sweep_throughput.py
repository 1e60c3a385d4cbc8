"""Sweep throughput: runs per hour with parallel worker processes vs one run after another.

The same small grid (peak lr 0.003 / 0.005 x batch 64 / 128, the main job's other settings,
1 epoch, no VisualDL) through ``course.sweep.run_sweep`` with ``jobs=1`` (in this process, one
after another) and ``jobs=N`` (N worker processes, default 2, each started fresh: their start-up
counts). With ``--reps 2`` the order is sequential, parallel, parallel, sequential (medians), so
a drift in the machine's load hits both alike.

    python bench/sweep_throughput.py           # 4 one-epoch runs each way (about 6 minutes on 2 cores)
    python bench/sweep_throughput.py --quick   # 2,000 training / 1,000 test images
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

from _common import header, md_table, median, parse_args, write_record

NAME, TITLE = "sweep_throughput", "Sweep throughput: parallel workers vs one run after another"


def timed_sweep(base, overrides, sweep_dir: Path, jobs: int) -> tuple[float, list[dict]]:
    from course.sweep import run_sweep

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rows = run_sweep(base, overrides, sweep_dir, jobs=jobs)
    seconds = time.perf_counter() - started
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        raise RuntimeError(f"sweep runs failed: {failed}")
    return seconds, rows


def main():
    def add_arguments(parser):
        parser.add_argument("--jobs", type=int, default=2, help="worker processes of the parallel sweep (default 2)")
        parser.add_argument("--reps", type=int, default=1, choices=(1, 2),
                            help="1: sequential then parallel; 2: sequential, parallel, parallel, sequential")

    args = parse_args(NAME, __doc__.splitlines()[0], add_arguments)
    started = time.perf_counter()
    machine = header(TITLE, args.quick)

    from course import Config
    from course.sweep import grid

    base = Config(num_epochs=1, visualdl=False, progress=False)
    if args.quick:
        base = base.replace(train_subset=2000, eval_subset=1000)
    overrides = grid(lr=[0.003, 0.005], batch_size=[64, 128])
    order = [1, args.jobs] if args.reps == 1 else [1, args.jobs, args.jobs, 1]
    seconds = {1: [], args.jobs: []}
    per_run = {1: [], args.jobs: []}
    print(f"grid of {len(overrides)} runs ({', '.join(map(str, overrides))}), "
          f"{base.num_epochs} epoch each{', first 2,000 images' if args.quick else ''}")
    with tempfile.TemporaryDirectory() as tmp:
        for i, jobs in enumerate(order):
            wall, rows = timed_sweep(base, overrides, Path(tmp) / f"sweep{i}-jobs{jobs}", jobs)
            seconds[jobs].append(wall)
            per_run[jobs] += [r["wall_seconds"] for r in rows]
            print(f"  jobs={jobs}: {wall:.1f}s for {len(rows)} runs = {len(rows) / wall * 3600:.0f} runs/hour "
                  f"(each run {median([r['wall_seconds'] for r in rows]):.1f}s median)", flush=True)

    n = len(overrides)
    seq, par = median(seconds[1]), median(seconds[args.jobs])
    speedup = seq / par
    print(f"\nruns per hour: one after another {n / seq * 3600:.0f}, {args.jobs} workers {n / par * 3600:.0f} "
          f"({speedup:.2f}x); a single run takes {median(per_run[1]):.1f}s alone and "
          f"{median(per_run[args.jobs]):.1f}s beside {args.jobs - 1} other(s) "
          f"({median(per_run[args.jobs]) / median(per_run[1]):.2f}x)")
    results = {"grid": overrides, "base": base.to_dict(), "jobs": args.jobs, "order": order,
               "sweep_seconds": {str(k): v for k, v in seconds.items()},
               "run_seconds": {str(k): v for k, v in per_run.items()},
               "runs_per_hour": {"sequential": n / seq * 3600, "parallel": n / par * 3600},
               "speedup": speedup}
    rows = [["one after another (jobs=1)", f"{seq:.1f}", f"{n / seq * 3600:.0f}", f"{median(per_run[1]):.1f}"],
            [f"{args.jobs} worker processes (jobs={args.jobs})", f"{par:.1f}", f"{n / par * 3600:.0f}",
             f"{median(per_run[args.jobs]):.1f}"]]
    section = (f"`course.sweep.run_sweep` over the same {n}-run grid (peak lr 0.003 / 0.005 x batch 64 / 128, "
               f"{base.num_epochs} epoch, no VisualDL{', 2,000 training images' if args.quick else ''}); "
               f"the parallel sweep's worker start-up is counted. Speed-up {speedup:.2f}x.\n\n"
               + md_table(["how", "sweep seconds", "runs per hour", "seconds per run (median)"], rows))
    headline = [[f"sweep throughput: {args.jobs} workers vs one after another",
                 f"{n / par * 3600:.0f} vs {n / seq * 3600:.0f} runs/hour ({speedup:.2f}x)"]]
    write_record(args, NAME, TITLE, machine, results, headline, section, started,
                 extra_command=f"--jobs {args.jobs}" if args.jobs != 2 else "")


if __name__ == "__main__":
    main()
