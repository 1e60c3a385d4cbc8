"""Throughput: images per second for training and for evaluation, by CPU thread setting and batch size.

A thread setting holds for a whole process (Paddle reads ``OMP_NUM_THREADS`` when it is imported
and sets it to 1 if unset), so each setting is measured in its own fresh process:

* ``default``: ``OMP_NUM_THREADS`` unset: what ``python -m course train`` gets (course.device
  sets no thread count, so Paddle's own default, 1 thread, applies);
* ``OMP_NUM_THREADS=N``: set in the environment before Paddle is imported;
* ``set_num_threads(N)``: ``paddle.base.core.set_num_threads(N)`` after import (Paddle's math
  library threads).

N is 2, half the cores and all the cores (just 2 on a 2-core machine). Training = the bare
step (forward, loss, backward, Adam step, clear gradients) on the course CNN; evaluation =
``course.evaluate`` (no gradients). Settings are interleaved over repetitions; medians. Nothing
else should run on the machine: a busy core makes the 2-thread figures meaningless.

    python bench/throughput.py           # about 4 minutes on a 2-core CPU
    python bench/throughput.py --quick
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from _common import header, md_table, median, parse_args, write_record

NAME, TITLE = "throughput", "Throughput: images/s by CPU thread setting and batch size"
TRAIN_BATCH_SIZES = (32, 64, 128)
EVAL_BATCH_SIZES = (64, 1000)


def worker(spec: dict) -> dict:
    """Runs in a fresh process: the thread setting is already in the environment."""
    import paddle
    import paddle.nn.functional as F

    if spec.get("set_num_threads"):
        paddle.base.core.set_num_threads(spec["set_num_threads"])
    from course import MNIST, evaluate, make_loader, make_optimizer, set_seed, use_device

    device = use_device("cpu")
    result = {"omp_num_threads_seen": os.environ.get("OMP_NUM_THREADS"), "device": device,
              "train": {}, "eval": {}}
    for batch_size in TRAIN_BATCH_SIZES:
        set_seed(0)
        model = MNIST()
        optimizer = make_optimizer("adam", 0.001, model.parameters())
        steps = max(spec["train_images"] // batch_size, 2)
        warmup = 3
        loader = make_loader("train", batch_size, subset=(steps + warmup) * batch_size)
        for i, (X, y) in enumerate(loader):
            if i == warmup:
                started = time.perf_counter()
            loss = F.cross_entropy(model(X), y)
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
        float(loss)
        result["train"][batch_size] = steps * batch_size / (time.perf_counter() - started)
    for batch_size in EVAL_BATCH_SIZES:
        loader = make_loader("test", batch_size, subset=spec["eval_images"])
        evaluate(model, make_loader("test", batch_size, subset=batch_size))  # warm-up
        started = time.perf_counter()
        evaluate(model, loader)
        result["eval"][batch_size] = spec["eval_images"] / (time.perf_counter() - started)
    return result


def settings(cores: int) -> list[dict]:
    counts = sorted({n for n in (2, cores // 2, cores) if 2 <= n <= cores})
    found = [{"label": "default (OMP_NUM_THREADS unset: Paddle sets 1)", "env": {}, "threads": 1}]
    found += [{"label": f"OMP_NUM_THREADS={n}", "env": {"OMP_NUM_THREADS": str(n)}, "threads": n} for n in counts]
    found += [{"label": f"set_num_threads({n})", "env": {}, "set_num_threads": n, "threads": n} for n in counts]
    return found


def measure(setting: dict, train_images: int, eval_images: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(setting["env"])
    spec = {"set_num_threads": setting.get("set_num_threads"), "train_images": train_images,
            "eval_images": eval_images}
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"worker for {setting['label']} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1][len("RESULT "):])


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print("RESULT " + json.dumps(worker(json.loads(sys.argv[2]))), flush=True)
        return

    args = parse_args(NAME, __doc__.splitlines()[0], lambda p: p.add_argument(
        "--reps", type=int, default=None, help="repetitions of each setting (default 2, quick 1)"))
    started = time.perf_counter()
    machine = header(TITLE, args.quick)
    reps = args.reps or (1 if args.quick else 2)
    train_images, eval_images = (640, 2000) if args.quick else (9600, 10000)
    cores = os.cpu_count() or 1
    chosen = settings(cores)
    runs = {s["label"]: [] for s in chosen}
    for rep in range(reps):
        for setting in chosen:
            runs[setting["label"]].append(measure(setting, train_images, eval_images))
            r = runs[setting["label"]][-1]
            print(f"  rep {rep + 1}/{reps} {setting['label']:<48} train bs64 {r['train']['64']:7.0f} img/s, "
                  f"eval bs1000 {r['eval']['1000']:7.0f} img/s (OMP_NUM_THREADS seen: {r['omp_num_threads_seen']})",
                  flush=True)

    table, rows = {}, []
    columns = [f"train bs {b}" for b in TRAIN_BATCH_SIZES] + [f"eval bs {b}" for b in EVAL_BATCH_SIZES]
    for setting in chosen:
        label = setting["label"]
        figures = {f"train bs {b}": median(r["train"][str(b)] for r in runs[label]) for b in TRAIN_BATCH_SIZES}
        figures.update({f"eval bs {b}": median(r["eval"][str(b)] for r in runs[label]) for b in EVAL_BATCH_SIZES})
        table[label] = figures
    default = chosen[0]["label"]
    print(f"\nimages/s, median of {reps} (ratio to the default in brackets); {train_images} training "
          f"images per batch size, {eval_images} test images:")
    print(f"  {'setting':<48}" + "".join(f"{c:>20}" for c in columns))
    for label, figures in table.items():
        cells = [f"{figures[c]:,.0f} ({figures[c] / table[default][c]:.2f}x)" for c in columns]
        print(f"  {label:<48}" + "".join(f"{c:>20}" for c in cells))
        rows.append([label] + cells)

    others = [label for label in table if label != default]
    best = max(others, key=lambda label: table[label]["train bs 64"]) if others else default
    gain = table[best]["train bs 64"] / table[default]["train bs 64"]
    if best == default or gain < 1.1:
        verdict = (f"keep the default (1 thread per process): the best other setting ({best}) trains at "
                   f"batch 64 {gain:.2f}x as fast")
    else:
        verdict = (f"{best} trains a single run {gain:.2f}x as fast at batch 64; worth applying for one run "
                   "on an idle machine, not for parallel sweep workers (each should keep 1 thread)")
    print(f"\ncourse.device applies no thread setting: Paddle's default (OMP_NUM_THREADS=1) holds. {verdict}.")
    results = {"reps": reps, "train_images": train_images, "eval_images": eval_images,
               "images_per_second": table, "runs": runs, "best_for_training_bs64": best,
               "gain_over_default": gain, "verdict": verdict}
    section = (f"Images per second, median of {reps} fresh processes per setting (interleaved); ratio to "
               f"the default in brackets. Training: {train_images} images per batch size (bare Adam step); "
               f"evaluation: `course.evaluate` over {eval_images} test images. `course.device` sets no "
               f"thread count, so the main job runs with Paddle's default of 1 thread. Verdict: {verdict}.\n\n"
               + md_table(["setting"] + columns, rows))
    headline = [["training throughput, batch 64 (default threads)",
                 f"{table[default]['train bs 64']:,.0f} images/s; {best}: {gain:.2f}x that"],
                ["evaluation throughput, batch 1000 (default threads)",
                 f"{table[default]['eval bs 1000']:,.0f} images/s"]]
    write_record(args, NAME, TITLE, machine, results, headline, section, started)


if __name__ == "__main__":
    main()
