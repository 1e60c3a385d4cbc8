"""Notebook 2.6.3, section 6, in full and smoke mode: does a network pretrained on other data fine-tune better?

The same code as the notebook: pretrain the course CNN on the digits 5-9 of train50k (every image after
the first 640; in smoke mode the first 2,000 of them) for one epoch with Adam 0.001 (seed 100); then, for
seeds 0, 1, 2, fine-tune on the first 640 training images (all ten digits) for 3 epochs (30 steps),
once starting from the pretrained convolutions and once from random ones, the fully connected layer
starting from the same random values in both; validation accuracy on the 10,000 validation images
(smoke: the first 1,000). Writes results.md next to this file.

    python docs/sweeps/pretraining/measure_pretraining.py           # full and smoke
"""
from pathlib import Path

import numpy as np

import course  # noqa: F401  (before paddle: Paddle 2.6's bundled zlib)
from course import MNIST, evaluate, fit, make_loader, make_optimizer, set_seed
from course.data import MNISTLoader, load_mnist
from course.sweep import write_results_page

HERE = Path(__file__).resolve().parent
FT_N, FT_EPOCHS = 640, 3


def start_point(seed, conv_from=None):
    set_seed(seed)
    net = MNIST()
    if conv_from is not None:
        for layer in ("conv1", "conv2"):
            getattr(net, layer).weight.set_value(getattr(conv_from, layer).weight)
            getattr(net, layer).bias.set_value(getattr(conv_from, layer).bias)
    return net


def measure(smoke: bool) -> list:
    images, labels = load_mnist("train")
    images, labels = images[:50000], labels[:50000]
    keep = labels[FT_N:] >= 5
    pre_images, pre_labels = images[FT_N:][keep], labels[FT_N:][keep]
    if smoke:
        pre_images, pre_labels = pre_images[:2000], pre_labels[:2000]
    pre_loader = MNISTLoader(pre_images, pre_labels, 64, shuffle=True, drop_last=True, seed=0)
    ft_loader = MNISTLoader(images[:FT_N], labels[:FT_N], 64, shuffle=True, drop_last=True, seed=0)
    val_loader = make_loader("val", 1000, subset=1000 if smoke else 0)
    set_seed(100)
    pretrained = MNIST()
    fit(pretrained, pre_loader, make_optimizer("adam", 0.001, pretrained.parameters()), 1)
    rows = []
    for seed in (0, 1, 2):
        accs = []
        for conv_from in (pretrained, None):
            net = start_point(seed, conv_from)
            ft_loader.set_epoch(0)
            fit(net, ft_loader, make_optimizer("adam", 0.001, net.parameters()), FT_EPOCHS)
            accs.append(evaluate(net, val_loader)["acc"])
        rows.append({"mode": "smoke" if smoke else "full", "pretrain_images": len(pre_labels),
                     "pretrain_steps": len(pre_loader), "seed": seed, "pretrained": accs[0], "scratch": accs[1]})
        print(rows[-1], flush=True)
    return rows


def main():
    rows = measure(smoke=False) + measure(smoke=True)
    footer = []
    for mode in ("full", "smoke"):
        gains = [r["pretrained"] - r["scratch"] for r in rows if r["mode"] == mode]
        footer += ["", f"{mode}: mean difference {np.mean(gains):+.4f}, smallest {min(gains):+.4f}, largest {max(gains):+.4f}"]
    print(write_results_page(
        HERE / "results.md", "python docs/sweeps/pretraining/measure_pretraining.py",
        ["mode", "pretraining images (digits 5-9)", "pretraining steps", "seed", "pretrained conv", "from scratch",
         "difference"],
        [[r["mode"], r["pretrain_images"], r["pretrain_steps"], r["seed"], f"{r['pretrained']:.4f}",
          f"{r['scratch']:.4f}", f"{r['pretrained'] - r['scratch']:+.4f}"] for r in rows],
        note=f"Validation accuracy after fine-tuning on {FT_N} images for {FT_EPOCHS} epochs "
             f"({FT_EPOCHS * (FT_N // 64)} steps):", footer=footer), end="")


if __name__ == "__main__":
    main()
