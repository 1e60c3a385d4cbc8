"""Hostile and odd submissions graded through the real ``python -m course grade`` in one batch.

Each hostile notebook answers homework 2-3 with the right optimizer ("momentum") and reports through its
learning-rate answer whether its attack worked: ``my_best_lr = 0.01`` (2 points) if it did, ``0.0001``
(0 points) if it did not. So a row whose ``lr`` column is "2" is an attack that got through, and each test
below names the attack it shows blocked. The batch must finish with a row for every submission.
"""
import csv
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import nbformat
import pytest

import course

from _helpers import course_command

pytestmark = pytest.mark.skipif(subprocess.run(["sh", "-c", "command -v bwrap"], capture_output=True).returncode,
                                reason="bubblewrap is not installed (apt install bubblewrap): .ci/run installs it")

PACKAGE = Path(course.__file__).resolve().parent
MARKER = f"course-grade-hostile-daemon-{os.getpid()}"  # this test run's, not another CI lane's


def _notebook(path: Path, *cells: str, metadata=None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["course_homework"] = {"id": "2-3"}
    if metadata is not None:
        nb.metadata.update(metadata)
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _attack(path: Path, attempt: str) -> Path:
    """A submission whose ``attempt`` code sets ``ok = True`` when the attack worked."""
    return _notebook(path, "ok = False\ntry:\n" + "\n".join("    " + line for line in attempt.splitlines())
                     + "\nexcept Exception as e:\n    print('blocked:', type(e).__name__, e)",
                     'my_best_optimizer = "momentum"\nmy_best_lr = 0.01 if ok else 0.0001\nmy_reason = ""')


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    sub, out = tmp / "submitted", tmp / "grades"
    out.mkdir()
    (out / "cache").mkdir()
    secret = tmp / "teacher" / "secret"
    secret.parent.mkdir()
    secret.write_text("s" * 64)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port, connections = listener.getsockname()[1], []
    threading.Thread(target=lambda: connections.append(listener.accept()), daemon=True).start()
    honest = _notebook(sub / "a" / "right.ipynb", 'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\n'
                                                  'my_reason = "momentum 0.01 的 loss 曲线最低"')
    paths = {
        "honest": honest,
        "same_name": _notebook(sub / "b" / "right.ipynb", 'my_best_optimizer = "sgd"\nmy_best_lr = 0.0001\nmy_reason = ""'),
        "network": _attack(sub / "network.ipynb", f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\nok = True"),
        "reads_classmate": _attack(sub / "reads.ipynb", f"open({str(honest)!r}).read()\nok = True"),
        "reads_secret": _attack(sub / "secret.ipynb", f"open({str(secret)!r}).read()\nok = True"),
        "env_secret": _attack(sub / "env.ipynb", "ok = 'TEACHER_TOKEN' in __import__('os').environ"),
        "writes_grades": _attack(sub / "grades.ipynb", f"open({str(out / 'grades.csv')!r}, 'a').write('HACKED\\n')\nok = True"),
        "writes_feedback": _attack(sub / "feedback.ipynb",
                                   f"open({str(out / 'feedback' / 'submitted_a_right.md')!r}, 'w').write('HACKED')\nok = True"),
        "writes_cache": _attack(sub / "cache.ipynb", f"open({str(out / 'cache' / 'evil.json')!r}, 'w').write('{{}}')\nok = True"),
        "writes_package": _attack(sub / "package.ipynb", f"open({str(PACKAGE / '_evil.py')!r}, 'w').write('x = 1')\nok = True"),
        "finds_grader": _attack(sub / "finds.ipynb",
                                "import os\nseen = ''\nfor pid in {1, os.getppid()}:\n    seen += open(f'/proc/{pid}/cmdline').read()\n"
                                "    try:\n        seen += os.readlink(f'/proc/{pid}/cwd')\n    except OSError:\n        pass\n"
                                "ok = 'hostile' in seen   # the test's folder, which holds the output folder\nprint(seen)"),
        "signals_grader": _attack(sub / "signals.ipynb",
                                  "import os, signal\nfor pid in range(2, 50000):\n    try:\n        os.kill(pid, 0)\n"
                                  "    except OSError:\n        continue\n    if b'course\\x00grade\\x00' in open(f'/proc/{pid}/cmdline', 'rb').read():\n"
                                  "        os.kill(pid, signal.SIGTERM)\n        ok = True"),
        "other_tmp": _attack(sub / "tmp.ipynb", "import glob\nok = bool(glob.glob('/tmp/course-grade-*/home'))   # other submissions' folders"),
        "daemon": _attack(sub / "daemon.ipynb",
                          "import subprocess, sys\nsubprocess.Popen(['sh', '-c', f'(setsid {sys.executable} -c "
                          f"\"import time; time.sleep(600)\" {MARKER} &) '], start_new_session=True)\n"
                          "import threading, time, pathlib\n"
                          "threading.Thread(target=lambda: [pathlib.Path('/tmp/leak').write_text('x') or time.sleep(0.1) "
                          "for _ in range(10**6)], daemon=True).start()\nok = False"),
        "kills_init": _notebook(sub / "killer.ipynb", 'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\nmy_reason = ""',
                                "import os, signal\nos.kill(1, signal.SIGKILL)\nos.kill(os.getppid(), signal.SIGKILL)"),
        "replaces_print": _notebook(sub / "print.ipynb", "print = None\njson = None\n__builtins__.print = None",
                                    'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\nmy_reason = "momentum 的 loss 曲线"'),
        "numpy_answers": _notebook(sub / "numpy.ipynb", "import numpy as np\nmy_best_optimizer = np.str_('Momentum')\n"
                                   "my_best_lr = np.float32(0.01)\nmy_reason = np.array('momentum 0.01 的 loss 曲线')"),
        "huge_int": _notebook(sub / "huge.ipynb", 'my_best_optimizer = "momentum"\nmy_best_lr = 10 ** 400\nmy_reason = "x"'),
        "giant_reason": _notebook(sub / "giant.ipynb", 'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\n'
                                  'my_reason = "loss 曲线 1 " * 10_000_000'),
        "huge_message": _notebook(sub / "message.ipynb", 'print("x" * 300_000_000)',
                                  'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\nmy_reason = "loss 0.01"'),
        "weird_metadata": _notebook(sub / "weird.ipynb", 'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\nmy_reason = ""',
                                    metadata={"course_homework": "2-3", "kernelspec": ["x"]}),
        "formula": _notebook(sub / "-1+cmd.ipynb", 'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\nmy_reason = ""'),
        "long_name": _notebook(sub / ("很长的名字" * 16 + ".ipynb"), 'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\nmy_reason = ""'),
    }
    no_source = sub / "nosource.ipynb"
    raw = json.loads(paths["honest"].read_text())
    raw["cells"].append({"cell_type": "code", "metadata": "x"})
    raw["cells"][0]["metadata"] = {"nbgrader": "oops"}
    no_source.write_text(json.dumps(raw))
    paths["no_source"] = no_source
    env = {**os.environ, "COURSE_SMOKE": "1", "TEACHER_TOKEN": "t0ken", "COURSE_GRADING_SECRET": str(secret)}
    started = time.monotonic()
    done = subprocess.run(course_command("grade", "2-3", *paths.values(), "--out", out,
                                         "--time_limit", "60", "--memory_mb", "2048", "--output_kb", "256"),
                          env=env, capture_output=True, text=True, timeout=1800, cwd=tmp)
    elapsed = time.monotonic() - started
    evil = PACKAGE / "_evil.py"
    leaked_package = evil.exists()
    if leaked_package:
        evil.unlink()
    survivors = subprocess.run(["pgrep", "-f", MARKER], capture_output=True, text=True).stdout.split()
    for pid in survivors:
        os.kill(int(pid), 9)
    listener.close()
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {"done": done, "rows": rows, "names": list(paths), "out": out, "connections": connections,
            "leaked_package": leaked_package, "survivors": survivors, "elapsed": elapsed, "paths": paths}


def _row(batch, name):
    path = str(batch["paths"][name].resolve())
    return next(r for r in batch["rows"] if r["path"] == path)


def test_the_batch_finishes_with_a_row_for_everyone(batch):
    assert batch["done"].returncode == 0, batch["done"].stdout[-3000:] + batch["done"].stderr[-3000:]
    assert batch["done"].stdout.splitlines()[0].startswith("sandbox: bwrap")
    assert len(batch["rows"]) == len(batch["names"]) and all(r["sandbox"] == "bwrap" for r in batch["rows"])
    assert "HACKED" not in (batch["out"] / "grades.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize("attack", ["network", "reads_classmate", "reads_secret", "env_secret", "writes_grades",
                                    "writes_feedback", "writes_cache", "writes_package", "finds_grader",
                                    "signals_grader", "other_tmp"])
def test_attack_is_blocked(batch, attack):
    row = _row(batch, attack)
    assert row["optimizer"] == "2" and row["lr"] == "0", row   # it ran to the end, and its attack failed


def test_nothing_reached_the_teachers_side(batch):
    assert batch["connections"] == []                                   # no connection to the host's loopback
    assert not batch["leaked_package"]                                  # the installed package is read-only
    assert not (batch["out"] / "cache" / "evil.json").exists()
    assert "HACKED" not in (batch["out"] / "feedback" / "submitted_a_right.md").read_text(encoding="utf-8")


def test_detached_processes_and_threads_end_with_their_notebook(batch):
    assert batch["survivors"] == []
    assert _row(batch, "daemon")["status"] == "ok"


def test_a_kernel_that_kills_its_sandbox_is_one_row(batch):
    row = _row(batch, "kills_init")   # init of its PID namespace ignores it, or the sandbox dies: either way, a row
    assert row["status"] in ("ok", "crashed", "no_answers") and row["submission"]


def test_answers_are_read_however_the_notebook_ends(batch):
    assert _row(batch, "replaces_print")["total"] == "5"                # print and json replaced: still read
    assert _row(batch, "numpy_answers")["total"] == "5"                 # NumPy scalars and 0-D arrays
    huge = _row(batch, "huge_int")
    assert huge["status"] == "ok" and huge["optimizer"] == "2" and huge["lr"] == "0"


def test_outputs_are_bounded(batch):
    feedback = batch["out"] / "feedback"
    assert max(p.stat().st_size for p in feedback.iterdir()) < 100_000
    assert _row(batch, "giant_reason")["optimizer"] == "2"
    message = _row(batch, "huge_message")
    assert message["optimizer"] == "2" and message["lr"] == "2", message   # the message refused, the answers read
    peak = [line for line in batch["done"].stdout.splitlines() if line.startswith("grader peak memory")]
    assert peak and int(peak[0].split()[3]) < 1000, peak   # MB: a 300 MB message is never held by the grader


def test_malformed_notebooks_and_names_are_rows(batch):
    assert _row(batch, "weird_metadata")["total"] == "4"   # no reason given
    assert _row(batch, "no_source")["status"] in ("ok", "wrong_homework")
    long = _row(batch, "long_name")
    assert len(long["submission"].encode()) <= 130 and (batch["out"] / "feedback" / f"{long['submission']}.md").exists()
    names = {_row(batch, "honest")["submission"], _row(batch, "same_name")["submission"]}
    assert len(names) == 2 and all((batch["out"] / "feedback" / f"{n}.md").exists() for n in names)


def test_csv_cells_are_not_formulas(batch):
    raw = (batch["out"] / "grades.csv").read_text(encoding="utf-8")
    formula = _row(batch, "formula")["submission"]
    assert formula.startswith("'") and "\n-1" not in raw and ",-1" not in raw
