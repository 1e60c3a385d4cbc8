"""Homework grading: answer parsing, checks against measurement, student versions, and made-up submissions
graded through the real ``python -m course grade`` command (smoke mode, real kernels)."""
import csv
import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from course import CourseError
from course import homework as hw
from course.homework import hw2_3, hw2_8
from course.homework.answers import parse_int, parse_number, parse_verdict

from _helpers import ROOT, course_command



# ------------------------------------------------------------------------------------------ answers

@pytest.mark.parametrize("text", ["over-fitting", "Overfit", "OVERFITTING", " over_fitting ", "过拟合", "过拟合了",
                                  "过拟合。", "over fitting", "overfitted"])
def test_verdict_accepts_the_forms_students_write(text):
    assert parse_verdict(text) == "over-fitting"


@pytest.mark.parametrize("text,verdict", [("欠拟合", "under-fitting"), ("Under-Fitting", "under-fitting"),
                                          ("拟合良好", "fitting well"), ("fitting well", "fitting well"),
                                          ("没有过拟合", None), ("不是过拟合", None), ("not overfitting", None),
                                          ("过拟合还是欠拟合", None), ("", None), (7, None), (None, None)])
def test_verdict_reads_other_verdicts_and_refuses_ambiguity(text, verdict):
    assert parse_verdict(text) == verdict


@pytest.mark.parametrize("value,expected", [(7, 7), (7.0, 7), ("7", 7), (" 7 ", 7), ("第 7 个 epoch", 7),
                                            ("epoch 7", 7), (7.5, None), (True, None), ("7 或 8", None),
                                            ("seven", None), (None, None)])
def test_integers(value, expected):
    assert parse_int(value) == expected


@pytest.mark.parametrize("value,expected", [(0.01, 0.01), ("0.01", 0.01), ("1e-2", 0.01), (" 1E-2 ", 0.01),
                                            (0, 0.0), (float("nan"), None), ("0.01 or 0.001", None), (False, None)])
def test_numbers(value, expected):
    assert parse_number(value) == expected


@pytest.mark.parametrize("name,expected", [("Momentum", "momentum"), (" ADAM ", "adam"), ("rms prop", "rmsprop"),
                                           ("Ada-Grad", "adagrad"), ("动量", "momentum"), ("AdamW", None), ("adam or sgd", None), (3, None)])
def test_optimizer_names(name, expected):
    assert hw2_3.parse_optimizer(name) == expected


# ------------------------------------------------------------------------------------------ 2-3 checks

def test_2_3_tolerance_comes_from_the_measured_seed_spread():
    """σ pools the within-setting variances of the homework's own top settings (several seeds each)."""
    rows = list(csv.DictReader(open(hw2_3.SWEEP_DIR / "seeds.csv", encoding="utf-8")))
    by_setting = {}
    for r in rows:
        by_setting.setdefault(r["setting"], []).append(float(r["acc"]))
    assert len(by_setting) >= 3 and all(len(v) >= 3 for v in by_setting.values())
    table_settings = {f"{r['optimizer']} {r['lr']:g}" for r in hw2_3.load_table()}
    assert set(by_setting) <= table_settings   # measured on settings the homework ranks, not on another run
    variances = []
    for accs in by_setting.values():
        mean = sum(accs) / len(accs)
        variances.append(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1))
    sigma = (sum(variances) / len(variances)) ** 0.5
    assert hw2_3.tolerance() == pytest.approx(2 * 2 ** 0.5 * sigma)


def test_2_3_settings_within_the_tolerance_tie_and_the_others_fail():
    table, tol = hw2_3.load_table(), hw2_3.tolerance()
    best = max(r["val_acc"] for r in table)
    for row in table:
        expected = row["val_acc"] >= best - tol
        assert hw2_3.check_lr(row["optimizer"], row["lr"], table, tol).ok is expected, row


def test_2_3_messages_never_name_the_best_setting():
    table = hw2_3.load_table()
    best = max(table, key=lambda r: r["val_acc"])
    checks = [hw2_3.check_optimizer("sgd", table),
              *(hw2_3.check_lr(o, lr, table) for o, lr in (("sgd", 0.0001), ("rmsprop", 0.01), ("adam", 0.01)))]
    for check in checks:
        assert check.ok is False and best["optimizer"] not in check.message and f"{best['val_acc']:.4f}" not in check.message


