"""Every ``bench/*.py`` runs in its quick mode, so a benchmark that crashes fails the suite.

Figures are not checked (quick mode measures nothing representative): only that each script
finishes, writes its JSON record where ``--out`` says (a temporary folder, never ``bench/results/``
or ``docs/``), and that ``bench/run_all.py`` builds its page from those records.
A quick run trains on a small slice for up to a minute: marked slow. Marked ``once`` too: a script
crashes (or not) the same way on every Python and both Paddle lines' CI legs, the benchmarks are
measured and recorded on the newest Paddle only (docs/benchmarks.md), and the quick runs took
about 5 minutes a leg under load; CI's leg 1 runs them, the other legs deselect them (setup.cfg).
"""
import json
import subprocess
import sys

import pytest

from _helpers import ROOT, course_env

BENCH = ROOT / "bench"
# bench/_common.py is the shared module; run_all.py runs the others (tested below on their records)
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all")
NO_RECORD = {"profile_step"}  # prints Paddle's profiler tables, writes no JSON record


def bench(name, *args, timeout=600):
    return subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=course_env(), timeout=timeout)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-records")


def test_every_script_is_checked():
    assert {"data_path", "gpu", "memory", "profile_step", "throughput"} <= set(SCRIPTS)


@pytest.mark.slow
@pytest.mark.once
@pytest.mark.parametrize("name", SCRIPTS)
def test_quick_mode_runs_and_writes_its_record(name, records):
    out = records / f"{name}.json"
    done = bench(name, "--quick", *([] if name in NO_RECORD else ["--out", out]))
    assert done.returncode == 0, f"bench/{name}.py --quick failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    if name in NO_RECORD:
        return
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["name"] == name and record["quick"] is True
    assert record["headline"] and record["section"]


@pytest.mark.slow
@pytest.mark.once
def test_run_all_builds_the_page_from_the_records(records):
    written = sorted(p.stem for p in records.glob("*.json"))
    if not written:
        pytest.skip("no records: run with the quick-mode tests above")
    page = records / "benchmarks.md"
    done = bench("run_all", "--quick", "--page-only", "--results-dir", records, "--page", page, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    text = page.read_text(encoding="utf-8")
    assert "QUICK" in text.upper() and all(json.loads((records / f"{n}.json").read_text())["title"] in text
                                           for n in written)


def test_cpu_identity_names_the_cpu():
    """Family / model / stepping and flags make a generic model name ("AMD EPYC") tell machines apart."""
    from course.cpu import cpu_identity

    cpu = cpu_identity()
    assert cpu["model_name"] and cpu["slug"] and cpu["model_name"] in cpu["label"]
    assert all(c.isalnum() or c == "-" for c in cpu["slug"])
    if cpu["family"]:  # x86 Linux: /proc/cpuinfo has them
        assert f"family {cpu['family']} model {cpu['model']}" in cpu["label"]
        assert f"-f{cpu['family']}-m{cpu['model']}" in cpu["slug"]
    assert ("avx512f" in cpu["flags"]) == cpu["slug"].endswith("-avx512")


def test_run_all_keeps_one_throughput_table_per_cpu(tmp_path):
    """Two throughput records of two CPUs: both on the page, each under its own CPU, none merged."""
    committed = sorted((BENCH / "results").glob("throughput-*.json"))
    assert committed, "bench/results/throughput-<cpu>.json: one record per CPU"
    record = json.loads(committed[0].read_text(encoding="utf-8"))
    for slug, label, date in (("intel-xeon-f6-m143-s8-avx512", "Intel Xeon (family 6 model 143 stepping 8)",
                               "2026-12-05 10:00:00 UTC"),
                              ("amd-epyc-f25-m17-s1-avx512", "AMD EPYC (family 25 model 17 stepping 1)",
                               "2026-12-06 10:00:00 UTC")):
        one = json.loads(json.dumps(record))
        one["machine"].update(cpu=label, date=date, cpu_id={"label": label, "slug": slug})
        one["headline"] = [[f"training throughput, batch 64 on {slug}: all CPU levers vs Paddle's default",
                            f"figure of {slug}"]]
        (tmp_path / f"throughput-{slug}.json").write_text(json.dumps(one), encoding="utf-8")
    page = tmp_path / "benchmarks.md"
    done = bench("run_all", "--page-only", "--results-dir", tmp_path, "--page", page, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    text = page.read_text(encoding="utf-8")
    amd, intel = text.index("### On AMD EPYC (family 25"), text.index("### On Intel Xeon (family 6")
    assert amd < intel  # newest first
    assert "figure of intel-xeon-f6-m143-s8-avx512" in text and "figure of amd-epyc-f25-m17-s1-avx512" in text
    assert text.count("| CPU | measured |") == 1
