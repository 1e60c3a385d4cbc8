"""Notebook 2.6.4, section 3, in full and smoke mode: batch 100 with lr 0.01, 0.05, 0.1, 0.2 for one epoch.

The same training as the notebook (SGD, seed 0, the course CNN, one epoch of train50k; smoke mode: its
first 2,000 images; validation on the 10,000 validation images, smoke: the first 1,000), plus lr 0.2,
and the loss of the first batch before and after the first update at each rate. Writes results.md here.

    python docs/sweeps/batch-size-lr/measure_batch_lr.py
"""
from pathlib import Path

import course  # noqa: F401  (before paddle: Paddle 2.6's bundled zlib)
import paddle
import paddle.nn.functional as F
from course import MNIST, NaNGuard, fit, make_loader, make_optimizer, set_seed
from course.sweep import write_results_page

HERE = Path(__file__).resolve().parent
RATES = (0.01, 0.05, 0.1, 0.2)


def measure(smoke: bool) -> list:
    subset = 2000 if smoke else 0
    val_loader = make_loader("val", 1000, subset=1000 if smoke else 0)
    X, y = next(iter(make_loader("train50k", 100, seed=0, subset=subset)))
    rows = []
    for lr in RATES:
        set_seed(0)
        net = MNIST()
        optimizer = make_optimizer("sgd", lr, net.parameters())
        before = F.cross_entropy(net(X), y)
        before.backward()
        optimizer.step()
        optimizer.clear_grad()
        with paddle.no_grad():
            after = float(F.cross_entropy(net(X), y))
        loader = make_loader("train50k", 100, seed=0, subset=subset)
        set_seed(0)
        net = MNIST()
        h = fit(net, loader, make_optimizer("sgd", lr, net.parameters()), 1, val_loader=val_loader, callbacks=[NaNGuard()])
        rows.append({"mode": "smoke" if smoke else "full", "steps": len(loader), "lr": lr,
                     "first batch before": float(before), "after the first step": after,
                     "val acc": h.epochs[-1]["val_acc"], "train loss": h.epochs[-1]["train_loss"]})
        print(rows[-1], flush=True)
    return rows


def main():
    rows = measure(smoke=False) + measure(smoke=True)
    print(write_results_page(
        HERE / "results.md", "python docs/sweeps/batch-size-lr/measure_batch_lr.py",
        ["mode", "steps", "lr", "loss of the first batch: before", "after the first step", "val acc after the epoch",
         "train loss"],
        [[r["mode"], r["steps"], r["lr"], f"{r['first batch before']:.4f}", f"{r['after the first step']:.4f}",
          f"{r['val acc']:.4f}", f"{r['train loss']:.4f}"] for r in rows],
        note="SGD, batch 100, one epoch, seed 0."), end="")


if __name__ == "__main__":
    main()
