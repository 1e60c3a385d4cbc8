"""Candidate CPU levers, each alone on top of the package's default, side by side: training images/s.

The levers of ``course/cpu.py`` are on in every row (the package's default); each candidate row adds
one thing. Every row runs in its own fresh process (flags and thread counts act when Paddle loads),
rows interleaved over repetitions, medians and ratios to the default row:

* ``to_static``: the model's forward traced once into a static graph (``paddle.jit.to_static(model,
  full_graph=True, backend=None)``; Paddle 3.x's default backend is CINN, absent from the CPU wheel),
  so forward and backward run as one program (``run_program``) instead of op by op;
* ``to_static + FLAGS_use_mkldnn=1``: the same, with Paddle's oneDNN kernels allowed (dygraph does
  not use them for training, docs/cpu-speed.md; a static program may);
* ``Adam use_multi_tensor``: Paddle's fused (multi-tensor) Adam update of all parameters at once;
* ``pool_mask``: the levers' max-pool as ``F.max_pool2d(..., return_mask=True)[0]`` (Paddle's
  ``max_pool2d_with_index``: the backward uses the saved argmax instead of searching each window again);
* ``2 threads``: ``OMP_NUM_THREADS=2`` (intra-op threads in one process; a quarter of the images);
* ``PyTorch``: the peer of bench/throughput.py (same net, 1 thread), when ``torch`` is importable.

Training = the bare step (forward, loss, backward, Adam step, clear gradients), batch 64, one
thread unless the row says otherwise; the final loss of each row is printed so a row that computes
something else shows. Where the time goes: ``bench/profile_step.py`` (``--torch`` for the peer).

    python bench/cpu_candidates.py          # 3 repetitions of 6,400 images per row
    python bench/cpu_candidates.py --quick
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from _common import header, md_table, median, parse_args, timed_training, write_record

NAME, TITLE = "cpu_candidates", "Candidate CPU levers, each alone on top of the package's default"
BATCH = 64
WARMUP = 5


def worker(spec: dict) -> dict:
    import course  # noqa: F401  (first: the levers' environment before Paddle loads)
    import paddle
    import paddle.nn.functional as F

    from course import MNIST, set_seed, use_device
    from course.device import describe

    device = use_device("cpu")
    if spec.get("mkldnn"):
        paddle.set_flags({"FLAGS_use_mkldnn": True})
    if spec.get("pool_mask"):
        # max-pool through Paddle's max_pool2d_with_index kernel (it keeps the argmax mask, so its
        # backward scatters instead of searching the window again, as PyTorch's does). Patched here,
        # in this worker process only: the lever itself needs course/fast_conv.py's conv_block to call it (docs/cpu-speed.md).
        plain_max_pool2d = F.max_pool2d

        def max_pool2d_with_mask(x, kernel_size, stride=None, padding=0, return_mask=False, **kw):
            if return_mask or padding != 0 or kw:
                return plain_max_pool2d(x, kernel_size, stride, padding, return_mask, **kw)
            return plain_max_pool2d(x, kernel_size, stride, return_mask=True)[0]

        F.max_pool2d = max_pool2d_with_mask
    set_seed(0)
    model = MNIST()
    optimizer = paddle.optimizer.Adam(learning_rate=0.001, parameters=model.parameters(),
                                      use_multi_tensor=bool(spec.get("multi_tensor")))
    forward = model
    if spec.get("to_static"):
        forward = paddle.jit.to_static(model, full_graph=True, backend=None)
    return {"environment": describe(device), **timed_training(forward, optimizer, spec["train_images"], BATCH, WARMUP)}


def torch_worker(spec: dict) -> dict:
    """bench/throughput.py's peer step (same net, Adam, batch, one thread), timed the same way."""
    import numpy as np
    import torch
    import torch.nn.functional as TF
    from torch import nn

    from course.data import load_mnist

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                          nn.Conv2d(20, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                          nn.Flatten(), nn.Linear(980, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    steps = max(spec["train_images"] // BATCH, 2)
    images, labels = load_mnist("train")
    n = (steps + WARMUP) * BATCH
    X_all = torch.from_numpy((images[:n].astype(np.float32) - 127.5) / 127.5).reshape(-1, 1, 28, 28)
    y_all = torch.from_numpy(labels[:n].astype(np.int64))
    for i in range(steps + WARMUP):
        if i == WARMUP:
            started, cpu_started = time.perf_counter(), time.process_time()
        loss = TF.cross_entropy(model(X_all[i * BATCH:(i + 1) * BATCH]), y_all[i * BATCH:(i + 1) * BATCH])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    final = float(loss)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"environment": f"torch {torch.__version__} | threads {torch.get_num_threads()}", "final_loss": final,
            "train": steps * BATCH / seconds, "train_per_cpu_second": steps * BATCH / cpu_seconds}


def settings(torch_ok: bool) -> list[dict]:
    rows = [{"label": "all levers (the package's default)", "env": {}, "spec": {}},
            {"label": "+ to_static (forward traced, full graph)", "env": {}, "spec": {"to_static": True}},
            {"label": "+ to_static + FLAGS_use_mkldnn=1", "env": {}, "spec": {"to_static": True, "mkldnn": True}},
            {"label": "+ Adam use_multi_tensor=True", "env": {}, "spec": {"multi_tensor": True}},
            {"label": "+ pool_mask (max-pool keeps its argmax mask)", "env": {}, "spec": {"pool_mask": True}},
            # a quarter of the images: on a shared, overloaded 2-core machine two spinning OpenMP threads
            # can run 40x slower than one (measured), and a full-size row would take the whole run
            {"label": "+ OMP_NUM_THREADS=2", "env": {"OMP_NUM_THREADS": "2"}, "spec": {"fraction": 0.25}}]
    if torch_ok:
        rows.append({"label": "PyTorch, same net, 1 thread", "env": {}, "spec": {"torch": True}})
    return rows


def measure(setting: dict, train_images: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update({"OMP_NUM_THREADS": "1", **setting["env"]})
    spec = {**setting["spec"], "train_images": max(int(train_images * setting["spec"].get("fraction", 1)), 2 * BATCH)}
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:  # a candidate that crashes is a finding, not the end of the run
        error = next((line.strip() for line in reversed(done.stderr.splitlines())
                      if "Error" in line or "Segmentation" in line), f"exit {done.returncode}")
        return {"failed": error[:200], "train": float("nan"), "final_loss": float("nan"), "environment": ""}
    return json.loads(lines[-1][len("RESULT "):])


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        spec = json.loads(sys.argv[2])
        print("RESULT " + json.dumps(torch_worker(spec) if spec.get("torch") else worker(spec)), flush=True)
        return
    import importlib.util

    def add_arguments(parser):
        parser.add_argument("--reps", type=int, default=None, help="repetitions of each row (default 3, quick 1)")
        parser.add_argument("--rows", default="", help="only the rows whose label contains one of these "
                                                       "comma-separated words (the default row always runs)")

    args = parse_args(NAME, __doc__.splitlines()[0], add_arguments, per_cpu=True)
    started = time.perf_counter()
    machine = header(TITLE, args.quick)
    reps = args.reps or (1 if args.quick else 3)
    train_images = 640 if args.quick else 6400
    chosen = settings(importlib.util.find_spec("torch") is not None)
    words = [w.strip() for w in args.rows.split(",") if w.strip()]
    if words:
        chosen = chosen[:1] + [s for s in chosen[1:] if any(w in s["label"] for w in words)]
    runs = {s["label"]: [] for s in chosen}
    for rep in range(reps):
        for setting in chosen:
            r = measure(setting, train_images)
            runs[setting["label"]].append(r)
            print(f"  rep {rep + 1}/{reps} {setting['label']:<44} train {r['train']:6.0f} img/s "
                  f"({r.get('train_per_cpu_second', float('nan')):6.0f} per CPU-s), "
                  f"loss {r['final_loss']:.4f} | load {os.getloadavg()[0]:.2f}"
                  + (f" | CRASHED: {r['failed']}" if "failed" in r else ""), flush=True)
    base = median(r["train"] for r in runs[chosen[0]["label"]])
    base_cpu = median(r["train_per_cpu_second"] for r in runs[chosen[0]["label"]])
    rows, table = [], {}
    for setting in chosen:
        failed = next((r["failed"] for r in runs[setting["label"]] if "failed" in r), None)
        if failed:
            table[setting["label"]] = {"train": None, "ratio": None, "final_loss": None, "failed": failed}
            rows.append([setting["label"], f"crashed: {failed}", "-", "-"])
            print(f"  {setting['label']:<44} crashed: {failed}")
            continue
        figures = [r["train"] for r in runs[setting["label"]]]
        per_cpu = [r["train_per_cpu_second"] for r in runs[setting["label"]]]
        table[setting["label"]] = {"train": median(figures), "ratio": median(figures) / base,
                                   "train_per_cpu_second": median(per_cpu), "cpu_ratio": median(per_cpu) / base_cpu,
                                   "final_loss": runs[setting["label"]][-1]["final_loss"]}
        rows.append([setting["label"], f"{median(figures):,.0f} ({median(figures) / base:.2f}x) "
                     f"[{min(figures):,.0f}-{max(figures):,.0f}]",
                     f"{median(per_cpu):,.0f} ({median(per_cpu) / base_cpu:.2f}x) [{min(per_cpu):,.0f}-{max(per_cpu):,.0f}]",
                     f"{table[setting['label']]['final_loss']:.4f}"])
        print(f"  {setting['label']:<44} {rows[-1][1]:>28} {rows[-1][2]:>28}  loss {rows[-1][3]}")
    section = (f"On **{machine['cpu']}** ({machine['cores']} cores; load average "
               f"{'/'.join(f'{x:g}' for x in machine['load_average'] or [])} at the start). Training images/s, "
               f"batch {BATCH}, median of {reps} fresh processes per row (rows interleaved), ratio to the "
               f"package's default in brackets, min-max in square brackets; {train_images} images; the final "
               f"loss shows each row trains the same. *Per CPU-second* divides by the process's CPU time "
               f"(`time.process_time`) instead of the wall clock: on a shared machine it is the steadier figure "
               f"for one-thread rows (a two-thread row spends more CPU-seconds by design: read its wall figure)."
               f"\n\n" + md_table(["row", "train images/s (wall)", "train images per CPU-second", "final loss"], rows))
    headline = [[f"candidate levers on {machine['cpu_id']['slug']}: training vs the package's default",
                 "per CPU-second (wall clock in brackets): "
                 + "; ".join(f"{label.lstrip('+ ')} " + (f"{t['cpu_ratio']:.2f}x ({t['ratio']:.2f}x)"
                                                        if t["ratio"] else "crashed")
                             for label, t in list(table.items())[1:])]]
    write_record(args, NAME, TITLE, machine, {"reps": reps, "train_images": train_images, "table": table,
                                              "runs": runs}, headline, section, started)


if __name__ == "__main__":
    main()