def test_2_3_reason_is_graded_by_rule_or_left_for_the_teacher():
    assert hw2_3.check_reason("momentum 在 0.01 的 loss 曲线降得最快").ok is True
    vague = hw2_3.check_reason("我觉得它最好")
    assert vague.ok is None and vague.review is True
    assert hw2_3.check_reason("").review is False and hw2_3.check_reason("").ok is None


# ------------------------------------------------------------------------------------------ 2-8 checks

def _given_smoke():
    rows = [r for r in csv.DictReader(open(hw2_8.SEEDS_CSV, encoding="utf-8"))
            if r["val_subset"] == "500" and r["seed"] == "1"]
    return {"epochs_run": len(rows), "val_losses": [float(r["val_loss"]) for r in rows],
            "val_accs": [float(r["val_acc"]) for r in rows], "train_accs": [float(r["train_acc"]) for r in rows],
            "train_losses": [float(r["train_loss"]) for r in rows],
            "final_val_loss": float(rows[-1]["val_loss"]), "final_val_acc": float(rows[-1]["val_acc"])}


def test_2_8_tolerances_are_derived_from_the_seed_runs():
    tols = hw2_8.tolerances(500)
    assert tols["seeds"] == [1, 2, 3]
    assert 0 < tols["EPOCH_TOL"] < 0.2 and 0 < tols["ACC_TOL"] < 0.05


@pytest.mark.parametrize("val_subset", [500, 0])
def test_2_8_fix_margin_is_twice_the_paired_noise_of_null_fixes(val_subset):
    rows = [r for r in csv.DictReader(open(hw2_8.NULLS_CSV, encoding="utf-8")) if int(r["val_subset"]) == val_subset]
    assert len(rows) >= 3 and all(float(r["weight_decay"]) <= 1e-6 for r in rows)   # changes that do nothing
    for r in rows:   # the relative change is what the file says it is
        assert float(r["relative_change"]) == pytest.approx(float(r["final_val_loss"]) / float(r["given_final_val_loss"]) - 1)
    rms = (sum(float(r["relative_change"]) ** 2 for r in rows) / len(rows)) ** 0.5
    assert hw2_8.tolerances(val_subset)["FIX_MARGIN"] == pytest.approx(2 * rms)


def test_2_8_missing_null_measurements_name_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(hw2_8, "NULLS_CSV", tmp_path / "nulls.csv")
    with pytest.raises(CourseError, match="measure_nulls.py --val_subset 500"):
        hw2_8.tolerances(500)


def test_2_8_a_fix_must_act():
    given, tols = _given_smoke(), hw2_8.tolerances(500)
    trained = []

    def never_stops(wd, patience):   # what a patience too large to trigger gives: all 20 epochs, best restored
        trained.append((wd, patience))
        return {**given, "final_val_loss": min(given["val_losses"])}

    for wd, patience in ((0, 0), (0.0, 0), (None, 0), (0, 20), (0, 100)):
        check = hw2_8.check_fix(wd, patience, given, never_stops, tols)
        assert check.ok is False, (wd, patience)
    assert trained == []   # decided without training
    assert hw2_8.check_fix(0, 15, given, never_stops, tols).ok is False   # trained, never triggered
    assert "一直没有触发" in hw2_8.check_fix(0, 15, given, never_stops, tols).message
    stopped = lambda wd, p: {**given, "epochs_run": 10, "final_val_loss": min(given["val_losses"])}
    assert hw2_8.check_fix(0, "3.0", given, stopped, tols).ok is True
    assert hw2_8.check_fix(-1, 0, given, stopped, tols).ok is None


def test_2_8_epoch_ties_are_within_the_measured_jitter():
    given, tols = _given_smoke(), hw2_8.tolerances(500)
    best = given["val_losses"].index(min(given["val_losses"])) + 1
    assert hw2_8.check_best_epoch(best, given, tols["EPOCH_TOL"]).ok is True
    assert hw2_8.check_best_epoch(float(best), given, tols["EPOCH_TOL"]).ok is True
    assert hw2_8.check_best_epoch(1, given, tols["EPOCH_TOL"]).ok is False
    assert hw2_8.check_best_epoch(0, given, tols["EPOCH_TOL"]).ok is None


# ------------------------------------------------------------------------------------------ student versions

@pytest.mark.parametrize("homework", sorted(hw.HOMEWORKS))
def test_committed_student_version_is_what_generation_produces(homework):
    committed = (hw.STUDENT_DIR / f"{homework}.ipynb").read_text(encoding="utf-8")
    assert committed == hw.render(hw.student_version(hw.read_source(homework))), \
        "run `python -m course homework generate` and commit notebooks/homework/"


