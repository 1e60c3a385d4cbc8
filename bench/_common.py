"""What every benchmark shares: the machine description, the command line, medians, the JSON record.

Each ``bench/<name>.py`` prints its figures and writes one JSON file (``--out``, default
``bench/results/<name>.json``; ``test-output/bench-quick/<name>.json`` with ``--quick``)
holding the machine, its figures, a one-line ``headline`` per figure for the summary table and
a Markdown ``section`` that ``bench/run_all.py`` puts on docs/benchmarks.md.

Ratios are measured side by side in one process run (repetitions interleaved, medians taken),
never as absolute timings compared across runs or machines.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

# Paddle warns on import that it found no ccache (only used to compile custom C++ operators).
warnings.filterwarnings("ignore", message="No ccache found")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a plain checkout: `python bench/<name>.py`

RESULTS_DIR = ROOT / "bench" / "results"
QUICK_DIR = ROOT / "test-output" / "bench-quick"  # git-ignored: quick figures never reach the docs


def parse_args(name: str, description: str, add_arguments=None, per_cpu: bool = False) -> argparse.Namespace:
    """Common flags. ``per_cpu``: the default record is ``bench/results/<name>-<cpu slug>.json``."""
    parser = argparse.ArgumentParser(prog=f"bench/{name}.py", description=description)
    parser.add_argument("--quick", action="store_true",
                        help="a small slice, to check the script itself (figures are not representative)")
    parser.add_argument("--out", default=None, help="where to write the JSON record")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args()
    if args.out:
        args.out = Path(args.out)
    elif per_cpu and not args.quick:
        args.out = per_cpu_record(name)
    else:
        args.out = (QUICK_DIR if args.quick else RESULTS_DIR) / f"{name}.json"
    return args


def course_pipeline_loader(num_workers: int = 0, shuffle: bool = True, subset: int = 0):
    """The course's original training loader (its ``data_process``): ``paddle.vision.datasets.MNIST``,
    one image per ``__getitem__``, + ``Normalize(127.5, 127.5)`` + ``paddle.io.DataLoader`` (batch 64,
    last partial batch dropped), reading the package's embedded files (no download)."""
    import paddle
    from paddle.vision.transforms import Normalize

    from course.data import EMBEDDED_DIR

    dataset = paddle.vision.datasets.MNIST(
        image_path=str(EMBEDDED_DIR / "train-images-idx3-ubyte.gz"),
        label_path=str(EMBEDDED_DIR / "train-labels-idx1-ubyte.gz"),
        mode="train", transform=Normalize(mean=[127.5], std=[127.5], data_format="CHW"), download=False)
    if subset:
        dataset = paddle.io.Subset(dataset, list(range(subset)))
    return paddle.io.DataLoader(dataset, batch_size=64, shuffle=shuffle, drop_last=True, num_workers=num_workers)


def cpu_identity() -> dict:
    """Vendor, model name, family / model / stepping, notable flags, ``label`` and ``slug`` (course/cpu.py)."""
    from course.cpu import cpu_identity as identity  # one reader of /proc/cpuinfo; imported when asked
    return identity()


def cpu_model() -> str:
    """The CPU as benchmarks print it: model name plus family / model / stepping and notable flags."""
    return cpu_identity()["label"]


def per_cpu_record(name: str, results_dir: Path = RESULTS_DIR) -> Path:
    """Where a benchmark whose figures belong to one CPU keeps its record: ``<name>-<cpu slug>.json``,
    one per CPU seen, so figures from different machines are never read as one table."""
    return results_dir / f"{name}-{cpu_identity()['slug']}.json"


def memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            return round(int(next(line for line in f if line.startswith("MemTotal")).split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load: above the core count, other work shared the CPU (figures are noisy)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict:
    import paddle

    cpu = cpu_identity()
    return {"cpu": cpu["label"], "cpu_id": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb(),
            "os": f"{platform.system()} {platform.release()}", "arch": platform.machine(),
            "python": platform.python_version(), "paddle": paddle.__version__,
            "paddle_cuda": bool(paddle.is_compiled_with_cuda()),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "load_average": load_average(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def machine_line(m: dict) -> str:
    load = "/".join(f"{x:g}" for x in m["load_average"]) if m.get("load_average") else "n/a"
    return (f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB | {m['os']} {m['arch']} | "
            f"Python {m['python']} | paddle {m['paddle']}{' (CUDA build)' if m['paddle_cuda'] else ' (CPU)'} | "
            f"load average {load}")


def header(title: str, quick: bool) -> dict:
    """Print the benchmark's title and the machine; returns the machine record."""
    m = machine()
    print(f"== {title}{'  [QUICK MODE: a check of the script, not a measurement]' if quick else ''}")
    print(f"machine: {machine_line(m)}", flush=True)
    return m


def timed_training(forward, optimizer, train_images: int, batch_size: int, warmup: int) -> dict:
    """Train ``forward`` (the model, or a compiled form of it) on ``train_images`` images of the training
    split after ``warmup`` untimed steps, the course's loop: images per second of wall clock
    (``train``), per second of this process's CPU time (``train_per_cpu_second``, steadier on a shared
    machine) and the last loss."""
    import paddle.nn.functional as F

    from course import make_loader

    steps = max(train_images // batch_size, 2)
    loader = make_loader("train", batch_size, subset=(steps + warmup) * batch_size)
    for i, (X, y) in enumerate(loader):
        if i == warmup:
            started, cpu_started = time.perf_counter(), time.process_time()
        loss = F.cross_entropy(forward(X), y)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"final_loss": float(loss), "train": steps * batch_size / seconds,
            "train_per_cpu_second": steps * batch_size / cpu_seconds}


def median(values) -> float:
    return statistics.median(values)


def spread(values, fmt: str = ".4g") -> str:
    """``mean ± standard deviation (min-max)`` of a few numbers, or the one number."""
    values = list(values)
    if not values:
        return "n/a"
    if len(values) == 1:
        return format(values[0], fmt)
    return (f"{statistics.mean(values):{fmt}} ± {statistics.stdev(values):{fmt}} "
            f"({min(values):{fmt}}-{max(values):{fmt}})")


def command(name: str, quick: bool, extra: str = "") -> str:
    return f"python bench/{name}.py{' --quick' if quick else ''}{(' ' + extra) if extra else ''}"


def write_record(args, name: str, title: str, machine_record: dict, results: dict,
                 headline: list, section: str, started: float, extra_command: str = "") -> None:
    """The JSON record of one benchmark run (see the module docstring)."""
    record = {"name": name, "title": title, "quick": args.quick,
              "command": command(name, args.quick, extra_command),
              "machine": machine_record, "load_average_at_end": load_average(),
              "seconds": round(time.perf_counter() - started, 1),
              "headline": headline, "section": section, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out} ({record['seconds']:.0f}s)")


def md_table(header_row, rows) -> str:
    lines = ["| " + " | ".join(header_row) + " |", "|" + "---|" * len(header_row)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
