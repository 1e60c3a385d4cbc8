"""Data path: one epoch over the training set, the course's original pipeline vs ours.

(a) the course's ``data_process``: ``paddle.vision.datasets.MNIST`` (PIL backend, one image per
    ``__getitem__``) + ``paddle.vision.transforms.Normalize(127.5, 127.5)`` + ``paddle.io.DataLoader``
    (batch 64, shuffled, last partial batch dropped), here pointed at the embedded IDX files
    instead of downloading them; with ``num_workers=0`` and with one worker process;
(b) ``course.make_loader("train", 64)``: one normalized array, each batch a gather.

Both yield the same 937 batches of float32 ``[64, 1, 28, 28]`` images in [-1, 1] and int64
``[64, 1]`` labels (checked on the first unshuffled batch). Times one pass (a batch is drawn,
nothing trains), repetitions interleaved, medians; building the loader (reading the files) is
timed separately.

    python bench/data_path.py            # 3 full epochs of each (about a minute)
    python bench/data_path.py --quick    # 100 batches each
"""
from __future__ import annotations

import itertools
import time

from _common import course_pipeline_loader, header, md_table, median, parse_args, write_record

NAME, TITLE = "data_path", "Data path: one epoch of the training set"


def paddle_loader(num_workers: int, shuffle: bool = True):
    """The course's original loader, reading the package's embedded files."""
    return course_pipeline_loader(num_workers, shuffle)


def our_loader(shuffle: bool = True):
    from course.data import _read_pair, make_loader

    _read_pair.cache_clear()  # time the file reading too, as the course's reader does
    return make_loader("train", 64, train=shuffle)


def one_pass(loader, max_batches: int | None) -> tuple[float, int]:
    """Seconds to draw every batch (or the first ``max_batches``), and how many were drawn."""
    started, count = time.perf_counter(), 0
    for X, y in itertools.islice(loader, max_batches):
        assert X.shape[1:] == [1, 28, 28] and y.shape[1:] == [1]
        count += 1
    return time.perf_counter() - started, count


def check_same_batches() -> float:
    """Largest difference between the two pipelines' first unshuffled batch (0 expected)."""
    import numpy as np

    X_a, y_a = next(iter(paddle_loader(0, shuffle=False)))
    X_b, y_b = next(iter(our_loader(shuffle=False)))
    assert (y_a.numpy().reshape(-1) == y_b.numpy().reshape(-1)).all(), "labels differ"
    return float(np.abs(X_a.numpy().astype(np.float64) - X_b.numpy()).max())


def main():
    args = parse_args(NAME, __doc__.splitlines()[0], lambda p: p.add_argument(
        "--reps", type=int, default=None, help="repetitions of each (default 3, quick 2)"))
    started = time.perf_counter()
    machine = header(TITLE, args.quick)
    reps = args.reps or (2 if args.quick else 3)
    max_batches = 100 if args.quick else None

    diff = check_same_batches()
    print(f"first unshuffled batch, largest difference between the pipelines: {diff:.3g}")

    pipelines = {
        "paddle.vision MNIST + Normalize + DataLoader (num_workers=0)": lambda: paddle_loader(0),
        "paddle.vision MNIST + Normalize + DataLoader (num_workers=1)": lambda: paddle_loader(1),
        "course.make_loader (MNISTLoader)": our_loader,
    }
    build, epoch, batches = {k: [] for k in pipelines}, {k: [] for k in pipelines}, {}
    for rep in range(reps):  # interleaved: a burst of other work on the machine hits all alike
        for label, make in pipelines.items():
            t = time.perf_counter()
            loader = make()
            build[label].append(time.perf_counter() - t)
            seconds, batches[label] = one_pass(loader, max_batches)
            epoch[label].append(seconds)
            del loader
            print(f"  rep {rep + 1}/{reps} {label}: build {build[label][-1]:.2f}s, "
                  f"{batches[label]} batches {seconds:.3f}s", flush=True)

    ours = "course.make_loader (MNISTLoader)"
    rows, results = [], {"max_batches": max_batches, "reps": reps, "first_batch_max_abs_diff": diff,
                         "pipelines": {}}
    print(f"\nmedian of {reps}, {batches[ours]} batches of 64 per pass:")
    for label in pipelines:
        med, build_med = median(epoch[label]), median(build[label])
        ratio = med / median(epoch[ours])
        results["pipelines"][label] = {"pass_seconds": epoch[label], "build_seconds": build[label],
                                       "median_pass_seconds": med, "median_build_seconds": build_med,
                                       "batches": batches[label], "ratio_to_ours": ratio,
                                       "images_per_second": batches[label] * 64 / med}
        print(f"  {label:<62} pass {med:8.3f}s  build {build_med:6.2f}s  "
              f"{batches[label] * 64 / med:11,.0f} images/s  x{ratio:.1f}")
        rows.append([label, f"{med:.3f}", f"{build_med:.2f}", f"{batches[label] * 64 / med:,.0f}",
                     f"{ratio:.1f}x"])
    base = "paddle.vision MNIST + Normalize + DataLoader (num_workers=0)"
    ratio = results["pipelines"][base]["ratio_to_ours"]
    print(f"\nour loader is {ratio:.1f}x faster per pass than the course's original (num_workers=0)")

    scope = "one epoch (937 batches)" if max_batches is None else f"{max_batches} batches"
    section = (f"Seconds to draw {scope} of 64 shuffled training images, nothing trained; median of "
               f"{reps} interleaved repetitions. *build* = constructing the loader (reading the IDX "
               f"files). The first unshuffled batch of both pipelines agrees to {diff:.1g}.\n\n"
               + md_table(["pipeline", "pass s", "build s", "images/s", "time vs ours"], rows))
    headline = [["data path: one epoch, course's original pipeline vs ours",
                 f"{median(epoch[base]):.2f} s vs {median(epoch[ours]):.3f} s ({ratio:.0f}x)"]]
    write_record(args, NAME, TITLE, machine, results, headline, section, started)


if __name__ == "__main__":
    main()
