"""GPU: epoch time, images/s, time to 99% test accuracy, peak GPU memory; data path x precision.

The course's loader path vs the on-device path, each in float32 and in mixed precision.

Variants (every one trains the course CNN with the recommended settings, ``Config()``'s defaults:
Adam, one-cycle to the default peak lr, batch 64, on all 60,000 training images; the same initial weights):

* **course loader**: what the course's ``data_process`` does: ``paddle.vision.datasets.MNIST``
  (one image per ``__getitem__``, PIL) + ``Normalize(127.5, 127.5)`` + ``paddle.io.DataLoader``
  (shuffled, last partial batch dropped, ``num_workers=0``), pointed at the embedded IDX files;
  each batch is built on the host and copied to the device every step;
* **on-device**: ``course.make_loader``: the normalized split is copied to the device once and
  every batch is a gather there;

each in float32 and in mixed precision (``course.amp.MixedPrecision``, level O1: float16 with
Paddle's loss scaler; bfloat16 where ``course.amp.supported_dtypes`` lists it). The loop is
``course.train_one_epoch`` for all of them: only the data path and the precision differ.

Interleaved: every variant trains epoch 1, then every variant epoch 2 ... (the order reversed on
every other epoch), so a burst of other work hits all alike. After each epoch the 10,000 test
images are evaluated (float32, batches of 1000, on the device), timed apart and left out of the
figures. *epoch s* is the median of epochs 2.. (epoch 1 pays one-time costs: kernel choice,
allocator growth; it is reported apart); *to 99%* sums the training time up to the first epoch
whose test accuracy is at least 99%. *peak MiB* = the variant's own resident tensors (data kept
on the device, model, optimizer state) + the largest ``paddle.device.cuda.max_memory_allocated``
rise during one of its epochs (reset before each): what Paddle's allocator handed out; the CUDA
context and the allocator's cache come on top.

Without a GPU the same code runs on the CPU in the quick mode (2,000 training / 1,000 test
images, float32 only; the mixed-precision rows say why they cannot run) and says so.

    python bench/gpu.py                 # on a GPU: 4 epochs of each variant
    python bench/gpu.py --epochs 6
    python bench/gpu.py --quick         # a check of the script (what the CPU always runs)
"""
from __future__ import annotations

import time

from _common import course_pipeline_loader, header, md_table, median, parse_args, write_record

from course.config import Config  # the run settings only: no Paddle yet

NAME, TITLE = "gpu", "GPU: data path and mixed precision"
THRESHOLD = 0.99
QUICK_TRAIN, QUICK_TEST = 2000, 1000
COURSE, ON_DEVICE = "course loader", "on-device"


# --------------------------------------------------------------------------- the machine
def gpu_report(device: str) -> dict | None:
    """Name, compute capability, memory and the CUDA / cuDNN versions of ``device`` (None on the CPU)."""
    import paddle

    if not device.startswith("gpu"):
        return None
    index = int(device.split(":")[1])
    cuda = paddle.device.cuda
    props = cuda.get_device_properties(index)
    return {"name": cuda.get_device_name(index),
            "capability": ".".join(str(v) for v in cuda.get_device_capability(index)),
            "memory_gib": round(props.total_memory / 2**30, 1), "gpus_visible": cuda.device_count(),
            "cuda": paddle.version.cuda(), "cudnn": paddle.version.cudnn()}


class DeviceMemory:
    """``paddle.device.cuda`` allocator figures on a GPU; zeros on the CPU."""

    def __init__(self, device: str):
        import paddle

        self.cuda = paddle.device.cuda if device.startswith("gpu") else None

    def sync(self):
        if self.cuda:
            self.cuda.synchronize()

    def allocated(self) -> int:
        return self.cuda.memory_allocated() if self.cuda else 0

    def reset_peak(self) -> int:
        """Reset the peak; returns what is allocated now (the base the next peak is measured from)."""
        if not self.cuda:
            return 0
        self.sync()
        self.cuda.reset_max_memory_allocated()
        return self.cuda.memory_allocated()

    def peak(self) -> int:
        return self.cuda.max_memory_allocated() if self.cuda else 0


