"""Memory over a long run: resident set size (RSS) after every epoch of the main job.

Goal (issue: reliability): RSS grows by less than 50 MB from the end of epoch 1 to the end of
the last epoch, i.e. nothing accumulates per step (histories, device tensors, logs).
Prints the machine, the Paddle version, RSS per epoch, the growth and the peak.

    python bench/memory.py                 # 3 full epochs (about 3-4 minutes on a 2-core CPU)
    COURSE_SMOKE=1 python bench/memory.py  # a quick check of the script itself
"""
import os
import platform
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paddle  # noqa: E402

from course import Callback, resolve_config, train_run  # noqa: E402

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
    recorder = RSSRecorder()
    with tempfile.TemporaryDirectory() as out:
        config = resolve_config(num_epochs=3 if os.environ.get("COURSE_SMOKE") != "1" else 2,
                                out_dir=out, progress=False)
        train_run(config, extra_callbacks=[recorder])
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"paddle {paddle.__version__}")
    for label, mb in recorder.rows:
        print(f"  RSS {label:<18} {mb:8.1f} MB")
    growth = recorder.rows[-1][1] - recorder.rows[1][1]
    print(f"growth from end of epoch 1 to end of epoch {len(recorder.rows) - 1}: {growth:+.1f} MB "
          f"(limit {GROWTH_LIMIT_MB} MB: {'OK' if growth < GROWTH_LIMIT_MB else 'EXCEEDED'})")
    print(f"peak RSS of the whole run: {peak_mb():.1f} MB")
    return 0 if growth < GROWTH_LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
