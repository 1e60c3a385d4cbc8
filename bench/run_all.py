"""Run every benchmark, one after another, and write the results page (docs/benchmarks.md).

Each script runs in its own process and writes its JSON record (see bench/_common.py); the page
is then built from those records alone: the summary figures, each benchmark's section, the
command that reproduces it, the machine, the Paddle version and the date.

    python bench/run_all.py                    # everything, full size (35-40 minutes on an idle 2-core CPU)
    python bench/run_all.py --quick            # a check of every script (a few minutes); the page
                                               # goes to test-output/bench-quick/, not docs/
    python bench/run_all.py --only data_path,memory
    python bench/run_all.py --only gpu         # on a GPU machine: bench/gpu.py, added to the page
    python bench/run_all.py --page-only        # rebuild the page from the last records
    make bench ARGS=--quick                    # the same through make

Run it on an otherwise idle machine: the figures are ratios measured side by side, but a busy
core still adds noise (each record keeps the load average at its start and end).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import QUICK_DIR, RESULTS_DIR, ROOT, load_average, machine_line, per_cpu_record

# In the order they run (the longest last, so a failure shows early).
BENCHMARKS = ("data_path", "loop_overhead", "throughput", "memory", "sweep_throughput", "time_to_accuracy")
# Run only when named in --only (bench/gpu.py needs a GPU machine; bench/cpu_candidates.py measures levers
# not taken); their last record is on the page.
OPTIONAL = ("gpu", "cpu_candidates")
# Their figures belong to one CPU: one record per CPU seen (<name>-<cpu slug>.json), one table per CPU.
# time_to_accuracy: wall seconds depend on the CPU, and a record per recipe measured (e.g. -2epochs) is kept.
PER_CPU = ("throughput", "cpu_candidates", "time_to_accuracy")
PAGE = ROOT / "docs" / "benchmarks.md"


def run_one(name: str, quick: bool, out: Path, log_dir: Path) -> tuple[int, float]:
    """Run ``bench/<name>.py``; its stdout is shown and kept in ``<log_dir>/<name>.log``, its stderr
    (progress bars, warnings) only kept in ``<name>.err``."""
    command = [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--out", str(out)] + (["--quick"] if quick else [])
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    env.pop("COURSE_SMOKE", None)  # --quick says it; a shell setting must not change a full run
    started = time.perf_counter()
    with open(log_dir / f"{name}.log", "w", encoding="utf-8") as log, \
            open(log_dir / f"{name}.err", "w", encoding="utf-8") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=ROOT)
        for line in process.stdout:
            print(line, end="", flush=True)
            log.write(line)
        code = process.wait()
    seconds = time.perf_counter() - started
    if code != 0:
        tail = (log_dir / f"{name}.err").read_text(encoding="utf-8").splitlines()[-15:]
        print(f"!! bench/{name}.py failed (exit {code}); last lines of its stderr:\n" + "\n".join(tail))
    return code, seconds


def cpu_of(record: dict) -> str:
    """The CPU a record was measured on: its label (model name, family / model / stepping, flags)."""
    m = record["machine"]
    return (m.get("cpu_id") or {}).get("label") or m["cpu"]


def per_cpu_records(results_dir: Path, name: str) -> list:
    """Every record of a per-CPU benchmark in ``results_dir``, newest first (``<name>.json`` too, as
    ``--out`` names it in the tests)."""
    paths = [results_dir / f"{name}.json"] + sorted(results_dir.glob(f"{name}-*.json"))
    found = [json.loads(p.read_text(encoding="utf-8")) for p in paths if p.exists()]
    return sorted(found, key=lambda r: r["machine"]["date"], reverse=True)


def per_cpu_section(name: str, records: list) -> list:
    """One overview row per CPU, then each CPU's own section: never one table across machines."""
    first = records[0]
    lines = ["", f"## {first['title']}", "",
             f"One record per CPU seen (`bench/results/{name}-<cpu>.json`; `{name}.json` and other "
             f"`{name}-*.json` records are earlier or special runs): the figures of different machines are "
             "separate tables, never one. Newest first.", "",
             "| CPU | measured | load average at start | figures |", "|---|---|---|---|"]
    for record in records:
        load = "/".join(f"{x:g}" for x in record["machine"].get("load_average") or [])
        slug = (record["machine"].get("cpu_id") or {}).get("slug", "")
        figures = "; ".join(f"{label.replace(f' on {slug}', '')}: {value}" for label, value in record["headline"])
        lines.append(f"| {cpu_of(record)} | {record['machine']['date']} | {load} | {figures} |")
    for record in records:
        load = "/".join(f"{x:g}" for x in record["machine"].get("load_average") or [])
        end = "/".join(f"{x:g}" for x in record.get("load_average_at_end") or [])
        flag = " (QUICK MODE: not a measurement)" if record["quick"] else ""
        lines += ["", f"### On {cpu_of(record)}{flag}", "", record["section"], "",
                  f"Reproduce on that CPU: `{record['command']}` (took {record['seconds']:.0f} s; run "
                  f"{record['machine']['date']}; load average {load} at the start, {end} at the end). "
                  f"Source: `bench/{name}.py`."]
    return lines


