"""``python -m course grade HOMEWORK SUBMISSION... [--out DIR]``: grade a class's notebooks.

Each submission runs in a fresh kernel (``course.homework.kernel``: memory and file-size limits set with
``resource.setrlimit`` in the kernel process), in its own temporary directory (also its HOME and TMPDIR,
deleted afterwards), under a time limit for the whole notebook and a cap on the output it may send back.
Its self-check and graded cells are left out (the teacher's checks run here, in the grading process, on the
answers the notebook ends with), and one extra cell reports the answer variables. Re-training a question
needs is cached on disk by the settings the student chose. ``grades.csv`` gets one row per submission as
soon as it is graded, ``feedback/<name>.md`` one Chinese feedback file each.

This is not a sandbox: the notebook runs with the teacher's rights and can read or write anything the
teacher can by absolute path, or use the network. See README, "For teachers".
"""
from __future__ import annotations

import asyncio
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import homework as hw
from .config import is_smoke
from .errors import CourseError

# What libraries (Paddle, IPython, matplotlib, pip) write into HOME on their own: not the notebook's doing.
_TOOL_DIRS = {".cache", ".config", ".local", ".ipython", ".jupyter", ".matplotlib", ".paddle", ".visualdl"}
ANSWER_MARK = "<<<course-grade-answers>>>"
DEFAULTS = {"time_limit": 900.0, "memory_mb": 4096, "output_kb": 1024, "file_mb": 512}
_REPORT = f'''
import json as _j
def _plain(_v):
    return _v if isinstance(_v, (str, int, float, bool, type(None))) else repr(_v)
print({ANSWER_MARK!r} + _j.dumps({{_k: _plain(globals().get(_k)) for _k in %r}}))
'''


def add_parser(sub) -> None:
    """The ``grade`` and ``homework`` subcommands (called by course/cli.py)."""
    grade = sub.add_parser("grade", help="run and grade submitted homework notebooks into grades.csv + feedback",
                           description="Run each SUBMISSION in a fresh kernel (own temporary directory, time, "
                                       "memory and output limits) and grade its answers against measurement.")
    grade.add_argument("homework", choices=sorted(hw.HOMEWORKS), help="which homework")
    grade.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="submitted .ipynb files")
    grade.add_argument("--out", default="grades", metavar="DIR", help="where grades.csv and feedback/ go")
    grade.add_argument("--time_limit", "--time-limit", type=float, default=DEFAULTS["time_limit"], metavar="SECONDS",
                       help="wall time allowed per notebook (default: %(default)s)")
    grade.add_argument("--memory_mb", "--memory-mb", type=int, default=DEFAULTS["memory_mb"], metavar="MB",
                       help="address-space limit of a notebook's kernel (default: %(default)s)")
    grade.add_argument("--output_kb", "--output-kb", type=int, default=DEFAULTS["output_kb"], metavar="KB",
                       help="output a notebook may print before it is interrupted (default: %(default)s)")
    grade.add_argument("--cache", default=None, metavar="DIR",
                       help="cache of re-training runs, shared between gradings (default: OUT/cache)")
    homework = sub.add_parser("homework", help="generate the student versions of the homework notebooks")
    homework.add_argument("action", choices=("generate",))
    homework.add_argument("--dest", default=str(hw.STUDENT_DIR), metavar="DIR",
                          help="where the student notebooks go (default: notebooks/homework)")


def command(command: str, args: dict) -> int:
    if command == "homework":
        for path in hw.generate(args["dest"]):
            print(f"wrote {path}")
        return 0
    rows = grade(args["homework"], args["submissions"], args["out"], time_limit=args["time_limit"],
                 memory_mb=args["memory_mb"], output_kb=args["output_kb"], cache_dir=args["cache"])
    print(f"graded {len(rows)} submission(s): {Path(args['out']) / 'grades.csv'}, feedback in "
          f"{Path(args['out']) / 'feedback'}")
    return 0


# ------------------------------------------------------------------------------------------- running

class _Run:
    """What happened when a submission ran: its answers (or None) and what went wrong."""

    def __init__(self):
        self.answers, self.status, self.problems = None, "ok", []


def _limited_client_class():
    from nbclient import NotebookClient

    class LimitedClient(NotebookClient):
        """NotebookClient with a deadline for the whole notebook and a cap on the output it keeps."""
        output_budget = 0
        over_budget = False
        report_index = -1

        def output(self, outs, msg, display_id, cell_index):
            if cell_index != self.report_index:
                size = len(json.dumps(msg.get("content", {})))
                self.output_budget -= size
                if self.output_budget < 0:
                    if not self.over_budget:
                        self.over_budget = True
                        asyncio.ensure_future(self.km.interrupt_kernel())   # stop the printing cell
                    return None
            return super().output(outs, msg, display_id, cell_index)

    return LimitedClient


def _quiet_log():
    import logging
    log = logging.getLogger("course.grade.kernel")
    log.setLevel(logging.WARNING)
    return log


