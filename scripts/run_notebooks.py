"""Run the course notebooks as students run them, time them, and record the times.

    python scripts/run_notebooks.py                 # every notebook, full mode, two at a time
    python scripts/run_notebooks.py --smoke         # the same in smoke mode (COURSE_SMOKE=1)
    python scripts/run_notebooks.py 2.8.1 00_quick  # only the notebooks whose name contains one of these
    python scripts/run_notebooks.py --jobs 1        # one at a time

Each notebook runs top to bottom in a real Jupyter kernel (nbclient), in its own folder as the working
directory, like ``tests/test_notebooks.py`` does. The executed copy, with its outputs, goes to
``build/notebooks/<full|smoke>/`` (never into ``notebooks/``, which is committed without outputs);
``make site`` renders those copies.

Afterwards ``docs/notebooks.md`` is rewritten: one row per notebook with its full-mode and smoke-mode wall
times and results; a ``total:`` line with the wall-clock time of the last full-mode run of every notebook
(start of the first to end of the last, with the highest 1-minute load average seen during it), and the
sum of the per-notebook times on its own line. Rows of notebooks that were not run this time are kept,
so re-running one notebook updates only its row. Then the first cell of each notebook is given its
measured full-mode time, from that table (a line between two HTML comments, never typed by hand);
``--no-stamp`` skips this.

Each notebook trains what it teaches (the package keeps no cache of trained runs). Each kernel
gets ``OMP_NUM_THREADS=1`` unless set (one thread per process was fastest here, docs/benchmarks.md).
Notebooks start longest first (by their last measured time in docs/notebooks.md; never measured ones
before all), so two at a time the run does not end with one long notebook alone on one core; each line
is printed as its notebook finishes.

Key results: a notebook declares the numbers its conclusions rest on with ``course.results.record(key, value)``.
Each kernel gets ``COURSE_RESULTS_FILE`` naming ``build/notebooks/<mode>/<name>.results.jsonl``, which those
calls append to. After a full-mode run the results of every notebook that passed replace its entry in
``docs/results.json`` (notebook, key, value, note, mode, date, CPU) and ``docs/results.md`` is written from it
(entries of notebooks not run this time are kept); then every ``<!-- result:KEY -->…<!-- /result -->`` in a
notebook's Markdown cells is given the recorded value (``--no-stamp`` skips this too).

Smoke mode leaves every tracked file alone: its table goes to ``build/notebooks/smoke/notebooks.md``, and
neither the results record nor the stamps are touched.

Each kernel talks to its client over local IPC sockets (not TCP), and its own stdout / stderr (Paddle's C++
messages, e.g. the "FatalError: Termination signal" report when the kernel is shut down) go to
``build/notebooks/<mode>/<name>.kernel.log``, which is printed only for a notebook that failed.

The exit status is 1 when any notebook failed (the failing cell's error is printed).
"""
import argparse
import datetime as _dt
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this checkout's course (course.results, course.homework), not another installed one
    sys.path.insert(0, str(ROOT))
NOTEBOOKS_DIR = ROOT / "notebooks"
BUILD_DIR = ROOT / "build" / "notebooks"
TABLE = ROOT / "docs" / "notebooks.md"
RESULTS_JSON = ROOT / "docs" / "results.json"
RESULTS_MD = ROOT / "docs" / "results.md"
SMOKE_TABLE = BUILD_DIR / "smoke" / "notebooks.md"
MODES = ("full", "smoke")
STAMP_BEGIN = "<!-- measured-time -->"
STAMP_END = "<!-- /measured-time -->"
TIMEOUT = 3600  # seconds for one cell; a full-mode training cell takes minutes, never an hour


def all_notebooks():
    """Chapter notebooks in the course's order (their names sort that way), then the homework."""
    found = sorted(p for p in NOTEBOOKS_DIR.glob("*.ipynb"))
    found += sorted(p for p in (NOTEBOOKS_DIR / "homework").glob("*.ipynb"))
    return found


def key_of(path: Path) -> str:
    """The notebook's name in the table: its path under notebooks/ without the suffix."""
    try:
        return path.relative_to(NOTEBOOKS_DIR).with_suffix("").as_posix()
    except ValueError:  # a notebook elsewhere (the runner's own tests)
        return path.stem


