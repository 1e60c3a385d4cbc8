"""Where a training step and an evaluation pass of the course CNN spend their time, per operator.

Runs ``paddle.profiler`` (CPU target) over STEPS training steps of batch 64 (forward, loss,
backward, Adam step, clear gradients) and over STEPS evaluation batches of 1000 (``no_grad``
forward), after a warm-up, and prints Paddle's operator summary of each (calls, total time and
its share of the profiled time). The CPU levers are the ones the environment selects, as in any
run: compare ::

    COURSE_CPU_LEVERS=0 python bench/profile_step.py     # Paddle's default paths
    python bench/profile_step.py                          # every lever that applies (course/cpu.py)
    python bench/profile_step.py --steps 50 --full        # longer; Paddle's whole summary (all views)
    python bench/profile_step.py --quick                  # 3 steps: a check of the script
    python bench/profile_step.py --torch                  # the PyTorch peer (same net, Adam, batch 64,
                                                          # 1 thread) under torch.profiler, when installed

``course`` is imported before Paddle, so the MKL lever's variable is in place when MKL loads.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402,F401  (first: the CPU levers' environment before Paddle loads)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/profile_step.py", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="profiled training steps / eval batches")
    parser.add_argument("--full", action="store_true", help="print all of Paddle's summary views")
    parser.add_argument("--quick", action="store_true",
                        help="3 steps: a check of the script (tests/test_bench.py), like every benchmark's --quick")
    parser.add_argument("--part", choices=("both", "train", "eval"), default="both",
                        help="both = train then eval, each in a fresh process (Paddle allows one profiler "
                             "session per process)")
    parser.add_argument("--torch", action="store_true",
                        help="profile the PyTorch peer (bench/throughput.py's network) with torch.profiler instead")
    args = parser.parse_args()
    if args.quick:
        args.steps = 3
    if args.torch:
        profile_torch(args)
        return
    if args.part == "both":
        import subprocess

        for part in ("train", "eval"):
            flags = ["--steps", str(args.steps), "--part", part] + (["--full"] if args.full else [])
            subprocess.run([sys.executable, __file__, *flags], check=True)
        return

    import paddle.nn.functional as F
    import paddle.profiler as profiler

    from course import MNIST, make_optimizer, set_seed, use_device
    from course.device import describe

    device = use_device("cpu")
    if args.part == "train":
        print(f"environment: {describe(device)}")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (above the core count: shared CPU)")
    views = None if args.full else profiler.SummaryView.OperatorView
    set_seed(0)
    model = MNIST()
    optimizer = make_optimizer("adam", 0.001, model.parameters())
    warmup = 5

    def train_step(X, y):
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        return loss

    if args.part == "train":
        profile_training(args, model, train_step, warmup, views)
    else:
        profile_evaluation(args, model, views)


def profile_training(args, model, train_step, warmup, views):
    import paddle.profiler as profiler

    from course import make_loader

    loader = make_loader("train", 64, subset=64 * (warmup + args.steps))
    with profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], scheduler=(warmup, warmup + args.steps),
                           on_trace_ready=lambda prof: None) as prof:
        started = None
        for i, (X, y) in enumerate(loader):
            if i == warmup:
                started = time.perf_counter()
            loss = train_step(X, y)
            prof.step()
        float(loss)
    seconds = time.perf_counter() - started
    print(f"\n==== training: {args.steps} steps of batch 64, {args.steps * 64 / seconds:,.0f} images/s "
          f"while profiled (profiling slows it) ====")
    prof.summary(sorted_by=profiler.SortedKeys.CPUTotal, op_detail=False, time_unit="ms", views=views)



def profile_torch(args) -> None:
    """The same network, loss, Adam step and batch in PyTorch, one thread, under ``torch.profiler``:
    per-operator self CPU time (``aten::`` operators; a backward op is named after its forward)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        print("torch is not importable: `pip install torch` (CPU wheel) to profile the peer")
        return
    import numpy as np
    import torch
    import torch.nn.functional as TF
    from torch import nn
    from torch.profiler import ProfilerActivity, profile

    from course.data import load_mnist

    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"environment: torch {torch.__version__} | threads {torch.get_num_threads()} | "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    model = nn.Sequential(nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                          nn.Conv2d(20, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                          nn.Flatten(), nn.Linear(980, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    warmup = 5
    images, labels = load_mnist("train")
    n = 64 * (warmup + args.steps)
    X_all = torch.from_numpy((images[:n].astype(np.float32) - 127.5) / 127.5).reshape(-1, 1, 28, 28)
    y_all = torch.from_numpy(labels[:n].astype(np.int64))

    def step(i):
        loss = TF.cross_entropy(model(X_all[i * 64:(i + 1) * 64]), y_all[i * 64:(i + 1) * 64])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss

    for i in range(warmup):
        step(i)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        for i in range(warmup, warmup + args.steps):
            step(i)
        seconds = time.perf_counter() - started
    print(f"\n==== PyTorch training: {args.steps} steps of batch 64, {args.steps * 64 / seconds:,.0f} images/s "
          f"while profiled ====")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def profile_evaluation(args, model, views):
    import paddle
    import paddle.profiler as profiler

    from course import make_loader

    model.eval()
    batches = [b for b in make_loader("test", 1000, subset=1000 * min(args.steps, 10))]
    with paddle.no_grad(), profiler.Profiler(targets=[profiler.ProfilerTarget.CPU],
                                             scheduler=(2, 2 + args.steps),
                                             on_trace_ready=lambda prof: None) as prof:
        for i in range(2 + args.steps):
            X, _ = batches[i % len(batches)]
            if i == 2:
                started = time.perf_counter()
            logits = model(X)
            prof.step()
        float(logits[0, 0])
    seconds = time.perf_counter() - started
    print(f"\n==== evaluation: {args.steps} batches of 1000 (no_grad forward), "
          f"{args.steps * 1000 / seconds:,.0f} images/s while profiled ====")
    prof.summary(sorted_by=profiler.SortedKeys.CPUTotal, op_detail=False, time_unit="ms", views=views)


if __name__ == "__main__":
    main()
