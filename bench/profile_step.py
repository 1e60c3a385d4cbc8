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
    args = parser.parse_args()
    if args.quick:
        args.steps = 3
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