def build_page(records: dict, quick: bool, total_seconds: float | None, exit_codes: dict,
               cpu_records: dict | None = None) -> str:
    cpu_records = cpu_records or {}
    first = next(iter(records.values()))
    m = first["machine"]
    when = max(r["machine"]["date"] for r in records.values())
    lines = ["# Benchmarks", "",
             "<!-- Generated by bench/run_all.py: do not edit by hand; run `make bench` again. -->", "",
             f"*Generated by `python bench/run_all.py{' --quick' if quick else ''}` (`make bench"
             f"{' ARGS=--quick' if quick else ''}`); last run {when}. Do not edit: run it again.*", ""]
    if quick:
        lines += ["**QUICK MODE**: small slices that check the scripts; these figures are not measurements.", ""]
    lines += [f"**Machine** (the first benchmark's; every section names the CPU it ran on): {machine_line(m)}.", "",
              "Every ratio below is measured side by side in one run of its script (repetitions "
              "interleaved, medians), never from timings taken at different times. The load average "
              "is printed with each benchmark: above the number of cores, other work shared the CPU.", ""]
    if total_seconds is not None:
        lines += [f"The whole suite took {total_seconds / 60:.1f} minutes.", ""]
    lines += ["## Summary", "", "| figure | value |", "|---|---|"]
    for name, record in records.items():
        for one in cpu_records.get(name, [record]):
            lines += [f"| {label} | {value} |" for label, value in one["headline"]]
    for name, record in records.items():
        if name in cpu_records:
            lines += per_cpu_section(name, cpu_records[name])
            continue
        load = "/".join(f"{x:g}" for x in record["machine"].get("load_average") or [])
        end = "/".join(f"{x:g}" for x in record.get("load_average_at_end") or [])
        flag = " (QUICK MODE: not a measurement)" if record["quick"] and not quick else ""
        if exit_codes.get(name):
            flag += f" (its check failed: exit {exit_codes[name]})"
        lines += ["", f"## {record['title']}{flag}", "", record["section"], "",
                  f"Reproduce: `{record['command']}` (took {record['seconds']:.0f} s; run {record['machine']['date']} "
                  f"on {cpu_of(record)}; "
                  f"load average {load} at the start, {end} at the end). Source: `bench/{name}.py`."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(prog="bench/run_all.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small slices: check the scripts, in a few minutes")
    parser.add_argument("--only", default="",
                        help=f"comma-separated subset of: {', '.join(BENCHMARKS + OPTIONAL)}")
    parser.add_argument("--page-only", action="store_true", help="only rebuild the page from the last records")
    parser.add_argument("--results-dir", default=None,
                        help=f"where the JSON records (and logs/) go (default {RESULTS_DIR.relative_to(ROOT)}; "
                             f"with --quick {QUICK_DIR.relative_to(ROOT)})")
    parser.add_argument("--page", default=None,
                        help=f"the page to write (default {PAGE.relative_to(ROOT)}; with --quick "
                             f"{(QUICK_DIR / 'benchmarks.md').relative_to(ROOT)})")
    args = parser.parse_args()
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS + OPTIONAL))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS + OPTIONAL)}")
    results_dir = Path(args.results_dir) if args.results_dir else QUICK_DIR if args.quick else RESULTS_DIR
    page = Path(args.page) if args.page else (QUICK_DIR / "benchmarks.md" if args.quick else PAGE)
    log_dir = (results_dir / "logs" if args.results_dir or args.quick
               else ROOT / "test-output" / "bench-logs")
    results_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)

    failed, total, exit_codes = [], None, {}
    if not args.page_only:
        print(f"benchmarks: {', '.join(chosen)}{' (QUICK)' if args.quick else ''}; load average {load_average()}")
        started = time.perf_counter()
        for name in chosen:
            record = per_cpu_record(name, results_dir) if name in PER_CPU else results_dir / f"{name}.json"
            record.unlink(missing_ok=True)  # the page must never show an old record as this run's
            code, seconds = run_one(name, args.quick, record, log_dir)
            exit_codes[name] = code
            print(f"-- {name}: {'ok' if code == 0 else f'exit {code}'} in {seconds:.0f}s", flush=True)
            if code != 0 and not record.exists():
                failed.append(name)  # crashed before writing its record
        total = time.perf_counter() - started if chosen == list(BENCHMARKS) else None

    records, cpu_records = {}, {}
    for name in BENCHMARKS + OPTIONAL:  # every benchmark that has a record, in the suite's order
        if name in failed:
            continue
        if name in PER_CPU:
            found = per_cpu_records(results_dir, name)
            if found:
                records[name], cpu_records[name] = found[0], found
            continue
        path = results_dir / f"{name}.json"
        if path.exists():
            records[name] = json.loads(path.read_text(encoding="utf-8"))
    if not records:
        print("no benchmark records to put on the page")
        return 1
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(build_page(records, args.quick, total, exit_codes, cpu_records), encoding="utf-8")
    checks = [n for n, code in exit_codes.items() if code != 0 and n not in failed]
    print(f"\nwrote {page} ({len(records)} benchmarks)" + (f"; FAILED: {', '.join(failed)}" if failed else "")
          + (f"; a check failed (see its section): {', '.join(checks)}" if checks else ""))
    print(f"logs: {log_dir}")
    return 1 if failed or checks else 0


if __name__ == "__main__":
    sys.exit(main())