def _kernel_manager(spec_dir: Path, memory_mb: int, file_mb: int):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec = spec_dir / "course-grade"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "course.homework.kernel", str(memory_mb << 20), str(file_mb << 20),
                 "-f", "{connection_file}"],
        "display_name": "course grading", "language": "python"}), encoding="utf-8")
    return AsyncKernelManager(kernel_name="course-grade", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dir)]))


def run_submission(nb, variables, *, time_limit, memory_mb, output_kb, file_mb=DEFAULTS["file_mb"], smoke) -> _Run:
    """Execute ``nb`` (graded and self-check cells already removed) and read back ``variables``."""
    import os

    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    run = _Run()
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells.append(nbformat.v4.new_code_cell(_REPORT % (list(variables),)))
    root = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        home, work, tmp = root / "home", root / "home" / "work", root / "tmp"
        for d in (work, tmp):
            d.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_"))}
        env.update(HOME=str(home), TMPDIR=str(tmp), MPLBACKEND="Agg", COURSE_SMOKE="1" if smoke else "0",
                   PYTHONDONTWRITEBYTECODE="1", IPYTHONDIR=str(root / "ipython"), MPLCONFIGDIR=str(root / "mpl"),
                   XDG_CACHE_HOME=str(root / "xdg"), XDG_CONFIG_HOME=str(root / "xdg"))
        deadline = time.monotonic() + time_limit
        client = _limited_client_class()(
            nb, km=_kernel_manager(root / "kernels", memory_mb, file_mb), allow_errors=True,
            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())), startup_timeout=120,
            resources={"metadata": {"path": str(work)}}, log=_quiet_log())
        client.output_budget, client.report_index = output_kb * 1024, len(nb.cells) - 1
        try:
            client.execute(cwd=str(work), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except CellTimeoutError:
            run.status = "timeout"
            run.problems.append(f"超过了时间限制 {time_limit:g} 秒，已被停止（是不是有死循环，或者训练太久？）。")
        except DeadKernelError:
            run.status = "crashed"
            run.problems.append(f"内核崩溃了（最常见的原因是超过了内存限制 {memory_mb} MB）。")
        if client.over_budget:
            run.status = "output_limit" if run.status == "ok" else run.status
            run.problems.append(f"输出超过了 {output_kb} KB，已被中断，多出的输出被丢弃。")
        errors = [(i, o) for i, c in enumerate(nb.cells[:-1]) if c.cell_type == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        for i, error in errors:
            if error["ename"] == "KeyboardInterrupt" and client.over_budget:
                continue
            memory = error["ename"] == "MemoryError"
            run.status = "memory" if memory and run.status in ("ok", "crashed") else (
                "raised" if run.status == "ok" else run.status)
            run.problems.append(f"第 {i + 1} 个单元出错：{error['ename']}: {str(error['evalue'])[:200]}"
                                + (f"（超过了内存限制 {memory_mb} MB）" if memory else ""))
        for out in nb.cells[-1].get("outputs", []):
            for line in str(out.get("text", "")).splitlines():
                if line.startswith(ANSWER_MARK):
                    run.answers = json.loads(line[len(ANSWER_MARK):])
        outside = sorted(p.name for p in home.iterdir() if p.name != "work" and p.name not in _TOOL_DIRS)
        if outside:
            run.status = "wrote_outside" if run.status == "ok" else run.status
            run.problems.append(f"在自己的工作目录之外写了文件（{', '.join(outside[:5])}），已丢弃。")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return run


# ------------------------------------------------------------------------------------------- grading

def _cached(cache_dir: Path, key: dict, compute):
    """compute() once per key (JSON on disk), so a class choosing the same settings trains them once."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", "_".join(f"{k}={v!r}" for k, v in sorted(key.items())))
    path = cache_dir / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    value = compute()
    path.write_text(json.dumps(value), encoding="utf-8")
    return value


class _Grader:
    """The measured truth for one homework, shared by all submissions of a batch."""

    def __init__(self, homework: str, cache_dir: Path, smoke: bool):
        self.homework, self.cache_dir, self.smoke = homework, cache_dir, smoke
        self.module = hw.checks(homework)
        if homework == "2-8":
            subset = self.module.val_subset(smoke)
            self.tols = self.module.tolerances(subset)
            self.given = self._retrain(0.0, 0)

    def _retrain(self, weight_decay, patience):
        m, subset = self.module, self.module.val_subset(self.smoke)
        return _cached(self.cache_dir, {"hw": self.homework, "val_subset": subset, "wd": float(weight_decay),
                                        "patience": int(patience)},
                       lambda: m.run_summary(weight_decay, patience, val_subset=subset))

    def check(self, answers: dict):
        if self.homework == "2-8":
            return self.module.check_all(answers, self.given, self._retrain, self.tols)
        return self.module.check_all(answers)


VARIABLES = {"2-3": ("my_best_optimizer", "my_best_lr", "my_reason"),
             "2-8": ("my_verdict", "my_best_epoch", "my_weight_decay", "my_patience", "my_reason")}


def _identify(nb, homework: str) -> str | None:
    """None when ``nb`` is this homework, else a message saying what it is."""
    declared = nb.metadata.get("course_homework", {}).get("id")
    if declared is not None:
        return None if declared == homework else f"这是作业 {declared} 的笔记本，不是作业 {homework} 的。"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    if all(re.search(rf"\b{v}\s*=", code) for v in VARIABLES[homework]):
        return None
    return f"这个笔记本不是作业 {homework}：既没有作业标记，也没有 {', '.join(VARIABLES[homework])} 这些答案变量。"


def _copied(nb, key_lines: list[str]) -> str | None:
    """The answer key pasted in (every line of the teacher's solution, its comment included): None if not,
    else whether the notebook was also run ("ran" / "never_ran"). Running the key's cells is no work of
    one's own: the teacher's comment "参考答案（教师版）" and the key's reason text come from nowhere else."""
    code = {line.strip() for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()}
    if not key_lines or not all(line in code for line in key_lines):
        return None
    ran = any(c.get("execution_count") or c.get("outputs") for c in nb.cells if c.cell_type == "code")
    return "ran" if ran else "never_ran"


def grade(homework: str, submissions, out_dir, *, time_limit=DEFAULTS["time_limit"], memory_mb=DEFAULTS["memory_mb"],
          output_kb=DEFAULTS["output_kb"], cache_dir=None, smoke: bool | None = None) -> list[dict]:
    """Grade every submission; returns the rows written to ``out_dir/grades.csv``."""
    import nbformat

    smoke = is_smoke() if smoke is None else smoke
    source = hw.read_source(homework)
    points, key_lines = hw.questions(source), hw.solution_lines(source)
    out_dir = Path(out_dir)
    (out_dir / "feedback").mkdir(parents=True, exist_ok=True)
    grader = _Grader(homework, Path(cache_dir) if cache_dir else out_dir / "cache", smoke)
    fields = ["submission", "status", *points, "total", "max_total", "needs_review", "message"]
    rows, names = [], set()
    with open(out_dir / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        f.flush()
        for path in map(Path, submissions):
            name = path.stem if path.stem not in names else f"{path.parent.name}_{path.stem}"
            names.add(name)
            row, feedback = _grade_one(path, homework, grader, points, key_lines, nbformat, smoke,
                                       time_limit=time_limit, memory_mb=memory_mb, output_kb=output_kb)
            row["submission"] = name
            writer.writerow(row)
            f.flush()   # a crash later in the class keeps this row
            (out_dir / "feedback" / f"{name}.md").write_text(feedback, encoding="utf-8")
            print(f"{name}: {row['status']}, {row['total']}/{row['max_total']}", flush=True)
            rows.append(row)
    return rows


def _grade_one(path, homework, grader, points, key_lines, nbformat, smoke, **limits):
    row = {q: 0 for q in points}
    row.update(status="ok", total=0, max_total=f"{sum(points.values()):g}", needs_review="", message="")
    lines = [f"# 作业 {homework} 反馈：{path.name}", ""]

    def finish(status, message, listed=False):
        row.update(status=status, message=message)
        lines.extend([f"**{message}**", ""] if message and not listed else [])
        row["total"] = f"{sum(float(row[q]) for q in points):g}"
        lines.append(f"总分：{row['total']} / {row['max_total']}" + ("（有题目留给老师评）" if row["needs_review"] else ""))
        return row, "\n".join(lines) + "\n"

    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except FileNotFoundError:
        return finish("missing", "找不到这个文件。")
    except Exception as e:   # not JSON, not a notebook, not UTF-8: one clear row, the batch goes on
        return finish("invalid", f"这不是一个能打开的 .ipynb 笔记本（{type(e).__name__}: {str(e)[:120]}）。"
                                 "请在 Jupyter 里重新保存后再提交。")
    other = _identify(nb, homework)
    if other:
        return finish("wrong_homework", other)
    copied = _copied(nb, key_lines)
    if copied:
        row["needs_review"] = "copied"
        ran = "笔记本运行过，但答案不是自己的" if copied == "ran" else "笔记本也没有运行过"
        return finish("copied", f"答案单元和参考答案逐字相同（连教师版的注释也在）：{ran}。不计分，请老师核对。")
    skip = {"self_check", *points}
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in skip]
    run = run_submission(nb, VARIABLES[homework], smoke=smoke, **limits)
    for problem in run.problems:
        lines.append(f"- ⚠️ {problem}")
    if run.answers is None:
        return finish(run.status if run.status != "ok" else "no_answers",
                      "笔记本没有运行到最后，读不到答案：" + ("；".join(run.problems) or "原因不明。"))
    try:
        results = grader.check(run.answers)
    except Exception as e:   # a grading bug must not stop the class
        return finish("grading_error", f"评分程序出错（{type(e).__name__}: {e}），请老师手工评。")
    review = []
    for q, check in results.items():
        row[q] = f"{points[q]:g}" if check.ok else 0
        if check.review:
            review.append(q)
        lines.append(f"- {check.message}（{row[q]} / {points[q]:g} 分）")
    row["needs_review"] = " ".join(review)
    lines.append("")
    return finish(run.status, "；".join(p.rstrip("。") for p in run.problems), listed=True)