# --------------------------------------------------------------------------- the two data paths
class CourseLoader:
    """The course's pipeline; every batch is moved to ``device`` as the step uses it.

    (On a GPU, Paddle's DataLoader itself copies each batch to the current device in a background
    thread; ``.to(device)`` then returns the tensor unchanged. On the CPU nothing moves.)
    """

    def __init__(self, device: str, subset: int, num_workers: int):
        self.loader = course_pipeline_loader(num_workers, shuffle=True, subset=subset)
        self.dataset_size = len(self.loader.dataset)
        self.device, self.arrived_on = device, None

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for X, y in self.loader:           # [64, 1, 28, 28] float32, [64, 1] int64
            self.arrived_on = self.arrived_on or str(X.place)
            yield X.to(self.device), y.to(self.device)


def on_device_loader(subset: int):
    from course import make_loader

    return make_loader("train", 64, train=True, seed=0, subset=subset)


# --------------------------------------------------------------------------- one variant
class Variant:
    """One (data path, precision) pair: its loader, model, optimizer and per-epoch record."""

    def __init__(self, path: str, amp: str, device: str, epochs: int, subset: int, num_workers: int,
                 memory: DeviceMemory):
        from course import LRSchedule, MNIST, TrainState, make_loss, make_optimizer, make_scheduler, set_seed
        from course.amp import MixedPrecision

        self.path, self.amp, self.memory = path, amp, memory
        self.label = f"{path}, {'float32' if amp == 'off' else amp + ' AMP'}"
        config = Config()
        memory.sync()
        before = memory.allocated()
        loader = CourseLoader(device, subset, num_workers) if path == COURSE else on_device_loader(subset)
        set_seed(0)  # the same initial weights in every variant
        model = MNIST()
        lr = make_scheduler(config.schedule, config.lr, len(loader), epochs)
        optimizer = make_optimizer(config.optimizer, lr, model.parameters())
        callbacks = [LRSchedule(lr, every="batch")] + ([MixedPrecision(amp)] if amp != "off" else [])
        self.state = TrainState(model, optimizer, make_loss(config.loss), loader, num_epochs=epochs,
                                callbacks=sorted(callbacks, key=lambda c: c.order))
        self.state.fire("before_fit")
        memory.sync()
        self.resident = memory.allocated() - before  # bytes: data kept on the device, model, optimizer
        self.rows = []

    def run_epoch(self, epoch: int, test_loader) -> dict:
        from course import evaluate, train_one_epoch

        state = self.state
        state.epoch = epoch
        if hasattr(state.train_loader, "set_epoch"):
            state.train_loader.set_epoch(epoch)
        state.fire("before_epoch")
        base = self.memory.reset_peak()
        started = time.perf_counter()
        train = train_one_epoch(state)  # ends with float(...): waits for the device
        seconds = time.perf_counter() - started
        peak_rise = self.memory.peak() - base
        state.fire("after_epoch")
        t = time.perf_counter()
        test = evaluate(state.model, test_loader)
        row = {"epoch": epoch + 1, "train_seconds": seconds, "images": train["n"],
               "images_per_second": train["n"] / seconds, "train_loss": train["loss"],
               "train_acc": train["acc"], "test_acc": test["acc"], "test_loss": test["loss"],
               "test_eval_seconds": time.perf_counter() - t, "peak_rise_bytes": peak_rise}
        self.rows.append(row)
        return row

    def finish(self) -> dict:
        self.state.fire("after_fit")
        rows = self.rows
        steady = rows[1:] or rows  # epoch 1 pays one-time costs
        epoch_s = median([r["train_seconds"] for r in steady])
        hit = next((i for i, r in enumerate(rows) if r["test_acc"] >= THRESHOLD), None)
        loader = self.state.train_loader
        return {"label": self.label, "path": self.path, "amp": self.amp, "epochs": rows,
                "first_epoch_seconds": rows[0]["train_seconds"], "epoch_seconds": epoch_s,
                "epoch_seconds_from": "epochs 2.." if len(rows) > 1 else "epoch 1",
                "images_per_second": median([r["images_per_second"] for r in steady]),
                "seconds_to_99": sum(r["train_seconds"] for r in rows[:hit + 1]) if hit is not None else None,
                "epochs_to_99": hit + 1 if hit is not None else None,
                "best_test_acc": max(r["test_acc"] for r in rows), "final_test_acc": rows[-1]["test_acc"],
                "resident_bytes": self.resident,
                "peak_bytes": self.resident + max(r["peak_rise_bytes"] for r in rows),
                "batches_arrive_on": getattr(loader, "arrived_on", str(loader.X.place) if hasattr(loader, "X")
                                             else None)}


