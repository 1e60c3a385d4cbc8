"""Throughput: images per second for training and evaluation, Paddle's default vs each CPU lever vs PyTorch.

Every setting runs in its own fresh process (the MKL lever and thread counts act when Paddle
loads), settings interleaved over repetitions, medians and ratios to the default:

* ``default``: ``COURSE_CPU_LEVERS=0``: Paddle's own paths (what the package did before the levers);
* ``mkl_amd`` alone, ``pool_bias`` alone, ``bias_rows`` alone, ``all levers`` (``COURSE_CPU_LEVERS`` = the lever's name,
  or unset): see course/cpu.py;
* ``all levers + OMP_NUM_THREADS=2``: whether a second thread helps once the levers are on (a quarter
  of the images);
* ``PyTorch``: the same network (same layers, Adam, cross-entropy, batch, thread count) on the same
  images, when ``torch`` is importable: a peer, never a dependency (``pip install torch`` to see it).

One thread per process unless the row says otherwise. Training = the bare step (forward, loss,
backward, Adam step, clear gradients) through the course's ``MNIST`` and loader; evaluation =
``course.evaluate`` (no gradients) at the main job's evaluation batch (1000) and at 250. Other
work on the machine slows every row alike only if it stays constant: the load average is printed.

    python bench/throughput.py           # 5 minutes on an idle 2-core machine (29 when others overloaded it)
    python bench/throughput.py --quick

Figures belong to one CPU: the record names it (vendor, model name, family / model / stepping and
flags such as avx512f, ``course.cpu.cpu_identity``) and goes to ``bench/results/throughput-<cpu slug>.json``,
one record per CPU seen; docs/benchmarks.md shows one table per CPU (``bench/run_all.py``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from _common import header, load_average, md_table, median, parse_args, timed_training, write_record

NAME, TITLE = "throughput", "Throughput: images/s, Paddle's default vs each CPU lever vs PyTorch"
TRAIN_BATCH_SIZE = 64
EVAL_BATCH_SIZES = (1000, 250)
WARMUP = 3


def worker(spec: dict) -> dict:
    """Runs in a fresh process: the lever / thread settings are already in the environment."""
    import course  # noqa: F401  (first: sets the MKL lever's variable before Paddle loads)

    from course import MNIST, evaluate, make_loader, make_optimizer, set_seed, use_device
    from course.device import describe

    device = use_device("cpu")
    result = {"environment": describe(device), "eval": {}}
    set_seed(0)
    model = MNIST()
    optimizer = make_optimizer("adam", 0.001, model.parameters())
    result.update(timed_training(model, optimizer, spec["train_images"], TRAIN_BATCH_SIZE, WARMUP))
    for batch_size in EVAL_BATCH_SIZES:
        loader = make_loader("test", batch_size, subset=spec["eval_images"])
        evaluate(model, make_loader("test", batch_size, subset=batch_size))  # warm-up
        started = time.perf_counter()
        evaluate(model, loader)
        result["eval"][str(batch_size)] = spec["eval_images"] / (time.perf_counter() - started)
    return result


def torch_worker(spec: dict) -> dict:
    """The same network and step in PyTorch, on the same images (the course's [-1, 1] scaling)."""
    import numpy as np
    import torch
    import torch.nn.functional as TF
    from torch import nn

    from course.data import load_mnist

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                          nn.Conv2d(20, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                          nn.Flatten(), nn.Linear(980, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)

    def tensors(split, n):
        images, labels = load_mnist(split)
        X = torch.from_numpy((images[:n].astype(np.float32) - 127.5) / 127.5).reshape(-1, 1, 28, 28)
        return X, torch.from_numpy(labels[:n].astype(np.int64))

    steps = max(spec["train_images"] // TRAIN_BATCH_SIZE, 2)
    X_all, y_all = tensors("train", (steps + WARMUP) * TRAIN_BATCH_SIZE)
    order = torch.randperm(len(X_all))
    for i in range(steps + WARMUP):
        if i == WARMUP:
            started, cpu_started = time.perf_counter(), time.process_time()
        idx = order[i * TRAIN_BATCH_SIZE:(i + 1) * TRAIN_BATCH_SIZE]
        loss = TF.cross_entropy(model(X_all[idx]), y_all[idx])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    final = float(loss)
    result = {"environment": f"torch {torch.__version__} | threads {torch.get_num_threads()}",
              "final_loss": final, "train": steps * TRAIN_BATCH_SIZE / (time.perf_counter() - started),
              "train_per_cpu_second": steps * TRAIN_BATCH_SIZE / (time.process_time() - cpu_started),
              "eval": {}}
    X_test, y_test = tensors("test", spec["eval_images"])
    model.eval()
    with torch.no_grad():
        for batch_size in EVAL_BATCH_SIZES:
            model(X_test[:batch_size])  # warm-up
            started = time.perf_counter()
            correct = sum(int((model(X_test[i:i + batch_size]).argmax(1) == y_test[i:i + batch_size]).sum())
                          for i in range(0, len(X_test), batch_size))
            result["eval"][str(batch_size)] = len(X_test) / (time.perf_counter() - started)
    result["test_correct"] = correct
    return result


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def settings() -> list[dict]:
    found = [{"label": "default (COURSE_CPU_LEVERS=0: Paddle's own paths)", "env": {"COURSE_CPU_LEVERS": "0"}},
             {"label": "mkl_amd alone", "env": {"COURSE_CPU_LEVERS": "mkl_amd"}},
             {"label": "pool_bias alone", "env": {"COURSE_CPU_LEVERS": "pool_bias"}},
             {"label": "bias_rows alone", "env": {"COURSE_CPU_LEVERS": "bias_rows"}},
             {"label": "all levers (the package's default)", "env": {}},
             # a quarter of the images: on a shared, overloaded 2-core machine two spinning OpenMP threads
             # ran 40x slower than one (bench/cpu_candidates.py), and a full-size row took most of the run
             {"label": "all levers + OMP_NUM_THREADS=2", "env": {"OMP_NUM_THREADS": "2"}, "fraction": 0.25}]
    if torch_available():
        found.append({"label": "PyTorch, same net, 1 thread", "env": {"COURSE_CPU_LEVERS": "0"}, "torch": True})
    return found


def measure(setting: dict, train_images: int, eval_images: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "COURSE_CPU_LEVERS", "MKL_DEBUG_CPU_TYPE")}
    env.update(setting["env"])
    threads = int(setting["env"].get("OMP_NUM_THREADS", 1))
    fraction = setting.get("fraction", 1)
    spec = {"train_images": max(int(train_images * fraction), 2 * TRAIN_BATCH_SIZE),
            "eval_images": max(int(eval_images * fraction), max(EVAL_BATCH_SIZES)),
            "torch": setting.get("torch", False), "threads": threads}
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"worker for {setting['label']} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1][len("RESULT "):])


def summarize(runs: dict, labels: list, torch_label, reps: int, train_images: int, eval_images: int,
              machine: dict, load_at_end) -> tuple:
    """The table, verdict, JSON results, page section and headline of one run (``runs``: label -> figures)."""
    per_cpu = f"train bs {TRAIN_BATCH_SIZE} per CPU-s"
    columns = [f"train bs {TRAIN_BATCH_SIZE}"] + [f"eval bs {b}" for b in EVAL_BATCH_SIZES] + [per_cpu]
    table = {}
    for label in labels:
        figures = {columns[0]: median(r["train"] for r in runs[label]),
                   per_cpu: median(r["train_per_cpu_second"] for r in runs[label])}
        figures.update({f"eval bs {b}": median(r["eval"][str(b)] for r in runs[label]) for b in EVAL_BATCH_SIZES})
        table[label] = figures
    default, levers = labels[0], "all levers (the package's default)"
    print(f"\nimages/s, median of {reps} fresh processes (ratio to the default in brackets; min-max of the "
          f"training figure); {train_images} training images, {eval_images} test images:")
    rows = []
    for label, figures in table.items():
        cells = [f"{figures[c]:,.0f} ({figures[c] / table[default][c]:.2f}x)" for c in columns]
        train_all = [r["train"] for r in runs[label]]
        cells[0] += f" [{min(train_all):,.0f}-{max(train_all):,.0f}]"
        print(f"  {label:<52}" + "".join(f"{c:>28}" for c in cells))
        rows.append([label] + cells)
    gain = {c: table[levers][c] / table[default][c] for c in columns}
    two = table["all levers + OMP_NUM_THREADS=2"][columns[0]] / table[levers][columns[0]]
    threads = ("keep 1 thread per process" if two < 1.1 else
               f"a second thread helps ({two:.2f}x) on an idle machine; the package still sets none")
    verdict = (f"the levers train {gain[per_cpu]:.2f}x per CPU-second ({gain[columns[0]]:.2f}x wall clock) and "
               f"evaluate {gain['eval bs 1000']:.2f}x (batch 1000, wall clock) as fast as Paddle's default; "
               f"OMP_NUM_THREADS=2 on top: {two:.2f}x ({threads})")
    if torch_label:
        verdict += (f"; PyTorch trains {table[torch_label][per_cpu] / table[levers][per_cpu]:.2f}x as fast as the "
                    f"levers per CPU-second ({table[torch_label][columns[0]] / table[levers][columns[0]]:.2f}x wall clock)")
    start_load, end_load = (machine.get("load_average") or [0])[0], (load_at_end or [0])[0]
    cores = machine.get("cores") or 1
    if max(start_load, end_load) > cores:
        verdict += (f". Other work shared the machine (load average {start_load:g} at the start, {end_load:g} at the "
                    f"end, on {cores} cores): the wall-clock ratios compare moments of a changing load; "
                    f"read the per-CPU-second column")
    print(f"\n{verdict}.")
    results = {"reps": reps, "train_images": train_images, "eval_images": eval_images,
               "images_per_second": table, "runs": runs, "gain_of_levers": gain,
               "two_threads_over_levers": two, "verdict": verdict}
    section = (f"On **{machine['cpu']}** ({machine['cores']} cores; load average "
               f"{'/'.join(f'{x:g}' for x in machine['load_average'] or [])} at the start). "
               f"Images per second, median of {reps} fresh processes per setting (settings interleaved), one "
               f"thread unless the row says otherwise; ratio to Paddle's default in brackets, min-max of the "
               f"training figure in square brackets. Training: {train_images} images, batch {TRAIN_BATCH_SIZE}, "
               f"the bare Adam step through `course.MNIST` and `course.make_loader`; evaluation: "
               f"`course.evaluate` over {eval_images} test images. The levers are described in "
               f"`course/cpu.py` (`COURSE_CPU_LEVERS=0` turns them off); the PyTorch row is the same network "
               f"on the same images, measured as a peer. *Per CPU-s*: training images per second of the "
               f"process's CPU time (`time.process_time`), the steadier figure for one-thread rows when other "
               f"work shares the machine (a two-thread row spends more CPU-seconds by design). "
               f"Verdict: {verdict}.\n\n"
               + md_table(["setting"] + columns, rows)
               + "\n\nWhere the time goes, per operator: `python bench/profile_step.py` "
                 "(with `COURSE_CPU_LEVERS=0` for Paddle's default paths).")
    on = f" on {machine['cpu_id']['slug']}"
    headline = [[f"training throughput, batch 64{on}: all CPU levers vs Paddle's default",
                 f"{table[levers][per_cpu]:,.0f} vs {table[default][per_cpu]:,.0f} images per CPU-second "
                 f"({gain[per_cpu]:.2f}x); wall clock {table[levers][columns[0]]:,.0f} vs "
                 f"{table[default][columns[0]]:,.0f} images/s ({gain[columns[0]]:.2f}x)"],
                [f"evaluation throughput, batch 1000{on}: all CPU levers vs Paddle's default",
                 f"{table[levers]['eval bs 1000']:,.0f} vs {table[default]['eval bs 1000']:,.0f} images/s "
                 f"({gain['eval bs 1000']:.2f}x)"]]
    if torch_label:
        headline.append([f"training throughput, batch 64{on}: all CPU levers vs PyTorch, 1 thread",
                         f"{table[levers][per_cpu]:,.0f} vs {table[torch_label][per_cpu]:,.0f} images per CPU-second "
                         f"({table[levers][per_cpu] / table[torch_label][per_cpu]:.2f}x); wall clock "
                         f"{table[levers][columns[0]]:,.0f} vs {table[torch_label][columns[0]]:,.0f} images/s "
                         f"({table[levers][columns[0]] / table[torch_label][columns[0]]:.2f}x)"])
    return results, section, headline


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        spec = json.loads(sys.argv[2])
        print("RESULT " + json.dumps(torch_worker(spec) if spec["torch"] else worker(spec)), flush=True)
        return

    args = parse_args(NAME, __doc__.splitlines()[0], lambda p: p.add_argument(
        "--reps", type=int, default=None, help="repetitions of each setting (default 3, quick 1)"), per_cpu=True)
    started = time.perf_counter()
    machine = header(TITLE, args.quick)
    reps = args.reps or (1 if args.quick else 3)
    train_images, eval_images = (640, 2000) if args.quick else (6400, 5000)
    chosen = settings()
    if not torch_available():
        print("  (torch is not importable: no PyTorch row; `pip install torch` to add it)")
    runs = {s["label"]: [] for s in chosen}
    for rep in range(reps):
        for setting in chosen:
            runs[setting["label"]].append(measure(setting, train_images, eval_images))
            r = runs[setting["label"]][-1]
            print(f"  rep {rep + 1}/{reps} {setting['label']:<52} train {r['train']:6.0f} img/s, eval bs1000 "
                  f"{r['eval']['1000']:6.0f} img/s, loss {r['final_loss']:.4f} | {r['environment']}", flush=True)

    torch_label = next((s["label"] for s in chosen if s.get("torch")), None)
    results, section, headline = summarize(runs, [s["label"] for s in chosen], torch_label, reps, train_images,
                                           eval_images, machine, load_average())
    write_record(args, NAME, TITLE, machine, results, headline, section, started,
                 extra_command=f"--reps {args.reps}" if args.reps else "")


if __name__ == "__main__":
    main()
