"""Checkpoints: atomic writes, checked loads, and resume that matches an uninterrupted run."""
import numpy as np
import paddle
import pytest

from course import (Checkpoint, CheckpointError, History, LRSchedule, MNIST, fit, load_checkpoint,
                    load_into, make_loader, make_optimizer, make_scheduler, save_checkpoint, set_seed)
from course.checkpoint import atomic_save


def test_save_and_load_model_and_optimizer_state(tmp_path):
    set_seed(0)
    model = MNIST()
    optimizer = make_optimizer("adam", 0.001, model.parameters())
    fit(model, make_loader("train", 64, subset=128), optimizer, 1)
    path = save_checkpoint(tmp_path / "c.pdckpt", model, optimizer, epoch=1, note="hi")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pdckpt"]  # no temporary file left behind
    other = MNIST()
    other_opt = make_optimizer("adam", 0.001, other.parameters())
    meta = load_into(other, load_checkpoint(path), other_opt)
    assert meta == {"epoch": 1, "note": "hi"}
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    # Optimizer state is keyed by structured names, so a second model in one process can load it.
    saved = load_checkpoint(path)["optimizer"]
    assert "conv1.weight_moment1_0" in saved
    fit(other, make_loader("train", 64, subset=64), other_opt, 1)  # creates accumulators from the loaded state
    fit(model, make_loader("train", 64, subset=64), optimizer, 1)
    np.testing.assert_array_equal(model.fc.weight.numpy(), other.fc.weight.numpy())


def test_a_crash_during_the_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pdckpt"
    atomic_save({"version": 1}, path)

    def crashing_save(obj, target, *args, **kwargs):
        with open(target, "wb") as f:
            f.write(b"half a checkpoi")
        raise OSError("disk full")

    monkeypatch.setattr(paddle, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"version": 2}, path)
    monkeypatch.undo()
    assert paddle.load(str(path)) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pdckpt"]


def test_bare_state_dict_and_mismatch_errors(tmp_path):
    model = MNIST()
    bare = tmp_path / "mnist.pdparams"
    paddle.save(model.state_dict(), str(bare))
    load_into(MNIST(), load_checkpoint(bare))  # the lesson's format is accepted
    wrong = dict(model.state_dict())
    wrong["fc.weight"] = paddle.zeros([100, 10])
    del wrong["conv2.bias"]
    paddle.save(wrong, str(tmp_path / "wrong.pdparams"))
    with pytest.raises(CheckpointError) as err:
        load_into(MNIST(), load_checkpoint(tmp_path / "wrong.pdparams"))
    assert "missing conv2.bias" in str(err.value) and "fc.weight: checkpoint [100, 10] vs model [980, 10]" in str(err.value)
    (tmp_path / "garbage.pdckpt").write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "garbage.pdckpt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nothing.pdckpt")


def _run(epochs, ckpt_path, resume=False, total_epochs=3):
    """Adam + one-cycle (so optimizer and scheduler state both matter) on a small slice."""
    set_seed(5)
    model = MNIST()
    loader = make_loader("train", 64, seed=5, subset=512)
    scheduler = make_scheduler("onecycle", 0.003, len(loader), total_epochs)
    optimizer = make_optimizer("adam", scheduler, model.parameters())
    history = History(2)
    start_epoch = start_step = 0
    if resume:
        meta = load_into(model, load_checkpoint(ckpt_path), optimizer)
        history.set_state_dict(meta["history"])
        start_epoch, start_step = meta["epoch"], meta["step"]
    fit(model, loader, optimizer, epochs, callbacks=[history, LRSchedule(scheduler), Checkpoint(ckpt_path)],
        start_epoch=start_epoch, start_step=start_step)
    return model, history


def test_resume_reaches_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    straight, straight_history = _run(3, tmp_path / "straight.pdckpt")
    _run(1, tmp_path / "resumed.pdckpt")                       # "killed" after epoch 1
    resumed, resumed_history = _run(3, tmp_path / "resumed.pdckpt", resume=True)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    assert resumed_history.losses == straight_history.losses
    assert [r["epoch"] for r in resumed_history.epochs] == [1, 2, 3]


def test_temporaries_of_dead_writers_are_cleaned_up(tmp_path):
    stale = tmp_path / ".c.pdckpt.tmp-999999999"  # no such process
    stale.write_bytes(b"half")
    atomic_save({"v": 1}, tmp_path / "c.pdckpt")
    assert not stale.exists() and (tmp_path / "c.pdckpt").exists()


def test_save_safetensors_is_atomic_and_cleans_up_after_a_failed_write(tmp_path, monkeypatch):
    import safetensors.numpy

    from course import save_safetensors

    path = save_safetensors(MNIST(), tmp_path / "w.safetensors")
    before = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        open(filename, "wb").write(b"half a file")   # the writer dies mid-file
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    with pytest.raises(OSError):
        save_safetensors(MNIST(), path)
    assert path.read_bytes() == before                       # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]   # no temporary left behind


def test_safetensors_missing_is_one_line_naming_the_install(tmp_path, monkeypatch):
    import sys

    from course import MNIST, save_safetensors
    from course.errors import CheckpointError

    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(CheckpointError, match=r"needs the safetensors package.*pip install safetensors"):
        save_safetensors(MNIST(), tmp_path / "w.safetensors")
    assert not list(tmp_path.iterdir())


def test_written_files_get_the_permissions_of_a_plain_open(tmp_path):
    import os
    import stat

    from course.checkpoint import atomic_write

    def restrictive(tmp):   # what a library that creates its file 0600 does
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x")
        os.close(fd)

    path = atomic_write(tmp_path / "model.safetensors", restrictive)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
