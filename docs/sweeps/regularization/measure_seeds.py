"""Seed spread of the regularization sweep's setting: how much do two seeds of the same penalty differ?

    python docs/sweeps/regularization/measure_seeds.py [--seeds 0,1,2] [--decays 0,0.01] > seeds.csv

The sweep's setting (the first 1,000 training images, batch 32, Adam 0.002 constant, 25 epochs, L2 on every
parameter) trained once per (weight decay, seed), the way notebook 2.8.4 trains it (``course.fit``), and
evaluated once at the end on all 10,000 validation images and on the 1,000 training images.
"""
import argparse
import csv
import sys
import time

from course import MNIST, evaluate, fit, make_loader, make_optimizer, set_seed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--decays", default="0,0.01")
    args = parser.parse_args()
    writer = csv.writer(sys.stdout)
    writer.writerow(["weight_decay", "seed", "train_eval_acc", "val_loss", "val_acc"])
    val_loader = make_loader("val", 1000)
    train_eval = make_loader("train50k", 1000, train=False, subset=1000)
    for decay in [float(d) for d in args.decays.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            started = time.perf_counter()
            set_seed(seed)
            model = MNIST()
            fit(model, make_loader("train50k", 32, seed=seed, subset=1000),
                make_optimizer("adam", 0.002, model.parameters(), weight_decay=decay, regularizer="l2"), 25)
            val = evaluate(model, val_loader)
            writer.writerow([decay, seed, evaluate(model, train_eval)["acc"], val["loss"], val["acc"]])
            sys.stdout.flush()
            print(f"weight_decay {decay} seed {seed}: {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
