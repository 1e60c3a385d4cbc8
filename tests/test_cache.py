"""course.cache: a run is trained once and read back while its settings, data and versions are unchanged."""
import shutil

import pytest

from course import Config
from course.cache import CACHE_ENV, RETRAIN_ENV, cache_key, cached_train_run, data_fingerprint
from course.data import EMBEDDED_DIR

TINY = Config(train_subset=256, eval_subset=200, num_epochs=1, batch_size=64, log_every=2, progress=False,
              visualdl=False, device="cpu")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(RETRAIN_ENV, raising=False)
    return tmp_path / "cache"


def test_trained_once_then_reused(cache, tmp_path, monkeypatch, capsys):
    first = cached_train_run(TINY.replace(out_dir=str(tmp_path / "a")))
    assert first["cached"] is False and "trained and cached" in capsys.readouterr().out
    again = cached_train_run(TINY.replace(out_dir=str(tmp_path / "b"), progress=True))  # where / how loud: same key
    assert again["cached"] is True and "reused the model trained earlier" in capsys.readouterr().out
    assert again["test"] == first["test"] and again["epochs"] == first["epochs"]
    assert again["run_dir"] == first["run_dir"] and str(cache) in again["run_dir"]
    for name in ("mnist.pdparams", "checkpoint.pdckpt", "metrics.json"):
        assert (cache / cache_key(TINY) / name).is_file()

    assert cached_train_run(TINY, retrain=True)["cached"] is False
    monkeypatch.setenv(RETRAIN_ENV, "1")
    assert cached_train_run(TINY)["cached"] is False
    monkeypatch.setenv(RETRAIN_ENV, "maybe")
    with pytest.raises(ValueError, match=RETRAIN_ENV):
        cached_train_run(TINY)
    assert len(list(cache.iterdir())) == 1  # one entry, replaced in place; no staging folder left behind


def test_the_key_follows_what_decides_the_result():
    assert cache_key(TINY) == cache_key(TINY.replace(out_dir="elsewhere", run_name="x", progress=True))
    for change in ({"seed": 1}, {"lr": 0.001}, {"train_subset": 512}, {"weight_decay": 0.01}, {"num_epochs": 2}):
        assert cache_key(TINY.replace(**change)) != cache_key(TINY), change


def test_the_data_is_part_of_the_key(tmp_path):
    copy = tmp_path / "mnist"
    shutil.copytree(EMBEDDED_DIR, copy)
    before = data_fingerprint(copy)
    labels = next(copy.glob("t10k-labels*"))
    labels.write_bytes(labels.read_bytes() + b"\0")
    assert data_fingerprint(copy) != before
    assert cache_key(TINY.replace(data_dir=str(copy))) != cache_key(TINY)