@pytest.mark.parametrize("homework", sorted(hw.HOMEWORKS))
def test_student_version_has_no_solution_teacher_note_or_hidden_test(homework):
    source = hw.read_source(homework)
    text = (hw.STUDENT_DIR / f"{homework}.ipynb").read_text(encoding="utf-8")
    for line in hw.solution_lines(source):
        assert line not in text
    for marker in ("BEGIN SOLUTION", "HIDDEN TESTS", "教师备注", "参考答案"):
        assert marker not in text
    assert hw.questions(source) and set(hw.questions(source)) <= {
        c.metadata["nbgrader"]["grade_id"] for c in nbformat.reads(text, as_version=4).cells}


# ------------------------------------------------------------------------------------------ grading

def _answer(nb, source):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "answers":
            cell.source = source
    return nb


def _submission(tmp, name, homework, answers, extra=None):
    nb = _answer(nbformat.read(hw.STUDENT_DIR / f"{homework}.ipynb", as_version=4), answers)
    if extra:
        nb.cells.insert(2, nbformat.v4.new_code_cell(extra))
    path = tmp / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _copied(tmp, homework, name="copied", ran=False):
    """The answer key pasted into the student version; ``ran``: saved as if its cells had been run."""
    key = next(c.source for c in hw.read_source(homework).cells if c.metadata.get("nbgrader", {}).get("solution"))
    key = key.replace("### BEGIN SOLUTION\n", "").replace("### END SOLUTION", "")
    path = _submission(tmp, name, homework, key)
    if ran:
        nb = nbformat.read(path, as_version=4)
        for number, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
            cell.execution_count = number
        nbformat.write(nb, path)
    return path


