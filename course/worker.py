"""The script ``paddle.distributed.launch`` runs in every process: ``python -m course`` as a file.

The launcher starts ``python -u <script.py> args`` (a file, not ``-m module``), so data-parallel
training is::

    python -m paddle.distributed.launch --nproc_per_node 2 --log_dir runs/logs course/worker.py train [flags]

which is what ``python -m course train --nproc 2 [flags]`` runs for you (``course.distributed``).
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a file, Python puts course/ itself first on sys.path, where course/data.py,
    # course/init.py ... would shadow top-level modules of those names. Put the directory
    # that holds the package there instead (the repository root, or site-packages).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

    # `course` first, Paddle after: importing course sets the CPU levers' environment before Paddle's
    # MKL loads (course/cpu.py; the launcher also passes on the parent's environment).
    from course.cli import main

    sys.exit(main())
