"""Seed spread of homework 2-8's given run: the tolerances of course/homework/hw2_8.py come from this.

    python docs/sweeps/homework-2-8/measure_seeds.py [--seeds 1,2,3,4,5] [--val_subset 0] > course/homework/data/2-8/seeds.csv

Trains the homework's run (200 training images, batch 16, Adam 0.002 constant, 20 epochs) once per seed
and prints one CSV row per (seed, epoch): training / validation loss and accuracy.
"""
import argparse
import csv
import sys

from course.homework.hw2_8 import train_homework_run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--val_subset", type=int, default=0, help="0 = all 10,000 validation images")
    args = parser.parse_args()
    writer = csv.writer(sys.stdout)
    writer.writerow(["val_subset", "seed", "epoch", "train_loss", "train_acc", "val_loss", "val_acc"])
    for seed in [int(s) for s in args.seeds.split(",")]:
        _, history = train_homework_run(seed=seed, val_subset=args.val_subset)
        for row in history.epochs:
            writer.writerow([args.val_subset, seed, row["epoch"], row["train_loss"], row["train_acc"],
                             row["val_loss"], row["val_acc"]])
        sys.stdout.flush()


if __name__ == "__main__":
    main()
