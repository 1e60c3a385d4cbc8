"""A class graded as a teacher grades it: forty submissions with bounded kernels and memory, personal variants
with their own right answers, a grading interrupted and resumed, and the best-effort mode where no sandbox is."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course.homework import hw2_3, hw2_8, variants
from course.homework.sandbox import descendants

from _helpers import course_command

HAS_BWRAP = subprocess.run(["sh", "-c", "command -v bwrap"], capture_output=True).returncode == 0


def _notebook(path: Path, homework: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["course_homework"] = {"id": homework}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _grade_cmd(homework, paths, out, *extra):
    return course_command("grade", homework, *paths, "--out", out, *extra)


def _env(**extra):
    return {**os.environ, "COURSE_SMOKE": "1", "OMP_NUM_THREADS": "1", **extra}


def _rows(out):
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _tree_rss_mb(pid: int, tree: list[int]) -> tuple[int, int]:
    """(resident MB of ``pid`` and ``tree``, its descendants, number of kernels it has started and not yet ended:
    its children whose command starts ``course.homework.kernel``, directly or through bubblewrap)."""
    total, kernels = 0, 0
    for p in [pid, *tree]:
        try:
            with open(f"/proc/{p}/status") as f:
                status = f.read().splitlines()
            total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
            ppid = next(int(line.split()[1]) for line in status if line.startswith("PPid:"))
            with open(f"/proc/{p}/cmdline", "rb") as f:
                kernels += ppid == pid and b"course.homework.kernel" in f.read()
        except (OSError, StopIteration):
            continue
    return total // 1024, kernels


# `once`: the grader's bookkeeping over a class (one kernel at a time, memory bounded, no folder left) is
# the same on every Python and Paddle line, and it takes 4-6 minutes; the kernel-level behaviour that
# does differ between versions is graded on every leg by tests/test_grade.py and test_grade_hostile.py.
@pytest.mark.slow
@pytest.mark.once
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_forty_submissions_keep_one_kernel_alive_and_bounded_memory(tmp_path):
    """Each of the 40 imports Paddle and the course (a real kernel's ~450 MB), holds 200 MB more, and leaves a
    background thread and a detached process running: the grader ends each before starting the next."""
    paths = [_notebook(tmp_path / "class" / f"student{i:02d}.ipynb", "2-8",
                       "import paddle, course, threading, subprocess, time\n"
                       "hoard = bytearray(200 * 2**20)\n"
                       "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
                       "subprocess.Popen(['sleep', '600'], start_new_session=True)",
                       'my_verdict = "过拟合"\nmy_best_epoch = 7\nmy_weight_decay = 0\nmy_patience = 0\nmy_reason = ""')
             for i in range(40)]
    out, tmp = tmp_path / "grades", tmp_path / "tmp"
    tmp.mkdir()
    grader = subprocess.Popen(_grade_cmd("2-8", paths, out, "--time_limit", "120"), env=_env(TMPDIR=str(tmp)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_mb, peak_kernels, seen = 0, 0, {}   # seen: every process of the grader's tree -> its start time
    while grader.poll() is None:
        tree = descendants(grader.pid)
        rss, kernels = _tree_rss_mb(grader.pid, tree)
        peak_mb, peak_kernels = max(peak_mb, rss), max(peak_kernels, kernels)
        seen.update({p: _started(p) for p in tree if p not in seen})
        time.sleep(0.2)
    stdout, stderr = grader.communicate()
    assert grader.returncode == 0, stderr[-3000:]
    rows = _rows(out)
    not_ok = [r for r in rows if r["status"] != "ok"]
    assert len(rows) == 40 and not not_ok, not_ok[:3] or len(rows)   # the rows that failed, with their reasons
    print(f"\n40 submissions of 2-8: peak {peak_kernels} kernel(s) alive, peak memory of the grader's process "
          f"tree {peak_mb} MB")
    assert peak_kernels == 1
    assert peak_mb < 2500   # one kernel (~700 MB with its 200 MB) + the grader, never forty of them
    # No process the grader started (kernels, their threads' and detached children) outlived it; checked
    # on this grader's own tree, as another test run may be grading on the same machine (CI's two lanes).
    assert len(seen) >= 40
    deadline = time.monotonic() + 5   # a process killed as the grader ended may take a moment to go
    while (alive := [p for p, started in seen.items() if started is not None and _started(p) == started]) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive == [], [f"{p}: {_command(p)}" for p in alive]
    assert list(tmp.iterdir()) == []   # no kernel folder, connection file or socket left behind


def _started(pid: int) -> "int | None":
    """When ``pid`` started (clock ticks since boot), None once it has ended: tells a process from a later
    one that reused its number. A zombie has ended too: it is only waiting for its parent (init, for an
    orphan, which on some machines reaps late) to collect its status."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "(ended)"


def _fill(path: Path, answers: str, dest: Path) -> Path:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "answers":
            cell.source = answers
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


def test_personal_versions_have_their_own_right_answers_and_are_signed(tmp_path):
    """Two students of 2-3 whose slices of the sweep have different best optimizers: each is right only on its own
    version; a copied version (another name, same signature) and an edited variant are marked."""
    secret_file = tmp_path / "teacher" / "secret"
    secret = variants.load_secret(secret_file, create=True)
    table, tol = hw2_3.load_table(), hw2_3.tolerance()

    def right(variant):
        best = max(r["val_acc"] for r in hw2_3.variant_table(variant, table) if r["status"] == "ok")
        return {r["optimizer"]: r["lr"] for r in hw2_3.variant_table(variant, table)
                if r["status"] == "ok" and r["val_acc"] >= best - tol}

    names = [f"s{i:03d}" for i in range(60)]
    chosen = {n: variants.choose(hw2_3, "2-3", n, secret) for n in names}
    a, b = next((a, b) for a in names for b in names if not set(right(chosen[a])) & set(right(chosen[b])))
    roster = tmp_path / "roster.txt"
    roster.write_text(f"# class 1\n{a}\n{b}\n", encoding="utf-8")
    made = subprocess.run(course_command("homework", "generate", "--roster", roster, "--dest", tmp_path / "handout",
                                         "--homework", "2-3", "--secret", secret_file),
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    handout = [tmp_path / "handout" / "2-3" / f"{a}.ipynb", tmp_path / "handout" / "2-3" / f"{b}.ipynb"]
    assert json.loads(json.dumps(nbformat.read(handout[0], as_version=4).metadata["course_homework"]["variant"])) == chosen[a]
    code = "".join(c.source for c in nbformat.read(handout[0], as_version=4).cells if c.cell_type == "code")
    assert f"HOMEWORK_VARIANT = {chosen[a]!r}" in code

    def answer(variant):
        optimizer, lr = next(iter(right(variant).items()))
        return f'my_best_optimizer = "{optimizer}"\nmy_best_lr = {lr}\nmy_reason = "{optimizer} {lr} 的 loss 曲线最低"'

    sub = tmp_path / "submitted"
    paths = [_fill(handout[0], answer(chosen[a]), sub / "a_own.ipynb"),
             _fill(handout[1], answer(chosen[b]), sub / "b_own.ipynb"),
             _fill(handout[1], answer(chosen[a]), sub / "b_with_a_answer.ipynb")]
    forged = nbformat.read(paths[0], as_version=4)
    forged.metadata["course_homework"]["student"] = "someone_else"
    nbformat.write(forged, sub / "forged.ipynb")
    paths.append(sub / "forged.ipynb")
    out = tmp_path / "grades"
    done = subprocess.run(_grade_cmd("2-3", paths, out, "--secret", str(secret_file)), env=_env(),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {Path(r["path"]).stem: r for r in _rows(out)}
    assert rows["a_own"]["total"] == "5" and rows["b_own"]["total"] == "5"
    assert rows["b_with_a_answer"]["optimizer"] == "0" and "other_variant" in rows["b_with_a_answer"]["needs_review"]
    assert "variant" in rows["forged"]["needs_review"].split()
    assert json.loads(rows["a_own"]["variant"]) == chosen[a]


def test_2_8_variants_differ_in_their_measured_best_epoch():
    """The seeds of 2-8's pool give given runs whose best epochs differ (measured in seeds.csv for seeds 1-3)."""
    rows = list(csv.DictReader(open(hw2_8.SEEDS_CSV, encoding="utf-8")))
    best = {}
    for seed in (1, 2, 3):
        losses = [float(r["val_loss"]) for r in rows if r["seed"] == str(seed) and r["val_subset"] == "0"]
        best[seed] = losses.index(min(losses)) + 1
    assert len(set(best.values())) > 1, best
    assert {v["seed"] for v in hw2_8.variant_pool()} >= {1, 2, 3}


def test_an_interrupted_grading_resumes_and_keeps_every_row(tmp_path):
    paths = [_notebook(tmp_path / "class" / f"s{i}.ipynb", "2-3",
                       'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\nmy_reason = "momentum 0.01 loss 曲线"',
                       "import time\ntime.sleep(3)") for i in range(4)]
    out = tmp_path / "grades"
    grader = subprocess.Popen(_grade_cmd("2-3", paths, out), env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lines = []
    while len(lines) < 3:   # the sandbox line and two graded submissions
        lines.append(grader.stdout.readline())
    grader.send_signal(signal.SIGINT)   # the teacher's Ctrl+C
    grader.communicate(timeout=120)
    first = _rows(out)
    assert 2 <= len(first) < 4
    done = subprocess.run(_grade_cmd("2-3", paths, out), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("already graded") == len(first)
    rows = _rows(out)
    assert [r["submission"] for r in rows] == [p.stem for p in paths] and all(r["total"] == "5" for r in rows)


def test_grades_of_another_homework_are_never_overwritten(tmp_path):
    out = tmp_path / "grades"
    out.mkdir()
    (out / "grades.csv").write_text("submission,status,verdict\nx,ok,2\n", encoding="utf-8")
    path = _notebook(tmp_path / "s.ipynb", "2-3", 'my_best_optimizer = "sgd"')
    done = subprocess.run(_grade_cmd("2-3", [path], out), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "another --out folder" in done.stderr
    assert (out / "grades.csv").read_text(encoding="utf-8") == "submission,status,verdict\nx,ok,2\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_best_effort_mode_says_so_and_still_ends_every_process(tmp_path):
    marker = f"course-grade-best-effort-daemon-{os.getpid()}"  # this test run's daemon, not another CI lane's
    path = _notebook(tmp_path / "s.ipynb", "2-3",
                     "import subprocess, sys\nsubprocess.Popen(['sh', '-c', f'(setsid {sys.executable} -c "
                     f"\"import time; time.sleep(600)\" {marker} &)'])",
                     'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\nmy_reason = ""')
    out = tmp_path / "grades"
    done = subprocess.run(_grade_cmd("2-3", [path], out, "--sandbox", "none"), env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("sandbox: none") and "BEST EFFORT" in done.stdout.splitlines()[0]
    assert _rows(out)[0]["sandbox"] == "none" and _rows(out)[0]["total"] == "4"
    survivors = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    for pid in survivors:
        os.kill(int(pid), signal.SIGKILL)
    assert survivors == []


@pytest.mark.skipif(HAS_BWRAP, reason="bubblewrap is installed here")
def test_asking_for_bwrap_where_it_is_missing_names_the_fix(tmp_path):
    path = _notebook(tmp_path / "s.ipynb", "2-3", 'my_best_optimizer = "sgd"')
    done = subprocess.run(_grade_cmd("2-3", [path], tmp_path / "g", "--sandbox", "bwrap"), env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "install bubblewrap" in done.stderr.lower()
