"""The README's table, from seeds.csv: python docs/sweeps/fitting-verdict/table.py [seeds.csv]

One row per run: the epoch of the lowest validation loss, how far the last epoch ends above it, the relative
epoch-to-epoch jitter after it, validation accuracy at the lowest loss and at the end, and the first epoch's
running vs evaluated training accuracy. Then sigma_step as course.diagnose.measured_noise() derives it.
"""
import csv
import statistics
import sys
from pathlib import Path

from course.diagnose import measured_noise

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "course" / "measured" / "fitting_verdict_seeds.csv"
runs = {}
with open(path, newline="", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        runs.setdefault((row["config"], int(row["val_subset"]), int(row["seed"])), []).append(row)
print("| config | val images | seed | epochs | lowest val loss (epoch) | last vs lowest | sd of steps after it "
      "| val acc at lowest / last | epoch 1 train acc: running / evaluated |")
print("|---|---:|---:|---:|---|---:|---:|---|---|")
for (config, val_subset, seed), rows in runs.items():
    loss = [float(r["val_loss"]) for r in rows]
    acc = [float(r["val_acc"]) for r in rows]
    low = loss.index(min(loss))
    steps = [loss[i + 1] / loss[i] - 1 for i in range(low, len(loss) - 1)]
    sd = f"{statistics.stdev(steps):.3f}" if len(steps) >= 2 else "-"
    print(f"| {config} | {val_subset or 10000} | {seed} | {len(rows)} | {loss[low]:.4f} ({low + 1}) | "
          f"{loss[-1] / loss[low] - 1:+.1%} | {sd} | {acc[low]:.4f} / {acc[-1]:.4f} | "
          f"{float(rows[0]['train_acc']):.4f} / {float(rows[0]['train_eval_acc']):.4f} |")
noise = measured_noise(str(path))
print(f"\nsigma_step = {noise['sigma_step']:.4f} (pooled over {noise['runs']} runs); "
      f"2 * sigma_step = {2 * noise['sigma_step']:.4f}")
