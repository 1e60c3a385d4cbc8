"""Memory over a long run: resident set size (RSS) after every epoch of the main job.

Goal (issue: reliability): RSS grows by less than 50 MB from the end of epoch 1 to the end of
the last epoch, i.e. nothing accumulates per step (histories, device tensors, logs).
Prints the machine, the Paddle version, RSS per epoch, the growth and the peak.

    python bench/memory.py                 # 3 full epochs (about 3-4 minutes on a 2-core CPU)
    python bench/memory.py --quick         # smoke mode, 2 epochs: a check of the script itself
    COURSE_SMOKE=1 python bench/memory.py  # the same
"""
import os
import resource
import sys
import tempfile
import time

from _common import header, md_table, parse_args, write_record

from course import Callback, resolve_config, train_run  # noqa: E402
from course.config import smoke_overrides  # noqa: E402

NAME, TITLE = "memory", "Memory: RSS per epoch of the main job"
GROWTH_LIMIT_MB = 50


def rss_mb() -> float:
    """Current RSS from /proc (Linux); the peak so far where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except OSError:
        return peak_mb()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class RSSRecorder(Callback):
    order = 100

    def __init__(self):
        self.rows = []

    def before_fit(self, state):
        self.rows.append(("start of training", rss_mb()))

    def after_epoch(self, state):
        self.rows.append((f"end of epoch {state.epoch + 1}", rss_mb()))


def main():
    args = parse_args(NAME, __doc__.splitlines()[0])
    args.quick = args.quick or os.environ.get("COURSE_SMOKE") == "1"
    started = time.perf_counter()
    machine = header(TITLE, args.quick)
    recorder = RSSRecorder()
    with tempfile.TemporaryDirectory() as out:
        overrides = {**smoke_overrides(), "num_epochs": 2} if args.quick else {"num_epochs": 3}
        config = resolve_config(**overrides, out_dir=out, progress=False)
        train_run(config, extra_callbacks=[recorder])
    print()
    for label, mb in recorder.rows:
        print(f"  RSS {label:<18} {mb:8.1f} MB")
    growth = recorder.rows[-1][1] - recorder.rows[1][1]
    ok = growth < GROWTH_LIMIT_MB
    epochs = len(recorder.rows) - 1
    verdict = "not judged in quick mode" if args.quick else "OK" if ok else "EXCEEDED"
    print(f"growth from end of epoch 1 to end of epoch {epochs}: {growth:+.1f} MB "
          f"(limit {GROWTH_LIMIT_MB} MB: {verdict})")
    peak = peak_mb()
    print(f"peak RSS of the whole run: {peak:.1f} MB")

    results = {"epochs": epochs, "rss_mb": dict(recorder.rows), "growth_mb": growth, "peak_rss_mb": peak,
               "growth_limit_mb": GROWTH_LIMIT_MB, "ok": ok, "config": config.to_dict()}
    section = (f"The main job (`train_run` with its default settings, {epochs} epochs, VisualDL and "
               f"checkpoints on) in one process; RSS read from /proc after each epoch. Growth from the "
               f"end of epoch 1 to the end of epoch {epochs}: {growth:+.1f} MB (limit {GROWTH_LIMIT_MB} MB: "
               f"{verdict}); peak RSS of the process {peak:.0f} MB.\n\n"
               + md_table(["when", "RSS MB"], [[label, f"{mb:.1f}"] for label, mb in recorder.rows]))
    headline = [[f"peak memory (RSS) over a {epochs}-epoch run",
                 f"{peak:.0f} MB; growth after epoch 1: {growth:+.1f} MB"]]
    write_record(args, NAME, TITLE, machine, results, headline, section, started)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
