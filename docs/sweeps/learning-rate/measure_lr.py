"""Notebook 2.6.1, section 2, in full mode: SGD at lr 0.01 and 0.1 from the same initial weights.

The notebook's full-mode setting (the course CNN, seed 0, SGD, batch 64, 2 epochs on train50k, the loss
logged as the mean of every 100 batches, validation on the 10,000 validation images) for the two rates
whose comparison the notebook discusses: which ends lower, and what the larger rate costs at the start
(first logged loss) and in dead conv2 channels (of 500 validation images). Writes results.md here.

    python docs/sweeps/learning-rate/measure_lr.py
"""
import platform
import time
from pathlib import Path

import course  # noqa: F401  (before paddle: Paddle 2.6's bundled zlib)
import paddle
from course import MNIST, History, NaNGuard, SameStart, evaluate, find_dead_units, fit, make_loader, make_optimizer, set_seed

HERE = Path(__file__).resolve().parent


def main():
    train_loader = make_loader("train50k", 64, seed=0)
    val_loader = make_loader("val", 1000)
    X_probe = next(iter(val_loader))[0][:500]
    set_seed(0)
    fresh_model = SameStart(MNIST)
    rows = []
    for lr in (0.01, 0.1):
        model = fresh_model()
        history = fit(model, train_loader, make_optimizer("sgd", lr, model.parameters()), 2,
                      callbacks=[History(100), NaNGuard()])
        val = evaluate(model, val_loader)
        dead = len(find_dead_units(model, X_probe)["conv2"]) / model.conv2.weight.shape[0]
        rows.append((lr, val["loss"], val["acc"], history.losses[0], history.losses[-1], dead))
        print(rows[-1], flush=True)
    lines = [f"Measured {time.strftime('%Y-%m-%d')}, Paddle {paddle.__version__}, {platform.machine()}, "
             "`python docs/sweeps/learning-rate/measure_lr.py` (notebook 2.6.1, section 2, full mode).", "",
             "| lr | val loss | val acc | first logged loss | last logged loss | dead conv2 channels |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {lr} | {vl:.4f} | {va:.4f} | {first:.4f} | {last:.4f} | {dead:.0%} |"
              for lr, vl, va, first, last, dead in rows]
    (HERE / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
