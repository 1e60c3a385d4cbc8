"""``python -m course grade HOMEWORK SUBMISSION... [--out DIR]``: grade a class's notebooks.

Each submission runs in a fresh kernel in a sandbox (``sandbox.py``: bubblewrap on Linux, best effort
elsewhere; the first line printed and the ``sandbox`` column of ``grades.csv`` say which), one at a time, and
everything it started is gone before the next one starts (``runner.py``). Its self-check and graded cells are
left out: the teacher's checks run here, in the grading process, on the answers the notebook ends with.

The batch never stops for one submission: whatever goes wrong with it (a file that is no notebook, metadata of
any type, a kernel that dies, hangs, floods or signals, a name too long for a file) becomes its row with a
message in Chinese. Rows are written as they are graded; run the same command again and what is already graded
(same file, same content) is kept and skipped, so a grading stopped with Ctrl+C resumes where it stopped.
Each file is read once, at the start: the SHA-256 that resuming compares, the signed variants of the class and
the grading all come from the same bytes (``_read_submission``).

Outputs a teacher can trust: one feedback file per submission, named uniquely (from its path when two files
share a name), bounded in size; CSV cells that a spreadsheet would run as a formula are escaped; re-training
results are cached under the output folder (or ``--cache``) with a keyed checksum, never where a kernel can
write, and an entry whose checksum fails is re-computed.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import sys
import threading
import unicodedata
from pathlib import Path

from ..config import is_smoke
from ..errors import CourseError
from . import checks, questions, read_source, solution_lines
from . import sandbox as sandboxes
from . import variants
from .runner import DEFAULTS, RUNNING, run_submission

MAX_NOTEBOOK_MB = 50          # a submission larger than this is not read (an .ipynb with outputs is ~1 MB)
FEEDBACK_CHARS = 20_000       # each feedback file is cut to this size
NAME_BYTES = 120              # feedback file names stay far below the 255-byte limit of file systems
VARIABLES = {"2-3": ("my_best_optimizer", "my_best_lr", "my_reason"),
             "2-8": ("my_verdict", "my_best_epoch", "my_weight_decay", "my_patience", "my_reason")}


def add_parser(sub) -> None:
    """The ``grade`` and ``homework`` subcommands (called by course/cli.py)."""
    from . import HOMEWORKS, STUDENT_DIR
    grade = sub.add_parser("grade", help="run and grade submitted homework notebooks into grades.csv + feedback",
                           description="Run each SUBMISSION in a fresh sandboxed kernel (own folder, time, memory "
                                       "and output limits) and grade its answers against measurement. Run it again "
                                       "with the same --out to resume.")
    grade.add_argument("homework", choices=sorted(HOMEWORKS), help="which homework")
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
    grade.add_argument("--sandbox", choices=sandboxes.MODES, default="auto",
                       help="bwrap: isolate each kernel with bubblewrap; none: best effort; auto (default): bwrap "
                            "when it works here")
    grade.add_argument("--secret", default=None, metavar="FILE",
                       help="the teacher's secret that signed the students' versions (default: "
                            f"{variants.DEFAULT_SECRET}, or $COURSE_GRADING_SECRET)")
    homework = sub.add_parser("homework", help="generate the student versions of the homework notebooks")
    homework.add_argument("action", choices=("generate", "forms"),
                          help="generate: write the student versions; forms: print the table of answer forms read")
    homework.add_argument("--dest", default=str(STUDENT_DIR), metavar="DIR",
                          help="where the student notebooks go (default: notebooks/homework)")
    homework.add_argument("--roster", default=None, metavar="FILE",
                          help="one student name or id per line: write one personal, signed version per student "
                               "and homework into DEST/<homework>/<student>.ipynb")
    homework.add_argument("--homework", default=None, choices=sorted(HOMEWORKS), help="only this homework")
    homework.add_argument("--secret", default=None, metavar="FILE", help="the teacher's secret (made if missing)")


def command(command: str, args: dict) -> int:
    from . import HOMEWORKS, generate, generate_personal
    if command == "homework" and args["action"] == "forms":
        print(forms_markdown())
        return 0
    if command == "homework":
        if args.get("roster"):
            for path in generate_personal(args["roster"], args["dest"], homeworks=[args["homework"]]
                                          if args.get("homework") else list(HOMEWORKS), secret_file=args.get("secret")):
                print(f"wrote {path}")
            print(f"the secret that signed them: {variants.secret_path(args.get('secret'))} (keep it; grading needs it)")
            return 0
        for path in generate(args["dest"]):
            print(f"wrote {path}")
        return 0
    sandbox = sandboxes.choose(args.get("sandbox") or "auto")
    print(sandbox.banner(), flush=True)
    if sandbox.mode == "none":
        sandboxes.become_subreaper()   # so that detached processes of a submission can be found and killed
    try:
        rows = grade(args["homework"], args["submissions"], args["out"], time_limit=args["time_limit"],
                     memory_mb=args["memory_mb"], output_kb=args["output_kb"], cache_dir=args["cache"],
                     sandbox=sandbox, secret_file=args.get("secret"))
    except KeyboardInterrupt:
        return 130   # the rows so far are in grades.csv (grade() said where to go on from)
    print(f"graded {len(rows)} submission(s): {Path(args['out']) / 'grades.csv'}, feedback in "
          f"{Path(args['out']) / 'feedback'}")
    peak_mb = _peak_memory_mb()
    if peak_mb is not None:
        print(f"grader peak memory: {peak_mb} MB (the grading process; each kernel is limited by --memory_mb)")
    return 0


def _peak_memory_mb() -> int | None:
    """This process's peak resident memory. Linux: VmHWM, which starts again at exec; ``ru_maxrss`` does not
    (it keeps the parent's size at fork time: a grader started by a 1.6 GB process would report 1.6 GB)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) // 1024
    except (OSError, StopIteration, ValueError):
        pass
    try:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // (1 << 20) if sys.platform == "darwin" else peak // 1024   # bytes on macOS, KiB elsewhere
    except ImportError:   # Windows
        return None


# ------------------------------------------------------------------------------------------- the truth

class _Cache:
    """Re-training results on disk, one JSON file per setting, each with a keyed checksum (HMAC under the
    teacher's secret): an entry written by anyone without the secret is detected and re-computed."""

    def __init__(self, folder: Path, secret: bytes):
        self.folder, self.secret, self.rejected = folder, secret, 0
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: dict, compute):
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        path = self.folder / f"{name}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("key") == key and entry.get("mac") == variants.mac(self.secret, key, entry.get("value")):
                return entry["value"]
            self.rejected += 1
        except (OSError, ValueError, AttributeError, TypeError):
            pass
        value = compute()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "value": value, "mac": variants.mac(self.secret, key, value)}),
                       encoding="utf-8")
        os.replace(tmp, path)
        return value


