"""seeds.csv rows from seed sweeps of homework 2-3's settings: the tolerance of course/homework/hw2_3.py.

    python -m course sweep --optimizer momentum,adagrad --lr 0.01 --seed 0,1,2 --schedule constant \
        --num_epochs 2 --jobs 2 --sweep_dir runs/hw23-seeds-a
    python -m course sweep --optimizer rmsprop,adam --lr 0.001 --seed 0,1,2 --schedule constant \
        --num_epochs 2 --jobs 2 --sweep_dir runs/hw23-seeds-b
    python docs/sweeps/homework-2-3/seeds_from_sweep.py runs/hw23-seeds-a runs/hw23-seeds-b > course/homework/data/2-3/seeds.csv

One row per run: the setting (optimizer and learning rate), its seed and its validation accuracy after
the last epoch, the number the homework ranks by. ``hw2_3.seed_spread`` pools the variance within each
setting, so settings that differ in mean do not inflate the spread.
"""
import csv
import json
import sys
from pathlib import Path


def main(sweep_dirs):
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["setting", "seed", "epoch", "acc", "source"])
    for sweep_dir in map(Path, sweep_dirs):
        with open(sweep_dir / "results.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            if row["status"] != "ok":
                raise SystemExit(f"{sweep_dir}: run {row['run']!r} did not finish (status {row['status']!r}); "
                                 "run the same sweep command again to finish it")
            config = json.loads((sweep_dir / row["run"] / "config.json").read_text(encoding="utf-8"))
            writer.writerow([f"{config['optimizer']} {config['lr']:g}", config["seed"], config["num_epochs"],
                             row["val_acc"], f"python -m course sweep ... --sweep_dir {sweep_dir.as_posix()}"])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