def longest_first(paths, mode: str, rows: dict) -> list:
    """The order to start notebooks in: the longest by their last measured time in this mode first, those
    never measured before all of them. With two at a time, a long notebook started last would run alone
    at the end while the other core idles; longest first keeps both busy (the table stays in course order)."""
    def last_time(path):
        seconds = rows.get(key_of(path), {}).get(mode, (None,))[0]
        return float("inf") if seconds is None else seconds
    return sorted(paths, key=last_time, reverse=True)   # stable: ties keep the course's order


def results_path(out: Path) -> Path:
    """Where the kernel's ``course.results.record`` calls go for the executed copy ``out``."""
    return Path(out).with_suffix(".results.jsonl")


def log_path(out: Path) -> Path:
    """The kernel process's own stdout and stderr, for the executed copy ``out``."""
    return Path(out).with_suffix(".kernel.log")


def run_one(path_str: str, mode: str, out_str: str):
    """Execute one notebook in a fresh kernel; returns (key, seconds, result). Runs in a worker process.

    The kernel's recorded results go to ``results_path(out)`` and its stdout / stderr to ``log_path(out)``
    (both replaced on every run)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from traitlets.config import Config

    from course import results

    path, out = Path(path_str), Path(out_str)
    out.parent.mkdir(parents=True, exist_ok=True)
    results_path(out).unlink(missing_ok=True)
    env_before = dict(os.environ)
    if mode == "smoke":
        os.environ["COURSE_SMOKE"] = "1"
    else:
        os.environ.pop("COURSE_SMOKE", None)
    os.environ.pop("MPLBACKEND", None)  # the kernel uses its inline backend, so figures are kept as outputs
    os.environ[results.ENV] = str(results_path(out).resolve())
    # the kernel imports this checkout's course, not whichever one is installed (another worktree's, say)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    nb = nbformat.read(path, as_version=4)
    # IPC sockets in a short private folder (a socket path may not exceed ~100 bytes): no TCP port, so
    # ipykernel has no "running over TCP without encryption" warning to give
    sockets = tempfile.mkdtemp(prefix="nb-")
    config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "k")}} if os.name != "nt"
                    else {})   # ZeroMQ has no IPC transport on Windows: TCP there, with its warning in the log
    client = NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", config=config,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    result = "ok"
    with open(log_path(out), "wb") as log:
        try:
            client.execute(stdout=log, stderr=log)  # Popen arguments of the kernel process
        except CellExecutionError as error:
            result = "failed: " + (str(error).strip().splitlines() or ["error"])[-1][:160]
        except Exception as error:  # a dead kernel, a timeout: still a row in the table
            result = f"failed: {type(error).__name__}: {str(error)[:160]}"
    seconds = time.perf_counter() - start
    shutil.rmtree(sockets, ignore_errors=True)
    result = re.sub(r"\x1b\[[0-9;]*m", "", result)  # the traceback's terminal colours
    # which run produced this copy: make site says so at the top of the page
    nb.metadata["course_run"] = {"mode": mode, "finished": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                                 "result": result, "seconds": round(seconds)}
    nbformat.write(nb, out)
    os.environ.clear()
    os.environ.update(env_before)
    return key_of(path), seconds, result


def executed_path(path: Path, mode: str) -> Path:
    """Where the executed copy of the notebook ``path`` goes."""
    return BUILD_DIR / mode / path.relative_to(NOTEBOOKS_DIR)


def fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


def parse_time(text: str):
    match = re.fullmatch(r"(?:(\d+) min)?\s*(?:(\d+) s)?", text.strip())
    if not text.strip() or not match or not any(match.groups()):
        return None
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


HEADER = ("| notebook | full mode | full result | full: measured | smoke mode | smoke result | smoke: measured |\n"
          "|---|---:|---|---|---:|---|---|\n")


def read_table(path: Path = None) -> dict:
    """{key: {"full": (seconds|None, result, when), "smoke": (...)}} from docs/notebooks.md."""
    path = path or TABLE
    rows = {}
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not cells[0].startswith("`"):
            continue
        rows[cells[0].strip("`")] = {"full": (parse_time(cells[1]), cells[2], cells[3]),
                                     "smoke": (parse_time(cells[4]), cells[5], cells[6])}
    return rows


WALL_PREFIX = "total: "
DEFAULT_JOBS = 2  # the machine's two cores; one notebook mostly uses one


def read_wall(path: Path = None) -> str:
    """The ``total:`` line (wall clock of the last full run of every notebook) kept in docs/notebooks.md."""
    path = path or TABLE
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(WALL_PREFIX) and " wall clock " in line:  # not the old sum-only line
                return line
    return ""


def wall_line(seconds: float, count: int, jobs: int, load: float, today: str, cpu: str = "") -> str:
    command = "`make notebooks`" if jobs == DEFAULT_JOBS else f"`make notebooks ARGS=\"--jobs {jobs}\"`"
    return (f"{WALL_PREFIX}{round(seconds / 60)} min wall clock ({fmt_time(seconds)}): {command}, all {count} "
            f"notebooks in full mode, {jobs} at a time, {today}{f', on {cpu}' if cpu else ''}; highest 1-minute "
            f"load average during the run {load:.2f}")


class LoadWatcher(threading.Thread):
    """The highest 1-minute load average (/proc/loadavg) seen while a run lasts, sampled every 15 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.highest, self._done = self.sample(), threading.Event()  # not _stop: Thread has its own

    @staticmethod
    def sample() -> float:
        try:
            return float(Path("/proc/loadavg").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return float("nan")

    def run(self):
        while not self._done.wait(15):
            self.highest = max(self.highest, self.sample())

    def stop(self) -> float:
        self._done.set()
        return max(self.highest, self.sample())


def render_table(rows: dict, wall: str = "") -> str:
    order = [key_of(p) for p in all_notebooks()]
    keys = [k for k in order if k in rows] + sorted(k for k in rows if k not in order)
    lines = []
    for key in keys:
        cells = [f"`{key}`"]
        for mode in MODES:
            seconds, result, when = rows[key].get(mode, (None, "", ""))
            cells += [fmt_time(seconds) if seconds is not None else "not measured", result or "not run", when]
        lines.append("| " + " | ".join(cells) + " |")
    full = [rows[k]["full"][0] for k in keys if rows[k]["full"][0] is not None]
    smoke = [rows[k]["smoke"][0] for k in keys if rows[k]["smoke"][0] is not None]
    missing = [k for k in order if rows.get(k, {}).get("full", (None,))[0] is None]
    total = wall or (f"{WALL_PREFIX}not measured yet (no full-mode run of all {len(order)} notebooks at once "
                     "since this line was introduced)")
    total += (f"\n\nsum of the per-notebook full-mode times: {round(sum(full) / 60)} min"
              + ("" if not missing else f" ({len(full)} of {len(order)} notebooks measured; "
                                        f"not yet: {', '.join(missing)})"))
    return (
        "# How long each notebook takes\n\n"
        "Written by `make notebooks` (`scripts/run_notebooks.py`); do not edit by hand. Each notebook ran top to\n"
        "bottom in a real Jupyter kernel on this project's 2-core CPU machine; the \"measured\" columns say when\n"
        "and how many notebooks that run executed at the same time (wall-clock times include the other notebook's\n"
        "share of the CPU, and of whatever else the machine was running). Full mode is what students run;\n"
        "smoke mode (`COURSE_SMOKE=1`, about 2,000 images, 1 epoch) is what the test suite runs. A smoke run\n"
        "no longer writes this page (its table goes to `build/notebooks/smoke/notebooks.md`): the smoke columns\n"
        "here are from the last smoke run that did, on the date they say.\n\n"
        "Commands: `make notebooks` (full mode), `make notebooks ARGS=--smoke`, or one notebook:\n"
        "`python scripts/run_notebooks.py 2.8.1`. The executed copies are in `build/notebooks/<mode>/`.\n\n"
        + HEADER + "\n".join(lines) + "\n\n"
        + total + f"\n\nsmoke-mode total: {round(sum(smoke) / 60)} min\n")


def stamp_line(seconds, docs_link: str = "../docs/") -> str:
    if seconds is None:
        text = ("完整模式的运行时间尚未实测（`make notebooks` 实测后会写在这里，"
                f"见 [docs/notebooks.md]({docs_link}notebooks.md)）。")
    else:
        minutes = max(1, round(seconds / 60))
        text = (f"完整模式实测约 {minutes} 分钟（本项目的 2 核 CPU 机器，"
                f"见 [docs/notebooks.md]({docs_link}notebooks.md)）。")
    return f"{STAMP_BEGIN}\n> ⏱ {text}\n{STAMP_END}"


def stamp(path: Path, seconds) -> bool:
    """Put the measured full-mode time into the notebook's first cell; True when the file changed.

    A homework's student version (notebooks/homework/) is generated from its source notebook
    (course/homework/source/), and a test checks that it is exactly what generation gives: so the
    source is stamped and the student versions are generated again. The link in the stamp is the
    student version's (notebooks/homework/ -> ../../docs/), which generation copies as it is."""
    if path.parent == NOTEBOOKS_DIR / "homework":
        from course import homework

        changed = stamp_file(homework.source_path(path.stem), seconds, docs_link="../../docs/")
        if changed:
            homework.generate()
        return changed
    return stamp_file(path, seconds)


def stamp_file(path: Path, seconds, docs_link: str = "../docs/") -> bool:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cell = nb.cells[0]
    line = stamp_line(seconds, docs_link)
    source = cell.source
    pattern = re.compile(re.escape(STAMP_BEGIN) + r".*?" + re.escape(STAMP_END), re.S)
    if pattern.search(source):
        new = pattern.sub(lambda _: line, source)
    else:
        head, _, rest = source.partition("\n")  # after the title line
        new = head + "\n\n" + line + ("\n" + rest if rest else "")
    if new == source:
        return False
    cell.source = new
    nbformat.write(nb, path)
    return True


def cpu_description() -> str:
    """The CPU as the benchmarks name it (course.cpu.cpu_identity: model, family/model/stepping, notable
    flags), so a record from one machine is never read as another's."""
    from course.cpu import cpu_identity

    return f"{cpu_identity()['label']}, {os.cpu_count()} cores"


def read_results(path: Path = None) -> dict:
    """``{notebook key: {"mode", "date", "cpu", "results": {key: {"value", "note"}}}}`` from docs/results.json."""
    from course import results

    return results.read_record(path or RESULTS_JSON)


def results_json(entries: dict) -> str:
    order = [key_of(p) for p in all_notebooks()]
    keys = [k for k in order if k in entries] + sorted(k for k in entries if k not in order)
    return json.dumps({"generated_by": "scripts/run_notebooks.py (make notebooks, full mode); do not edit by hand",
                       "notebooks": {k: entries[k] for k in keys}}, ensure_ascii=False, indent=1) + "\n"


def render_results(entries: dict) -> str:
    """docs/results.md: one row per recorded result, notebooks in the course's order."""
    from course.results import format_value

    lines = []
    for key, entry in json.loads(results_json(entries))["notebooks"].items():
        if not entry["results"]:
            lines.append(f"| `{key}` | (none recorded) | | | {entry['mode']} | {entry['date']} | {entry['cpu']} |")
        for name, item in entry["results"].items():
            value = format_value(item["value"]).replace("|", "\\|")
            lines.append(f"| `{key}` | `{name}` | {value} | {item['note'].replace('|', '/')} | {entry['mode']} "
                         f"| {entry['date']} | {entry['cpu']} |")
    return ("# Key results of each notebook\n\n"
            "Written by `make notebooks` (`scripts/run_notebooks.py`, full mode) from the notebooks' own\n"
            "`course.results.record(key, value, note)` calls; do not edit by hand. The same record, for programs:\n"
            "[results.json](results.json). A notebook's prose quotes these values between\n"
            "`<!-- result:key -->` comments, which the same run fills in; `tests/test_prose_numbers.py` checks\n"
            "that the two agree. Re-running one notebook (`python scripts/run_notebooks.py 2.8.2`) replaces only\n"
            "its rows; a notebook that failed keeps its previous rows. Times: [notebooks.md](notebooks.md).\n\n"
            "| notebook | key | value | what | mode | measured | CPU |\n|---|---|---|---|---|---|---|\n"
            + "\n".join(lines) + "\n")


def write_results(updates: dict, today: str, path_json: Path = None, path_md: Path = None):
    """Merge ``{notebook key: {result key: {"value", "note"}}}`` of a full-mode run into the record."""
    path_json, path_md = path_json or RESULTS_JSON, path_md or RESULTS_MD
    entries = read_results(path_json)
    cpu = cpu_description()
    for key, recorded in updates.items():
        entries[key] = {"mode": "full", "date": today, "cpu": cpu, "results": recorded}
    path_json.write_text(results_json(entries), encoding="utf-8")
    path_md.write_text(render_results(entries), encoding="utf-8")


def stamp_results(path: Path, entries: dict) -> bool:
    """Write the notebook's recorded values between its result comments; True when the file changed.
    A homework's student version is generated from its source notebook (see ``stamp``)."""
    from course import results

    values = results.recorded_values(entries.get(key_of(path), {}))
    if not values:
        return False
    if path.parent == NOTEBOOKS_DIR / "homework":
        from course import homework

        changed = stamp_results_file(homework.source_path(path.stem), values)
        if changed:
            homework.generate()
        return changed
    return stamp_results_file(path, values)


def stamp_results_file(path: Path, values: dict) -> bool:
    import nbformat

    from course import results

    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            new = results.stamp_results(cell.source, values)
            if new != cell.source:
                cell.source, changed = new, True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="run only notebooks whose name contains one of these")
    parser.add_argument("--smoke", action="store_true", help="smoke mode (COURSE_SMOKE=1) instead of full mode")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help=f"notebooks run at the same time (default {DEFAULT_JOBS})")
    parser.add_argument("--no-table", action="store_true",
                        help="do not rewrite docs/notebooks.md nor the results record (docs/results.*)")
    parser.add_argument("--no-stamp", action="store_true",
                        help="do not write the times and recorded results into the notebooks")
    parser.add_argument("--stamp-only", action="store_true",
                        help="run nothing; only write the times in docs/notebooks.md and the results in "
                             "docs/results.json into the notebooks")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    mode = "smoke" if args.smoke else "full"
    # smoke mode leaves tracked files alone: its table is build/'s (started from docs/notebooks.md's rows)
    table = TABLE if mode == "full" else SMOKE_TABLE
    if mode == "smoke" and not table.exists() and TABLE.exists():
        table.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TABLE, table)

    paths = all_notebooks()
    if args.names:
        paths = [p for p in paths if any(n in key_of(p) for n in args.names)]
        if not paths:
            parser.error(f"no notebook matches {args.names}; names are: "
                         + ", ".join(key_of(p) for p in all_notebooks()))
    failed = []
    if not args.stamp_only:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        print(f"running {len(paths)} notebook(s) in {mode} mode, {args.jobs} at a time", flush=True)
        updates, recorded = {}, {}
        today = _dt.date.today().isoformat()
        watcher = LoadWatcher()
        watcher.start()
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=min(args.jobs, len(paths))) as pool:
            futures = {pool.submit(run_one, str(p), mode, str(executed_path(p, mode))): p
                       for p in longest_first(paths, mode, read_table(table))}
            for future in as_completed(futures):
                key, seconds, result = future.result()
                print(f"{key:40s} {fmt_time(seconds):>12s}  {result}", flush=True)
                updates[key] = (seconds, result)
                out = executed_path(futures[future], mode)
                if result != "ok":
                    failed.append(key)
                    log = log_path(out)
                    text = log.read_text(encoding="utf-8", errors="replace").strip() if log.exists() else ""
                    if text:
                        print(f"--- the kernel's own output ({log.relative_to(ROOT) if ROOT in log.parents else log}):\n"
                              + "\n".join(text.splitlines()[-40:]) + "\n---", flush=True)
                else:
                    from course.results import read_recorded

                    recorded[key] = read_recorded(results_path(out))
        wall_seconds, load = time.perf_counter() - started, watcher.stop()
        print(f"wall clock {fmt_time(wall_seconds)}, highest 1-minute load average {load:.2f}", flush=True)
        if not args.no_table:
            wall = read_wall(table)
            if mode == "full" and len(paths) == len(all_notebooks()):
                wall = wall_line(wall_seconds, len(paths), args.jobs, load, today, cpu_description())
            rows = read_table(table)  # read now, not at the start: another run may have written rows meanwhile
            for key, (seconds, result) in updates.items():
                row = rows.setdefault(key, {"full": (None, "", ""), "smoke": (None, "", "")})
                row[mode] = (seconds, result, f"{today}, {args.jobs} at a time")
            table.parent.mkdir(parents=True, exist_ok=True)
            table.write_text(render_table(rows, wall), encoding="utf-8")
            print(f"wrote {table.relative_to(ROOT) if ROOT in table.parents else table}")
            if mode == "full" and recorded:
                write_results(recorded, today)
                print(f"wrote {RESULTS_JSON.relative_to(ROOT)}, {RESULTS_MD.relative_to(ROOT)} "
                      f"({sum(len(r) for r in recorded.values())} results of {len(recorded)} notebook(s))")
    if not args.no_stamp and mode == "full":
        rows = read_table()
        entries = read_results()
        for path in paths:
            seconds, result, _ = rows.get(key_of(path), {}).get("full", (None, "", ""))
            if stamp(path, seconds if result == "ok" else None):
                print(f"stamped {path.relative_to(ROOT)}")
            if stamp_results(path, entries):
                print(f"stamped the results into {path.relative_to(ROOT)}")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
