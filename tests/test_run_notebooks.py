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
    wall = run_notebooks.wall_line(2430, 14, 2, "cold trained-model cache", 1.97, "2026-12-02")
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
