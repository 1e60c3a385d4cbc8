"""course.results: ``record`` prints a notebook's key result, and under ``make notebooks`` (COURSE_RESULTS_FILE)
writes it down; ``stamp_results`` puts recorded values between a notebook's result comments."""
import numpy as np
import pytest

from course import results
from course.results import record


def test_record_prints_and_writes_nothing_without_the_variable(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(results.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert record("best_lr", 0.1, note="验证准确率最高") == 0.1
    assert capsys.readouterr().out == "[结果] best_lr = 0.1  验证准确率最高\n"
    assert list(tmp_path.iterdir()) == []


def test_record_appends_under_the_runner_and_a_later_value_replaces_an_earlier(monkeypatch, tmp_path):
    path = tmp_path / "nb.results.jsonl"
    monkeypatch.setenv(results.ENV, str(path))
    record("best_lr", np.float32(0.25))
    record("ranking", ["adam", "sgd"], note="按验证准确率")
    record("diverged", np.bool_(True))
    record("best_lr", 0.1)
    got = results.read_recorded(path)
    assert got == {"best_lr": {"value": 0.1, "note": ""}, "ranking": {"value": ["adam", "sgd"], "note": "按验证准确率"},
                   "diverged": {"value": True, "note": ""}}
    assert results.read_recorded(tmp_path / "missing.jsonl") == {}


@pytest.mark.parametrize("key, value, error", [("best lr", 1, ValueError), ("1x", 1, ValueError),
                                               ("a", np.zeros(3), TypeError), ("a", {"x": 1}, TypeError),
                                               ("a", float("nan"), ValueError)])
def test_record_refuses_what_cannot_be_quoted(key, value, error):
    with pytest.raises(error):
        record(key, value)


def test_a_zero_d_paddle_tensor_is_a_number():
    paddle = pytest.importorskip("paddle")
    assert record("acc", paddle.to_tensor(0.5)) == 0.5


def test_stamp_fills_the_recorded_values_and_leaves_unknown_keys():
    text = ("最好的学习率是 <!-- result:best_lr --><!-- /result -->，排名 <!-- result:ranking -->旧<!-- /result -->；"
            "<!-- result:unknown -->?<!-- /result -->")
    new = results.stamp_results(text, {"best_lr": 0.1, "ranking": ["adam", "sgd"]})
    assert results.stamped(new) == {"best_lr": "0.1", "ranking": "adam、sgd", "unknown": "?"}
    assert results.stamp_results(new, {"best_lr": 0.1, "ranking": ["adam", "sgd"]}) == new
    assert results.format_value(True) == "是" and results.format_value(3) == "3"