def _grade(homework, paths, out, *extra):
    env = {**os.environ, "COURSE_SMOKE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(course_command("grade", homework, *paths, "--out", out, *extra), env=env, capture_output=True, text=True, timeout=1200, cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
def test_grade_2_3_class(tmp_path):
    """Made-up submissions, each a way students (or their code) go wrong; the batch always goes on."""
    sub = tmp_path / "submitted"
    sub.mkdir()
    plain = 'my_best_optimizer = "adam"\nmy_best_lr = 0.001\nmy_reason = ""'
    paths = [
        _submission(sub, "right", "2-3", 'my_best_optimizer = "momentum"\nmy_best_lr = 0.01\n'
                                         'my_reason = "momentum lr 0.01 的 loss 曲线下降最快"'),
        _submission(sub, "words", "2-3", 'my_best_optimizer = " RMS Prop "\nmy_best_lr = "1e-3"\n'
                                         'my_reason = "RMSProp 0.001 这条损失曲线最后最低"'),
        _submission(sub, "wrong", "2-3", 'my_best_optimizer = "sgd"\nmy_best_lr = 0.0001\nmy_reason = "感觉"'),
        _copied(sub, "2-3"),
        _copied(sub, "2-3", name="copied_ran", ran=True),
        _submission(sub, "raises", "2-3", plain + "\nraise RuntimeError('oops')"),
        _submission(sub, "loops", "2-3", plain, "while True:\n    pass"),
        _submission(sub, "allocates", "2-3", plain, "hoard = []\nwhile True:\n    hoard.append(bytearray(10**8))"),
        _submission(sub, "escapes", "2-3", plain, "open('../escape.txt', 'w').write('x')\n"
                                                  "import pathlib\n(pathlib.Path.home() / 'escape2.txt').write_text('x')"),
        _submission(sub, "prints", "2-3", plain, "for _ in range(10**6):\n    print('x' * 100)"),
        _submission(sub, "peeks", "2-3", plain + "\nimport os\nmy_reason = str(sorted(os.listdir('.')))"),
        sub / "broken.ipynb",
        sub / "other.ipynb",
    ]
    (sub / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    (sub / "other.ipynb").write_text((hw.STUDENT_DIR / "2-8.ipynb").read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "grades"
    rows = _grade("2-3", paths, out, "--time_limit", "40", "--memory_mb", "2048", "--output_kb", "256")

    assert list(rows) == [p.stem for p in paths]
    assert (rows["right"]["status"], rows["right"]["total"]) == ("ok", "5")
    assert (rows["words"]["status"], rows["words"]["total"]) == ("ok", "5")
    assert rows["wrong"]["total"] == "0" and rows["wrong"]["needs_review"] == "reason"
    assert rows["copied"]["status"] == "copied" and rows["copied"]["total"] == "0"
    assert rows["copied_ran"]["status"] == "copied" and rows["copied_ran"]["total"] == "0"   # running it is no work
    assert "运行过" in rows["copied_ran"]["message"] and "没有运行过" in rows["copied"]["message"]
    assert rows["raises"]["status"] == "raised" and "RuntimeError" in rows["raises"]["message"]
    assert rows["raises"]["optimizer"] == "2"   # answers given before the error still count
    assert rows["loops"]["status"] == "timeout" and rows["loops"]["total"] == "0"
    assert "时间限制 40 秒" in rows["loops"]["message"]   # the limit it hit, in seconds
    assert rows["allocates"]["status"] == "memory"
    assert rows["escapes"]["status"] == "wrote_outside" and "escape.txt" in rows["escapes"]["message"]
    assert rows["prints"]["status"] == "output_limit" and rows["prints"]["lr"] == "2"
    assert rows["peeks"]["status"] == "ok"   # its working directory held nothing of anyone's
    assert rows["broken"]["status"] == "invalid" and rows["other"]["status"] == "wrong_homework"
    assert not (tmp_path / "escape.txt").exists() and not list(tmp_path.rglob("escape*.txt"))
    for name in rows:
        assert (out / "feedback" / f"{name}.md").read_text(encoding="utf-8").startswith("# 作业 2-3 反馈")
    assert "✅" in (out / "feedback" / "right.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_grade_2_8_class_caches_the_training(tmp_path):
    sub = tmp_path / "submitted"
    sub.mkdir()
    given = _given_smoke()
    best = given["val_losses"].index(min(given["val_losses"])) + 1
    paths = [
        _submission(sub, "words", "2-8", f'my_verdict = "过拟合了"\nmy_best_epoch = {best}.0\nmy_weight_decay = "0"\n'
                                         f'my_patience = 3.0\nmy_reason = "验证损失在第 {best} 个 epoch 最低，之后回升"'),
        _copied(sub, "2-8"),
    ]   # wrong answers of 2-8 are covered by the check tests above: each kernel here trains the given run
    out = tmp_path / "grades"
    rows = _grade("2-8", paths, out, "--time_limit", "600")
    assert rows["words"]["status"] == "ok" and rows["words"]["total"] == "8", rows["words"]
    assert "问题 3 ✅" in (out / "feedback" / "words.md").read_text(encoding="utf-8")
    assert rows["copied"]["status"] == "copied"
    cached = sorted(p.name for p in (out / "cache").iterdir())
    assert len(cached) == 2   # the given run and the one fix (patience 3)


def test_retraining_is_cached_by_the_settings_chosen(tmp_path):
    from course.homework.grade import _Cache
    from course.homework.hw2_8 import parse_fix

    cache, calls = _Cache(tmp_path, b"k" * 32), []
    compute = lambda: calls.append(1) or {"final_val_loss": 0.5}
    for wd, patience in ((0, 3), (0.0, 3.0), ("0", "3")):   # the forms two students write the same fix in
        (wd, patience), _ = parse_fix(wd, patience)
        assert cache.get({"hw": "2-8", "wd": float(wd), "patience": int(patience)}, compute) == {"final_val_loss": 0.5}
    assert len(calls) == 1 and len(list(tmp_path.iterdir())) == 1


def test_a_cache_entry_written_without_the_secret_is_recomputed(tmp_path):
    from course.homework.grade import _Cache

    key = {"hw": "2-8", "wd": 0.0, "patience": 3}
    _Cache(tmp_path, b"k" * 32).get(key, lambda: {"final_val_loss": 0.5})
    entry = next(tmp_path.iterdir())
    forged = json.loads(entry.read_text())
    forged["value"] = {"final_val_loss": 0.0001}   # what a submission would write to pass every fix
    entry.write_text(json.dumps(forged))
    cache = _Cache(tmp_path, b"k" * 32)
    assert cache.get(key, lambda: {"final_val_loss": 0.5}) == {"final_val_loss": 0.5} and cache.rejected == 1


def test_teachers_page_lists_the_answer_forms_the_grader_reads():
    from course.homework.grade import forms_markdown
    page = (ROOT / "docs" / "teachers.md").read_text(encoding="utf-8")   # README links to it
    table = page.split("<!-- answer-forms -->\n", 1)[1].split("\n<!-- /answer-forms -->", 1)[0]
    assert table == forms_markdown(), "regenerate it: python -m course homework forms"


@pytest.mark.parametrize("kind,text,expected", [*__import__("course.homework.answers", fromlist=["FORMS"]).FORMS,
                                                *hw2_3.FORMS])
def test_each_answer_form(kind, text, expected):
    from course.homework.answers import form_value, read_form
    value = form_value(kind, text)
    read = hw2_3.parse_optimizer(value) if kind == "optimizer" else read_form(kind, value)
    assert read == (pytest.approx(expected, rel=1e-6) if isinstance(expected, float) else expected)


def _count_submission_reads(monkeypatch, folder):
    """Every open of a file under ``folder`` (builtins.open, io.open: Path.read_text / read_bytes go through it)."""
    import builtins
    import io
    from collections import Counter

    opened, real_open = Counter(), io.open

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file).resolve().parent == folder.resolve():
            opened[Path(file).name] += 1
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    return opened


def test_each_submission_is_read_once_per_batch(tmp_path, monkeypatch):
    """Digest, signed variant and grading all come from one read of the file (no kernel runs for these)."""
    import hashlib

    from course.homework import grade as grade_module
    from course.homework import sandbox as sandboxes

    def no_kernel(*args, **kwargs):
        raise AssertionError("none of these submissions should reach a kernel")

    monkeypatch.setattr(grade_module, "run_submission", no_kernel)
    sub = tmp_path / "submitted"
    sub.mkdir()
    paths = [_copied(sub, "2-3"), sub / "broken.ipynb", sub / "latin1.ipynb", sub / "other.ipynb", sub / "gone.ipynb"]
    (sub / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    (sub / "latin1.ipynb").write_bytes('{"cells": [], "x": "é"}'.encode("latin-1"))
    (sub / "other.ipynb").write_text((hw.STUDENT_DIR / "2-8.ipynb").read_text(encoding="utf-8"), encoding="utf-8")
    none = sandboxes.choose("none")
    for attempt in ("first", "resumed"):
        opened = _count_submission_reads(monkeypatch, sub)
        rows = {r["submission"]: r for r in grade_module.grade("2-3", paths, tmp_path / "out", smoke=True, sandbox=none)}
        monkeypatch.undo()   # the counting open and the kernel guard
        monkeypatch.setattr(grade_module, "run_submission", no_kernel)
        assert opened == {"copied.ipynb": 1, "broken.ipynb": 1, "latin1.ipynb": 1, "other.ipynb": 1,
                          "gone.ipynb": 1}, attempt
        assert [rows[n]["status"] for n in ("copied", "broken", "latin1", "other", "gone")] == [
            "copied", "invalid", "invalid", "wrong_homework", "missing"], attempt
    for name in ("copied", "broken", "latin1", "other"):
        assert rows[name]["sha256"] == hashlib.sha256((sub / f"{name}.ipynb").read_bytes()).hexdigest()
    assert rows["gone"]["sha256"] == "" and "UnicodeDecodeError" in rows["latin1"]["message"]


def test_an_oversized_submission_is_hashed_not_parsed(tmp_path, monkeypatch):
    import hashlib

    from course.homework import grade as grade_module
    from course.homework import sandbox as sandboxes

    monkeypatch.setattr(grade_module, "MAX_NOTEBOOK_MB", 0)   # every non-empty file is over the limit
    monkeypatch.setattr(grade_module, "_clean_notebook", lambda raw: pytest.fail("an oversized file was parsed"))
    path = tmp_path / "big.ipynb"
    path.write_text('{"cells": []}', encoding="utf-8")
    [row] = grade_module.grade("2-3", [path], tmp_path / "out", smoke=True, sandbox=sandboxes.choose("none"))
    assert row["status"] == "invalid" and "超过了 0 MB" in row["message"]
    assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_unexpected_reading_error_is_that_submissions_grading_error(tmp_path, monkeypatch):
    from course.homework import grade as grade_module
    from course.homework import sandbox as sandboxes

    def boom(raw):
        raise KeyError("a bug in the reader")

    monkeypatch.setattr(grade_module, "_clean_notebook", boom)
    paths = [tmp_path / "a.ipynb", tmp_path / "b.ipynb"]
    for path in paths:
        path.write_text('{"cells": []}', encoding="utf-8")
    rows = grade_module.grade("2-3", paths, tmp_path / "out", smoke=True, sandbox=sandboxes.choose("none"))
    assert [r["status"] for r in rows] == ["grading_error", "grading_error"]   # the batch went on
    assert "KeyError" in rows[0]["message"]
