"""Notebook 2.6.1, sections 2 and 4, in full mode: SGD at lr 0.01, 0.1 and the LR range test's suggestion.

The notebook's full-mode setting (the course CNN, seed 0, SGD, batch 64, 2 epochs on train50k, the loss
logged as the mean of every 100 batches, validation on the 10,000 validation images) for the two rates
whose comparison the notebook discusses: which ends lower, and what the larger rate costs at the start
(first logged loss) and in dead conv2 channels (of 500 validation images); then the notebook's LR range
test (1e-4 to 10 in 200 steps) and the same training at its suggestion. Writes results.md here.

    python docs/sweeps/learning-rate/measure_lr.py
"""
import platform
import time
from pathlib import Path

import course  # noqa: F401  (before paddle: Paddle 2.6's bundled zlib)
import paddle
from course.lr_finder import lr_range_test
from course import MNIST, History, NaNGuard, SameStart, evaluate, find_dead_units, fit, make_loader, make_optimizer, set_seed

HERE = Path(__file__).resolve().parent


def main():
    train_loader = make_loader("train50k", 64, seed=0)
    val_loader = make_loader("val", 1000)
    X_probe = next(iter(val_loader))[0][:500]
    set_seed(0)
    fresh_model = SameStart(MNIST)
    rows = []

    def train(lr, label):
        model = fresh_model()
        history = fit(model, train_loader, make_optimizer("sgd", lr, model.parameters()), 2,
                      callbacks=[History(100), NaNGuard()])
        val = evaluate(model, val_loader)
        dead = len(find_dead_units(model, X_probe)["conv2"]) / model.conv2.weight.shape[0]
        rows.append((label, val["loss"], val["acc"], history.losses[0], history.losses[-1], dead))
        print(rows[-1], flush=True)

    train(0.01, "0.01")
    train(0.1, "0.1")
    # as in the notebook: the range test on the same loader, from the same weights, after those runs
    model = fresh_model()
    finder = lr_range_test(model, train_loader, make_optimizer("sgd", 0.01, model.parameters()),
                           start_lr=1e-4, end_lr=10.0, num_steps=200)
    train(finder.suggestion, f"suggested: {finder.suggestion:.3g} (min_loss_lr {finder.min_loss_lr:.3g})")
    lines = [f"Measured {time.strftime('%Y-%m-%d')}, Paddle {paddle.__version__}, {platform.machine()}, "
             "`python docs/sweeps/learning-rate/measure_lr.py` (notebook 2.6.1, sections 2 and 4, full mode).", "",
             "| lr | val loss | val acc | first logged loss | last logged loss | dead conv2 channels |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {lr} | {vl:.4f} | {va:.4f} | {first:.4f} | {last:.4f} | {dead:.0%} |"
              for lr, vl, va, first, last, dead in rows]
    (HERE / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
