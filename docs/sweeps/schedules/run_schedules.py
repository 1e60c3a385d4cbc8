"""Notebook 2.6.4, section 2, in full mode, repeated over seeds: does "large first, small later" win?

Each of the seven schedules of ``course.make_scheduler`` trains the course CNN exactly as 2.6.4 does
(Momentum 0.9, peak lr 0.03, batch 64, 2 epochs on the first 25,000 training images, validation on
the 10,000 validation images), once per seed (the seed sets the initial weights and the shuffling).
Writes ``results.csv`` (one row per run) and ``results.md`` (mean and spread per schedule, and each
seed's ranking) next to this file.

    python docs/sweeps/schedules/run_schedules.py            # seeds 0 1 2
    python docs/sweeps/schedules/run_schedules.py --seeds 0  # one seed
"""
import argparse
import csv
import platform
import statistics
import time
from pathlib import Path

import course  # noqa: F401  (before paddle: Paddle 2.6's bundled zlib)
from course import MNIST, History, LRSchedule, NaNGuard, fit, make_loader, make_optimizer, make_scheduler, set_seed
from course.config import SCHEDULES

HERE = Path(__file__).resolve().parent
PEAK, EPOCHS, SUBSET = 0.03, 2, 25000


def train(name: str, seed: int, val_loader) -> dict:
    set_seed(seed)
    loader = make_loader("train50k", 64, seed=seed, subset=SUBSET)
    net = MNIST()
    sched = make_scheduler(name, PEAK, len(loader), EPOCHS)
    optimizer = make_optimizer("momentum", sched, net.parameters(), momentum=0.9)
    callbacks = [History(50), NaNGuard()] + ([] if isinstance(sched, float) else [LRSchedule(sched)])
    started = time.perf_counter()
    h = fit(net, loader, optimizer, EPOCHS, val_loader=val_loader, callbacks=callbacks)
    e1, e2 = h.epochs
    return {"schedule": name, "seed": seed, "val_acc_epoch1": round(e1["val_acc"], 4),
            "val_acc": round(e2["val_acc"], 4), "val_loss": round(e2["val_loss"], 4),
            "train_loss": round(e2["train_loss"], 4), "diverged": h.diverged,
            "seconds": round(time.perf_counter() - started, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--summary-only", action="store_true", help="rewrite results.md from results.csv")
    args = parser.parse_args()
    if args.summary_only:
        return summary_from_csv()
    val_loader = make_loader("val", 1000)
    rows = []
    for seed in args.seeds:
        for name in SCHEDULES:
            rows.append(train(name, seed, val_loader))
            print(rows[-1], flush=True)
            write_csv(rows)   # after every run: an interrupted sweep keeps what it measured
    write_summary(rows, args.seeds)


def write_csv(rows):
    with open(HERE / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def summary_from_csv():
    """Rewrite results.md from results.csv (e.g. after an interrupted sweep: the seeds it finished)."""
    with open(HERE / "results.csv", encoding="utf-8") as f:
        rows = [dict(r, seed=int(r["seed"]), val_acc=float(r["val_acc"])) for r in csv.DictReader(f)]
    seeds = sorted({r["seed"] for r in rows if sum(x["seed"] == r["seed"] for x in rows) == len(SCHEDULES)})
    write_summary([r for r in rows if r["seed"] in seeds], seeds)


def write_summary(rows, seeds):
    import paddle

    acc = {name: [r["val_acc"] for r in rows if r["schedule"] == name] for name in SCHEDULES}
    mean = {name: statistics.mean(v) for name, v in acc.items()}
    lines = [f"Measured {time.strftime('%Y-%m-%d')}, Paddle {paddle.__version__}, {platform.processor() or platform.machine()}, "
             f"seeds {', '.join(map(str, seeds))}: `python docs/sweeps/schedules/run_schedules.py`.", "",
             "| schedule | mean val acc | min | max | " + " | ".join(f"rank, seed {s}" for s in seeds) + " |",
             "|---|---|---|---|" + "---|" * len(seeds)]
    ranks = {}
    for s in seeds:
        by_seed = {r["schedule"]: r["val_acc"] for r in rows if r["seed"] == s}
        order = sorted(by_seed, key=by_seed.get, reverse=True)
        ranks[s] = {name: order.index(name) + 1 for name in order}
    for name in sorted(SCHEDULES, key=mean.get, reverse=True):
        lines.append(f"| {name} | {mean[name]:.4f} | {min(acc[name]):.4f} | {max(acc[name]):.4f} | "
                     + " | ".join(str(ranks[s][name]) for s in seeds) + " |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