class _Grader:
    """The measured truth for one homework, per variant, shared by all submissions of a batch."""

    def __init__(self, homework: str, cache: _Cache, smoke: bool):
        self.homework, self.cache, self.smoke = homework, cache, smoke
        self.module = checks(homework)
        if homework == "2-8":
            # everything the checks import is imported now, before any submission runs
            from .. import callbacks, data, diagnose, model, optim, train   # noqa: F401
            self.subset = self.module.val_subset(smoke)
            self.tols = self.module.tolerances(self.subset)

    def _summary(self, seed, weight_decay, patience):
        key = {"hw": self.homework, "val_subset": self.subset, "seed": seed, "wd": float(weight_decay),
               "patience": int(patience)}
        return self.cache.get(key, lambda: self.module.run_summary(weight_decay, patience, val_subset=self.subset,
                                                                   seed=seed))

    def check(self, answers: dict, variant: dict):
        if self.homework == "2-8":
            seed = variant.get("seed", self.module.HOMEWORK["seed"])
            given = self._summary(seed, 0.0, 0)
            return self.module.check_all(answers, given, lambda wd, p: self._summary(seed, wd, p), self.tols)
        return self.module.check_all(answers, variant or None)

    def check_without_training(self, answers: dict, variant: dict) -> dict:
        """The questions whose check needs no new training (2-8's fix re-trains: left out)."""
        if self.homework == "2-8":
            given = self._summary(variant.get("seed", self.module.HOMEWORK["seed"]), 0.0, 0)
            return {"verdict": self.module.check_verdict(answers.get("my_verdict"), given),
                    "best_epoch": self.module.check_best_epoch(answers.get("my_best_epoch"), given,
                                                               self.tols["EPOCH_TOL"])}
        return self.check(answers, variant)


