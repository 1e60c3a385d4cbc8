"""scripts/run_notebooks.py (``make notebooks``): a notebook runs in a real kernel and its time and result land
in the table; re-running one notebook keeps the other rows; the measured time is written into the notebook's
first cell from that table."""
import sys

import nbformat
import pytest

from _helpers import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import run_notebooks  # noqa: E402

sys.path.pop(0)


def notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 标题\n\n正文。")] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_runs_in_a_kernel_in_the_chosen_mode_and_reports_a_failure(tmp_path):
    good = notebook(tmp_path / "good.ipynb", "import os\nprint('smoke' if os.environ.get('COURSE_SMOKE') else 'full')")
    bad = notebook(tmp_path / "bad.ipynb", "raise ValueError('the lesson is wrong')", "print('never')")
    for mode in ("smoke", "full"):
        _, seconds, result = run_notebooks.run_one(str(good), mode, str(tmp_path / mode / "good.ipynb"))
        assert result == "ok" and seconds > 0
        executed = nbformat.read(tmp_path / mode / "good.ipynb", as_version=4)
        assert executed.cells[1].outputs[0]["text"].strip() == mode
    _, _, result = run_notebooks.run_one(str(bad), "smoke", str(tmp_path / "bad-out.ipynb"))
    assert result.startswith("failed:") and "the lesson is wrong" in result and "\x1b" not in result
    assert nbformat.read(tmp_path / "bad-out.ipynb", as_version=4).cells[1].outputs  # the copy keeps the error


def test_table_merges_rows_and_totals_the_full_mode(tmp_path):
    rows = {"00_quickstart": {"full": (125, "ok", "d, 2 at a time"), "smoke": (15, "ok", "d, 1 at a time")},
            "2.8.1_accuracy": {"full": (None, "", ""), "smoke": (21, "ok", "d, 1 at a time")}}
    table = tmp_path / "notebooks.md"
    table.write_text(run_notebooks.render_table(rows), encoding="utf-8")
    back = run_notebooks.read_table(table)
    assert back["00_quickstart"]["full"] == (125, "ok", "d, 2 at a time") and back["2.8.1_accuracy"]["full"][0] is None
    assert back["2.8.1_accuracy"]["smoke"] == (21, "ok", "d, 1 at a time")
    text = table.read_text(encoding="utf-8")
    assert "| `00_quickstart` | 2 min 05 s | ok | d, 2 at a time | 15 s | ok | d, 1 at a time |" in text
    assert "\nsum of the per-notebook full-mode times: 2 min (1 of" in text and "not yet: " in text
    assert "2.8.1_accuracy" in text.split("sum of the per-notebook")[1]
    assert "total: not measured yet" in text and run_notebooks.read_wall(table) == ""


def test_total_is_the_wall_clock_of_a_run_of_every_notebook_and_survives_a_partial_rerun(tmp_path):
    rows = {"00_quickstart": {"full": (125, "ok", "d, 2 at a time"), "smoke": (None, "", "")}}
    wall = run_notebooks.wall_line(2430, 14, 2, 1.97, "2026-12-02")
    assert wall.startswith("total: 40 min wall clock (40 min 30 s)") and "load average during the run 1.97" in wall
    table = tmp_path / "notebooks.md"
    table.write_text(run_notebooks.render_table(rows, wall), encoding="utf-8")
    assert run_notebooks.read_wall(table) == wall
    table.write_text(run_notebooks.render_table(rows, run_notebooks.read_wall(table)), encoding="utf-8")
    text = table.read_text(encoding="utf-8")
    assert text.count(wall) == 1 and "sum of the per-notebook full-mode times: 2 min" in text
    old = tmp_path / "old.md"
    old.write_text("total: 93 min (full mode, 7 of 14 notebooks measured)\n", encoding="utf-8")
    assert run_notebooks.read_wall(old) == ""   # a sum of notebook times is never taken for a wall clock
    assert run_notebooks.LoadWatcher.sample() >= 0


@pytest.mark.parametrize("seconds, expected", [(None, "尚未实测"), (430, "完整模式实测约 7 分钟")])
def test_stamp_writes_the_measured_time_once(tmp_path, monkeypatch, seconds, expected):
    monkeypatch.setattr(run_notebooks, "NOTEBOOKS_DIR", tmp_path)
    path = notebook(tmp_path / "x.ipynb")
    assert run_notebooks.stamp(path, seconds)
    assert not run_notebooks.stamp(path, seconds)  # unchanged the second time
    assert run_notebooks.stamp(path, 61)           # replaced, not added
    source = nbformat.read(path, as_version=4).cells[0].source
    assert source.startswith("# 标题\n") and source.count(run_notebooks.STAMP_BEGIN) == 1
    assert "完整模式实测约 1 分钟" in source and "](../docs/notebooks.md)" in source


def test_notebooks_start_longest_first_and_never_measured_ones_before_all(tmp_path):
    """Two at a time, the run ends sooner when the long notebooks do not start last."""
    paths = [tmp_path / f"{name}.ipynb" for name in ("a_short", "b_long", "c_new", "d_middle")]
    rows = {"a_short": {"full": (60, "ok", "d"), "smoke": (5, "ok", "d")},
            "b_long": {"full": (600, "ok", "d"), "smoke": (50, "ok", "d")},
            "d_middle": {"full": (300, "ok", "d"), "smoke": (90, "ok", "d")}}
    assert [p.stem for p in run_notebooks.longest_first(paths, "full", rows)] == ["c_new", "b_long", "d_middle", "a_short"]
    assert [p.stem for p in run_notebooks.longest_first(paths, "smoke", rows)] == ["c_new", "d_middle", "b_long", "a_short"]


