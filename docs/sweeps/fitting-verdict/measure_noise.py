"""Seed noise of the validation-loss curve: the thresholds of course.fitting_verdict come from this.

    python docs/sweeps/fitting-verdict/measure_noise.py [--seeds 0,1,2] [--val_subsets 1000,0] > course/measured/fitting_verdict_seeds.csv

Trains three small configurations once per seed and validation subset and prints one CSV row per epoch:
the running training loss / accuracy (``History``), the end-of-epoch weights evaluated on the same
training images (``TrainSetEval``), and the validation loss / accuracy.

- ``tiny256``: the first 256 training images, batch 32, Adam 0.002, 15 epochs (notebook 2.8.3's
  over-fitting example): memorizes its training set, the validation loss turns up.
- ``hw200``: homework 2-8's run (200 images, batch 16, Adam 0.002, 20 epochs).
- ``small2000``: the first 2,000 training images, batch 64, Adam 0.001, 8 epochs (2.8.3's smoke-mode run,
  trained longer): learns and levels off.

``course.diagnose.measured_noise()`` reads the file back and derives ``sigma_step``.
"""
import argparse
import csv
import sys
import time

from course import MNIST, TrainSetEval, fit, make_loader, make_optimizer, set_seed

CONFIGS = {"tiny256": dict(subset=256, batch_size=32, lr=0.002, epochs=15),
           "hw200": dict(subset=200, batch_size=16, lr=0.002, epochs=20),
           "small2000": dict(subset=2000, batch_size=64, lr=0.001, epochs=8)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--val_subsets", default="1000,0", help="0 = all 10,000 validation images")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    writer = csv.writer(sys.stdout)
    writer.writerow(["config", "val_subset", "seed", "epoch", "train_loss", "train_acc", "train_eval_loss",
                     "train_eval_acc", "val_loss", "val_acc"])
    for name in args.configs.split(","):
        c = CONFIGS[name]
        for val_subset in [int(v) for v in args.val_subsets.split(",")]:
            val_loader = make_loader("val", 1000, subset=val_subset)
            for seed in [int(s) for s in args.seeds.split(",")]:
                started = time.perf_counter()
                train_loader = make_loader("train50k", c["batch_size"], seed=seed, subset=c["subset"])
                train_eval = make_loader("train50k", 1000, train=False, subset=c["subset"])
                set_seed(seed)
                model = MNIST()
                history = fit(model, train_loader, make_optimizer("adam", c["lr"], model.parameters()), c["epochs"],
                              val_loader=val_loader, callbacks=[TrainSetEval(train_eval)])
                for row in history.epochs:
                    writer.writerow([name, val_subset, seed, row["epoch"], row["train_loss"], row["train_acc"],
                                     row["train_eval_loss"], row["train_eval_acc"], row["val_loss"], row["val_acc"]])
                sys.stdout.flush()
                print(f"{name} val_subset {val_subset} seed {seed}: {time.perf_counter() - started:.0f}s",
                      file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