def forms_markdown() -> str:
    """The table of answer forms the grader reads (docs/teachers.md), made by the grader's own parsers."""
    from . import answers, hw2_3
    lines = ["| answer | a student writes | read as |", "|---|---|---|"]
    for kind, text, _ in [*answers.FORMS, *hw2_3.FORMS]:
        value = answers.form_value(kind, text)
        read = hw2_3.parse_optimizer(value) if kind == "optimizer" else answers.read_form(kind, value)
        shown = "not read: asked again" if read is None else f"`{read:g}`" if isinstance(read, float) else f"`{read}`"
        lines.append(f"| {kind} | `{text}` | {shown} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- reading

def _text(value) -> str:
    """A cell's source as nbformat allows it (a string or a list of strings); anything else is empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def _clean_notebook(raw: str):
    """The submission as a valid v4 notebook of its code and markdown cells, whatever types its JSON holds."""
    import nbformat
    data = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ValueError("no list of cells")
    nb = nbformat.v4.new_notebook()
    meta = data.get("metadata")
    nb.metadata = meta if isinstance(meta, dict) else {}
    for cell in data["cells"]:
        if not isinstance(cell, dict):
            continue
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        source = _text(cell.get("source"))
        if cell.get("cell_type") == "code":
            new = nbformat.v4.new_code_cell(source, metadata=metadata)
            count = cell.get("execution_count")
            new.execution_count = count if isinstance(count, int) and not isinstance(count, bool) else None
            new["had_outputs"] = bool(cell.get("outputs")) if isinstance(cell.get("outputs"), list) else False
            nb.cells.append(new)
        elif cell.get("cell_type") == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(source, metadata=metadata))
    return nb


def _grade_id(cell) -> str | None:
    info = cell.metadata.get("nbgrader")
    value = info.get("grade_id") if isinstance(info, dict) else None
    return value if isinstance(value, str) else None


def _identify(nb, homework: str) -> str | None:
    """None when ``nb`` is this homework, else a message saying what it is."""
    info = nb.metadata.get("course_homework")
    declared = info.get("id") if isinstance(info, dict) else None
    if declared is not None:
        return None if declared == homework else f"这是作业 {str(declared)[:20]} 的笔记本，不是作业 {homework} 的。"
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
    ran = any(c.get("execution_count") or c.get("had_outputs") for c in nb.cells if c.cell_type == "code")
    return "ran" if ran else "never_ran"


# ------------------------------------------------------------------------------------------- writing

def csv_safe(value) -> str:
    """A CSV cell a spreadsheet shows as text: '=1+1', '+...', '-...', '@...' get a leading apostrophe
    (OWASP's advice against formula injection), control characters are dropped."""
    text = "".join(ch for ch in str(value) if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _safe_name(stem: str) -> str:
    name = re.sub(r"[^\w\-.]+", "_", unicodedata.normalize("NFKC", stem)).strip("._") or "submission"
    while len(name.encode("utf-8")) > NAME_BYTES:
        name = name[:-1]
    return name


def unique_names(paths: list[Path]) -> list[str]:
    """A feedback name per submission: its file name, or, when two share one, its path (with a short hash of
    the full path when even that is not unique or too long)."""
    stems = [_safe_name(p.stem) for p in paths]
    names = []
    for path, stem in zip(paths, stems):
        if stems.count(stem) == 1:
            names.append(stem)
            continue
        parts = [_safe_name(part) for part in path.parent.parts[-2:] if part not in ("/", "")]
        names.append(_safe_name("_".join([*parts, stem])))
    for i, name in enumerate(names):
        if names.count(name) > 1 or len(name.encode("utf-8")) >= NAME_BYTES:
            digest = hashlib.sha256(str(paths[i].resolve()).encode()).hexdigest()[:8]
            names[i] = f"{name[:NAME_BYTES - 9]}-{digest}"
    return names


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


FIELDS_BEFORE = ["submission", "status"]
FIELDS_AFTER = ["total", "max_total", "needs_review", "message", "variant", "sandbox", "path", "sha256"]


def _previous_rows(csv_path: Path, fields: list[str]) -> list[dict]:
    """Rows of an earlier (interrupted) grading into the same folder; an error if they are of another kind."""
    if not csv_path.exists():
        return []
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != fields:
            raise CourseError(f"{csv_path} holds grades of another homework or version (columns "
                              f"{', '.join((reader.fieldnames or [])[:6])}...): grade into another --out folder, or "
                              "move that one away. Nothing was changed.")
        return list(reader)


def grade(homework: str, submissions, out_dir, *, time_limit=DEFAULTS["time_limit"], memory_mb=DEFAULTS["memory_mb"],
          output_kb=DEFAULTS["output_kb"], cache_dir=None, smoke: bool | None = None, sandbox=None,
          secret_file=None) -> list[dict]:
    """Grade every submission; returns the rows of ``out_dir/grades.csv`` (earlier ones kept, see the module)."""
    smoke = is_smoke() if smoke is None else smoke
    sandbox = sandbox or sandboxes.choose("auto")
    source = read_source(homework)
    points, key_lines = questions(source), solution_lines(source)
    out_dir = Path(out_dir)
    fields = [*FIELDS_BEFORE, *points, *FIELDS_AFTER]
    previous = _previous_rows(out_dir / "grades.csv", fields)
    (out_dir / "feedback").mkdir(parents=True, exist_ok=True)
    try:
        secret = variants.load_secret(secret_file)
    except CourseError:
        secret = None   # no personal versions were made: every submission is the public version
    cache = _Cache(Path(cache_dir) if cache_dir else out_dir / "cache",
                   secret or variants.load_secret(out_dir / ".cache-key", create=True))
    grader = _Grader(homework, cache, smoke)
    paths = [Path(p) for p in submissions]
    names = unique_names(paths)
    done = {(r["path"], r["sha256"]): r for r in previous}
    read = [_read_submission(path) for path in paths]   # each file read once: digest, notebook, variant
    rows, seen_variants = [], _class_variants(read, secret, homework)
    limits = {"time_limit": time_limit, "memory_mb": memory_mb, "output_kb": output_kb}
    new_file = not (out_dir / "grades.csv").exists()
    with _interruptible() as interrupted, open(out_dir / "grades.csv", "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new_file:
            writer.writeheader()
            f.flush()
        for index, (submission, name) in enumerate(zip(read, names), start=1):
            path, digest = submission.path, submission.sha256
            old = done.get((str(path.resolve()), digest))
            if old is not None:
                print(f"{old['submission']}: already graded ({old['status']}, {old['total']}/{old['max_total']}), kept",
                      flush=True)
                rows.append(old)
                continue
            try:
                if interrupted:
                    raise KeyboardInterrupt
                row, feedback = _grade_one(submission, homework, grader, points, key_lines, smoke, sandbox, secret,
                                           seen_variants, limits)
                if interrupted:   # its kernel was killed half-way: no row, the next run grades it again
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                print(f"\ninterrupted at {path}: {index - 1} of {len(paths)} graded into {out_dir / 'grades.csv'}; "
                      "run the same command again to go on from here.", file=sys.stderr, flush=True)
                raise
            except Exception as e:   # a grading bug must not stop the class: this row says so
                row, feedback = _empty_row(points), f"# 作业 {homework} 反馈\n\n评分程序出错：{type(e).__name__}\n"
                row.update(status="grading_error", message=f"评分程序出错（{type(e).__name__}: {str(e)[:300]}），请老师手工评。")
            row.update(submission=name, sandbox=sandbox.mode, path=str(path.resolve()), sha256=digest)
            _write_atomic(out_dir / "feedback" / f"{name}.md", feedback[:FEEDBACK_CHARS])
            writer.writerow({k: csv_safe(row.get(k, "")) for k in fields})
            f.flush()   # a crash later in the class keeps this row
            print(f"{name}: {row['status']}, {row['total']}/{row['max_total']}", flush=True)
            rows.append(row)
    if cache.rejected:
        print(f"warning: {cache.rejected} cache entr{'y' if cache.rejected == 1 else 'ies'} failed the checksum "
              "and were re-computed (someone wrote into the cache folder)", file=sys.stderr)
    return rows


def _class_variants(submissions, secret, homework) -> dict:
    """The signed variants of this batch (all read first, so that the first student is compared with the last)."""
    found = {}
    for submission in submissions:
        if submission.nb is None:
            continue   # reported when its turn comes
        try:
            state, variant, _ = variants.verify(submission.nb.metadata, secret, homework)
        except Exception:   # reported when its turn comes
            continue
        if state == "signed":
            found.setdefault(json.dumps(variant, sort_keys=True), variant)
    return found


class _interruptible:
    """A teacher's Ctrl+C (SIGINT) during a batch: kill the running kernel at once, write nothing of that
    submission (the next run grades it again) and stop before the next one. A second Ctrl+C is Python's own."""

    def __enter__(self):
        self.hit, self.previous = [], None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self.hit

    def _handler(self, signum, frame):
        self.hit.append(signum)
        signal.signal(signal.SIGINT, self.previous or signal.default_int_handler)
        pid = RUNNING.get("pid")
        if pid:
            sandboxes.kill_tree(pid)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


class _Submission:
    """One submission file, read once: its SHA-256 (the key that resuming compares), the notebook, or why
    there is none (``status`` and the feedback's ``message``; ``error``: an unexpected failure, raised
    again when the submission is graded, so that it becomes that submission's ``grading_error`` row)."""

    def __init__(self, path: Path):
        self.path, self.sha256, self.nb = path, "", None
        self.status = self.message = ""
        self.error = None


def _read_submission(path: Path) -> _Submission:
    """Read ``path`` once: hash its bytes and parse them. A file over ``MAX_NOTEBOOK_MB`` is hashed, not parsed."""
    sub = _Submission(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_NOTEBOOK_MB << 20:
                digest = hashlib.sha256()
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
                sub.sha256 = digest.hexdigest()
                sub.status = "invalid"
                sub.message = f"文件有 {size >> 20} MB，超过了 {MAX_NOTEBOOK_MB} MB：请清除输出后重新保存再提交。"
                return sub
            raw = f.read()
    except FileNotFoundError:
        sub.status, sub.message = "missing", "找不到这个文件。"
        return sub
    except OSError as e:
        sub.status, sub.message = "invalid", _unreadable(e)
        return sub
    sub.sha256 = hashlib.sha256(raw).hexdigest()
    try:
        sub.nb = _clean_notebook(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:   # JSON, UTF-8 (UnicodeDecodeError is a ValueError), nesting
        sub.status, sub.message = "invalid", _unreadable(e)
    except Exception as e:   # a grading bug: that submission's grading_error row, not the class's end
        sub.error = e
    return sub


def _unreadable(e: Exception) -> str:
    return (f"这不是一个能打开的 .ipynb 笔记本（{type(e).__name__}: {str(e)[:120]}）。"
            "请在 Jupyter 里重新保存后再提交。")


def _empty_row(points) -> dict:
    row = {q: 0 for q in points}
    row.update(status="ok", total=0, max_total=f"{sum(points.values()):g}", needs_review="", message="", variant="")
    return row


def _grade_one(submission: _Submission, homework, grader, points, key_lines, smoke, sandbox, secret, seen_variants,
               limits):
    row = _empty_row(points)
    lines = [f"# 作业 {homework} 反馈：{submission.path.name[:200]}", ""]
    review = []

    def finish(status, message, listed=False):
        row.update(status=status, message=message[:2000])
        lines.extend([f"**{message[:2000]}**", ""] if message and not listed else [])
        row["total"] = f"{sum(float(row[q]) for q in points):g}"
        row["needs_review"] = " ".join(dict.fromkeys(review))
        lines.append(f"总分：{row['total']} / {row['max_total']}" + ("（有题目留给老师评）" if row["needs_review"] else ""))
        return row, "\n".join(lines) + "\n"

    if submission.error is not None:
        raise submission.error
    if submission.nb is None:
        return finish(submission.status, submission.message)
    nb = submission.nb
    other = _identify(nb, homework)
    if other:
        return finish("wrong_homework", other)
    state, variant, student = variants.verify(nb.metadata, secret, homework)
    row["variant"] = json.dumps(variant, ensure_ascii=False, sort_keys=True) if variant else "public"
    if state == "forged":
        review.append("variant")
        lines.append(f"- ⚠️ 这份作业的个人版本标记（{student}）校验不通过：被改过，或者是别人的版本。按公开版本评分，请老师核对。")
        variant = {}
    elif state == "unsigned":
        review.append("variant")
        lines.append("- ⚠️ 笔记本带有个人版本标记，但这台机器上没有签发它的密钥（--secret），无法核对；按标记的版本评分。")
    copied = _copied(nb, key_lines)
    if copied:
        review.append("copied")
        ran = "笔记本运行过，但答案不是自己的" if copied == "ran" else "笔记本也没有运行过"
        return finish("copied", f"答案单元和参考答案逐字相同（连教师版的注释也在）：{ran}。不计分，请老师核对。")
    skip = {"self_check", *points}
    nb.cells = [c for c in nb.cells if _grade_id(c) not in skip]
    for cell in nb.cells:
        cell.pop("had_outputs", None)
    run = run_submission(nb, VARIABLES[homework], sandbox=sandbox, smoke=smoke, **limits)
    for problem in run.problems:
        lines.append(f"- ⚠️ {problem[:500]}")
    if run.answers is None:
        return finish(run.status if run.status != "ok" else "no_answers",
                      "笔记本没有运行到最后，读不到答案：" + ("；".join(run.problems) or "原因不明。"))
    results = grader.check(run.answers, variant)
    for q, check in results.items():
        row[q] = f"{points[q]:g}" if check.ok else 0
        if check.review:
            review.append(q)
        lines.append(f"- {check.message[:1000]}（{row[q]} / {points[q]:g} 分）")
    if state == "signed":
        others = _right_for_another(grader, run.answers, variant, results, seen_variants)
        if others:
            review.append("other_variant")
            lines.append(f"- ⚠️ 答错的题目 {', '.join(others)} 对另一份个人版本来说是对的：答的可能是别人的题目，请老师核对。")
    lines.append("")
    return finish(run.status, "；".join(p.rstrip("。") for p in run.problems), listed=True)


def _right_for_another(grader, answers, variant, results, seen_variants) -> list[str]:
    """The questions answered wrong for this variant but right for another variant seen in this batch."""
    wrong = [q for q, c in results.items() if c.ok is False and q != "reason"]
    found = set()
    for other in seen_variants.values():
        if other == variant or not wrong:
            continue
        for q, check in grader.check_without_training(answers, other).items():
            if q in wrong and check.ok:
                found.add(q)
    return sorted(found)