def test_the_kernel_talks_over_ipc_its_own_output_goes_to_a_log_and_results_to_a_file(tmp_path):
    """``make notebooks`` prints only what matters: no TCP warning, no C++ report of a healthy kernel; a
    ``course.results.record`` call in the kernel lands in the results file the runner reads."""
    path = notebook(tmp_path / "rec.ipynb",
                    "import os\nos.write(2, b'kernel-noise-on-fd-2\\n')",
                    "from course.results import record\nrecord('best_lr', 0.1, note='最好')\nrecord('n', 3)")
    out = tmp_path / "full" / "rec.ipynb"
    _, _, result = run_notebooks.run_one(str(path), "full", str(out))
    assert result == "ok"
    log = run_notebooks.log_path(out).read_text(encoding="utf-8")
    assert "kernel-noise-on-fd-2" in log and "without encryption" not in log
    executed = nbformat.read(out, as_version=4)
    assert not any("kernel-noise" in str(o) for c in executed.cells for o in c.get("outputs", []))
    assert "[结果] best_lr = 0.1  最好" in executed.cells[2].outputs[0]["text"]
    from course.results import read_recorded
    assert read_recorded(run_notebooks.results_path(out)) == {"best_lr": {"value": 0.1, "note": "最好"},
                                                              "n": {"value": 3, "note": ""}}
    _, _, result = run_notebooks.run_one(str(notebook(tmp_path / "rec.ipynb", "pass")), "full", str(out))
    assert result == "ok" and not run_notebooks.results_path(out).exists()  # a re-run starts a fresh file


@pytest.fixture
def project(tmp_path, monkeypatch):
    """run_notebooks pointed at a project in tmp_path: notebooks/, docs/, build/."""
    for name, value in {"ROOT": tmp_path, "NOTEBOOKS_DIR": tmp_path / "notebooks",
                        "BUILD_DIR": tmp_path / "build" / "notebooks", "TABLE": tmp_path / "docs" / "notebooks.md",
                        "SMOKE_TABLE": tmp_path / "build" / "notebooks" / "smoke" / "notebooks.md",
                        "RESULTS_JSON": tmp_path / "docs" / "results.json",
                        "RESULTS_MD": tmp_path / "docs" / "results.md"}.items():
        monkeypatch.setattr(run_notebooks, name, value)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel's course is this checkout's
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "docs").mkdir()
    path = notebook(tmp_path / "notebooks" / "x.ipynb",
                    "import os\nfrom course.results import record\n"
                    "record('best_lr', 0.1 if not os.environ.get('COURSE_SMOKE') else 0.5, note='最好的学习率')\n"
                    "record('order', ['adam', 'sgd'])")
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell(
        "最好的学习率是 <!-- result:best_lr -->（完整模式运行后写在这里）<!-- /result -->。"))
    nbformat.write(nb, path)
    return tmp_path


def test_a_smoke_run_leaves_tracked_files_alone(project):
    tracked = {p: p.read_bytes() for p in [project / "notebooks" / "x.ipynb"]}
    assert run_notebooks.main(["--smoke", "--jobs", "1"]) == 0
    assert {p: p.read_bytes() for p in tracked} == tracked
    assert sorted(p.name for p in (project / "docs").iterdir()) == []   # no table, no results record
    assert "| `x` | not measured | not run |  | " in (project / "build/notebooks/smoke/notebooks.md").read_text()


def test_a_full_run_writes_the_results_record_and_stamps_the_values_into_the_prose(project):
    assert run_notebooks.main(["--jobs", "1"]) == 0
    record = run_notebooks.read_results()
    assert record["x"]["mode"] == "full" and record["x"]["cpu"]
    assert record["x"]["results"] == {"best_lr": {"value": 0.1, "note": "最好的学习率"},
                                      "order": {"value": ["adam", "sgd"], "note": ""}}
    page = (project / "docs" / "results.md").read_text(encoding="utf-8")
    assert "| `x` | `best_lr` | 0.1 | 最好的学习率 | full |" in page and "| `x` | `order` | adam、sgd |" in page
    prose = nbformat.read(project / "notebooks" / "x.ipynb", as_version=4).cells[-1].source
    assert prose == "最好的学习率是 <!-- result:best_lr -->0.1<!-- /result -->。"
    assert "完整模式实测约" in nbformat.read(project / "notebooks" / "x.ipynb", as_version=4).cells[0].source
    # a notebook that fails keeps its previous results
    run_notebooks.write_results({"y": {"k": {"value": 1, "note": ""}}}, "2026-01-01")
    assert set(run_notebooks.read_results()) == {"x", "y"}  # merged, not replaced
    # --stamp-only writes the record's values again without running anything
    run_notebooks.write_results({"x": {"best_lr": {"value": 0.25, "note": ""}}}, "2026-01-02")
    assert run_notebooks.main(["--stamp-only"]) == 0
    prose = nbformat.read(project / "notebooks" / "x.ipynb", as_version=4).cells[-1].source
    assert prose == "最好的学习率是 <!-- result:best_lr -->0.25<!-- /result -->。"


def test_a_failing_notebook_prints_its_kernels_log(project, capsys):
    notebook(project / "notebooks" / "x.ipynb", "import os\nos.write(2, b'paddle-cpp-report\\n')\nraise SystemError('boom')")
    assert run_notebooks.main(["--jobs", "1", "--no-table", "--no-stamp"]) == 1
    out = capsys.readouterr().out
    assert "paddle-cpp-report" in out and "kernel's own output" in out