# --------------------------------------------------------------------------- report
def mib(n: int | None) -> str:
    return f"{n / 2**20:,.0f}" if n else "n/a"


def to99(v: dict) -> str:
    if v["seconds_to_99"] is None:
        return f"not reached in {len(v['epochs'])} epoch(s)"
    return f"{v['seconds_to_99']:.1f} s ({v['epochs_to_99']} ep.)"


def main():
    def add_arguments(parser):
        parser.add_argument("--epochs", type=int, default=None,
                            help="epochs of each variant (default 4; 1 in the quick mode)")
        parser.add_argument("--num_workers", type=int, default=0,
                            help="DataLoader worker processes of the course loader (default 0, the course's)")

    args = parse_args(NAME, __doc__.splitlines()[0], add_arguments)
    started = time.perf_counter()

    import paddle

    from course import make_loader, use_device
    from course.amp import AMP_DTYPES, check_dtype, supported_dtypes
    from course.device import describe
    from course.errors import ConfigError

    device = use_device("auto")
    no_gpu = not device.startswith("gpu")
    args.quick = args.quick or no_gpu  # without a GPU only the quick mode runs
    machine = header(TITLE, args.quick)
    if no_gpu:
        print("NO GPU FOUND (" + ("Paddle is a CPU-only build" if not paddle.is_compiled_with_cuda()
                                  else "Paddle sees no GPU") + "): running the same code on the CPU in the "
              "quick mode. These are not GPU figures.")
    gpu = gpu_report(device)
    if gpu:
        print(f"GPU: {gpu['name']} (compute capability {gpu['capability']}, {gpu['memory_gib']} GiB, "
              f"{gpu['gpus_visible']} visible) | CUDA {gpu['cuda']} | cuDNN {gpu['cudnn']}")
    print(f"environment: {describe(device)}")
    epochs = args.epochs or (1 if args.quick else 4)
    train_subset, test_subset = (QUICK_TRAIN, QUICK_TEST) if args.quick else (0, 0)

    unsupported = {}
    amps = ["off"]
    for dtype in AMP_DTYPES:
        try:
            check_dtype(dtype, device)
            amps.append(dtype)
        except ConfigError as e:
            unsupported[dtype] = str(e)
    print(f"mixed precision here: {', '.join(supported_dtypes(device)) or 'none'}")
    for why in unsupported.values():
        print(f"  {why}")

    memory = DeviceMemory(device)
    test_loader = make_loader("test", 1000, train=False, subset=test_subset)
    variants = [Variant(path, amp, device, epochs, train_subset, args.num_workers, memory)
                for amp in amps for path in (COURSE, ON_DEVICE)]
    n_train = len(variants[0].state.train_loader) * 64
    print(f"{len(variants)} variants x {epochs} epoch(s), {n_train:,} training images per epoch "
          f"(batch 64), test on {test_loader.num_samples:,}; interleaved by epoch", flush=True)
    for epoch in range(epochs):
        for v in (variants if epoch % 2 == 0 else variants[::-1]):
            row = v.run_epoch(epoch, test_loader)
            print(f"  epoch {epoch + 1}/{epochs} {v.label:<28} train {row['train_seconds']:7.2f}s "
                  f"{row['images_per_second']:9,.0f} images/s  test acc {row['test_acc']:.4f}"
                  + (f"  peak +{mib(row['peak_rise_bytes'])} MiB" if gpu else ""), flush=True)
    results = {v.label: v.finish() for v in variants}

    base = results[f"{ON_DEVICE}, float32"]
    for r in results.values():
        r["epoch_time_vs_on_device_float32"] = r["epoch_seconds"] / base["epoch_seconds"]
    ratios = {}
    for amp in amps:
        name = "float32" if amp == "off" else f"{amp} AMP"
        ratios[f"course loader / on-device epoch time, {name}"] = (
            results[f"{COURSE}, {name}"]["epoch_seconds"] / results[f"{ON_DEVICE}, {name}"]["epoch_seconds"])
        if amp != "off":
            for path in (COURSE, ON_DEVICE):
                ratios[f"float32 / {name} epoch time, {path}"] = (
                    results[f"{path}, float32"]["epoch_seconds"] / results[f"{path}, {name}"]["epoch_seconds"])
                if gpu:
                    ratios[f"float32 / {name} peak memory, {path}"] = (
                        results[f"{path}, float32"]["peak_bytes"] / max(results[f"{path}, {name}"]["peak_bytes"], 1))

    print(f"\n{'variant':<28} {'epoch 1 s':>9} {'epoch s':>8} {'images/s':>10} {'to 99%':>22} "
          f"{'best acc':>8} {'peak MiB':>9} {'vs on-device fp32':>17}")
    rows = []
    for r in results.values():
        print(f"{r['label']:<28} {r['first_epoch_seconds']:9.2f} {r['epoch_seconds']:8.2f} "
              f"{r['images_per_second']:10,.0f} {to99(r):>22} {r['best_test_acc']:8.4f} "
              f"{mib(r['peak_bytes']) if gpu else 'n/a (cpu)':>9} {r['epoch_time_vs_on_device_float32']:16.2f}x")
        rows.append([r["label"], f"{r['first_epoch_seconds']:.2f}", f"{r['epoch_seconds']:.2f}",
                     f"{r['images_per_second']:,.0f}", to99(r), f"{100 * r['best_test_acc']:.2f} %",
                     mib(r["peak_bytes"]) if gpu else "n/a (cpu)", f"{r['epoch_time_vs_on_device_float32']:.2f}x"])
    for dtype in unsupported:
        print(f"{dtype + ' AMP (both paths)':<28} not supported on {device}")
        rows.append([f"{dtype} AMP (both paths)", *["-"] * 6, f"not supported on {device}"])
    print()
    for label, value in ratios.items():
        print(f"  {label}: {value:.2f}x")
    arrive = results[f"{COURSE}, float32"]["batches_arrive_on"]
    print(f"  the course loader's batches arrive on {arrive}; the on-device loader's data lives on "
          f"{results[f'{ON_DEVICE}, float32']['batches_arrive_on']}")

    where = (f"{gpu['name']}, CUDA {gpu['cuda']}, cuDNN {gpu['cudnn']}" if gpu else
             "**no GPU was found: the CPU ran the quick mode, float32 only; these are not GPU figures**")
    section = (f"Device: {device} ({where}). {len(variants)} variants x {epochs} epoch(s) of "
               f"{n_train:,} training images (batch {Config().batch_size}, Adam one-cycle to {Config().lr:g}), interleaved by epoch; "
               f"test accuracy on {test_loader.num_samples:,} images after each epoch (not timed). "
               "*epoch s*: median training time of epochs 2.. (epoch 1 alone if there is one); *to 99%*: "
               "training time up to the first epoch with test accuracy >= 99%; *peak MiB*: the "
               "variant's resident tensors + its largest `max_memory_allocated` rise in an epoch.\n\n"
               + md_table(["variant", "epoch 1 s", "epoch s", "images/s", "to 99%", "best test acc",
                           "peak MiB", "epoch time vs on-device fp32"], rows)
               + "\n\n" + "\n".join(f"- {k}: {v:.2f}x" for k, v in ratios.items())
               + "".join(f"\n- {d}: {why}" for d, why in unsupported.items()))
    data_ratio = ratios["course loader / on-device epoch time, float32"]
    if gpu:
        headline = [[f"GPU ({gpu['name']}): epoch, course loader vs on-device (float32)",
                     f"{results[f'{COURSE}, float32']['epoch_seconds']:.2f} s vs {base['epoch_seconds']:.2f} s "
                     f"({data_ratio:.1f}x)"]]
        headline += [[f"GPU: {amp} AMP speed-up over float32 (on-device epoch time)",
                      f"{ratios[f'float32 / {amp} AMP epoch time, {ON_DEVICE}']:.2f}x"] for amp in amps[1:]]
        headline.append(["GPU: time to 99% test accuracy, on-device float32", to99(base)])
        headline.append(["GPU: peak memory, on-device float32", f"{mib(base['peak_bytes'])} MiB"])
    else:
        headline = [["GPU benchmark", f"no GPU found: CPU quick mode only (course loader / on-device "
                                      f"epoch time {data_ratio:.1f}x on the CPU); no GPU figures"]]
    record = {"device": device, "no_gpu": no_gpu, "gpu": gpu, "epochs": epochs, "train_subset": train_subset,
              "test_subset": test_subset, "num_workers": args.num_workers, "threshold": THRESHOLD,
              "unsupported_amp": unsupported, "variants": results, "ratios": ratios}
    write_record(args, NAME, TITLE, machine, record, headline, section, started,
                 extra_command=f"--epochs {args.epochs}" if args.epochs else "")


if __name__ == "__main__":
    main()
