"""VisualDLLogger: what it writes (read back with VisualDL's own LogReader), and what it costs."""
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
from visualdl import LogReader

from course import (Callback, History, LRSchedule, MNIST, VisualDLLogger, fit, make_loader, make_optimizer,
                    make_scheduler, set_seed)

from _helpers import ROOT

CONFIG = {"optimizer": "adam", "lr": 0.005, "batch_size": 64, "visualdl": True, "data_dir": ""}


class Probe(Callback):
    """Records, on the host, what the logger should have logged: the lr and gradient norm of every step."""

    order = 100

    def __init__(self):
        self.lr, self.grad_norm = {}, {}

    def before_batch(self, state):
        self.lr[state.step + 1] = state.optimizer.get_lr()

    def after_backward(self, state):
        grads = [p.grad.numpy() for p in state.model.parameters() if p.grad is not None]
        self.grad_norm[state.step + 1] = float(np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads)))


def read_log(logdir):
    (path,) = Path(logdir).glob("vdlrecords.*")
    return LogReader(file_path=str(path))


def train(logdir, *callbacks, num_epochs=2, log_every=2, train_subset=512, val=True):
    set_seed(0)
    train_loader = make_loader("train50k", 64, train=True, subset=train_subset)   # 8 batches
    val_loader = make_loader("val", 200, subset=200) if val else None
    model = MNIST()
    lr = make_scheduler("onecycle", 0.005, len(train_loader), num_epochs)  # a different lr every step
    optimizer = make_optimizer("adam", lr, model.parameters())
    history = fit(model, train_loader, optimizer, num_epochs, val_loader=val_loader,
                  callbacks=[History(log_every), LRSchedule(lr), *callbacks])
    return model, history


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("vdl")
    probe = Probe()
    model, history = train(logdir, VisualDLLogger(logdir, config=CONFIG, grad_every=3), probe)
    return read_log(logdir), model, history, probe


def scalars(reader, tag):
    return [(r.id, r.value) for r in reader.get_data("scalar", tag)]


def test_existing_scalar_tags_are_kept(logged):
    reader, _, history, _ = logged
    assert scalars(reader, "train/loss") == [(s, pytest.approx(v, rel=1e-6))
                                            for s, v in zip(history.loss_steps, history.losses)]
    for name in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert scalars(reader, f"epoch/{name}") == [(e["epoch"], pytest.approx(e[name], rel=1e-6))
                                                    for e in history.epochs]


def test_learning_rate_of_each_logged_step(logged):
    reader, _, history, probe = logged
    logged_lr = scalars(reader, "train/lr")
    assert [s for s, _ in logged_lr] == history.loss_steps
    assert logged_lr == [(s, pytest.approx(probe.lr[s], rel=1e-6)) for s in history.loss_steps]
    assert len({round(v, 8) for _, v in logged_lr}) > 3  # onecycle: really the per-step value


def test_gradient_norm_every_n_steps(logged):
    reader, _, _, probe = logged
    norms = scalars(reader, "train/grad_norm")
    assert [s for s, _ in norms] == [3, 6, 9, 12, 15]  # 16 steps, grad_every=3
    assert norms == [(s, pytest.approx(probe.grad_norm[s], rel=1e-4)) for s, _ in norms]


def test_weight_histograms_per_epoch(logged):
    reader, model, _, _ = logged
    params = dict(model.named_parameters())
    assert sorted(reader.get_tags()["histogram"]) == sorted(f"weights/{name}" for name in params)
    for name, param in params.items():
        records = reader.get_data("histogram", f"weights/{name}")
        assert [r.id for r in records] == [1, 2]
        assert sum(records[-1].histogram.hist) == int(np.prod(param.shape))
        edges = records[-1].histogram.bin_edges  # the last epoch's histogram spans the final weights
        assert edges[0] == pytest.approx(float(param.min()), abs=1e-6)
        assert edges[-1] == pytest.approx(float(param.max()), abs=1e-6)


def test_prediction_grid_per_epoch(logged):
    from PIL import Image

    reader, _, _, _ = logged
    records = reader.get_data("image", "samples/predictions")
    assert [r.id for r in records] == [1, 2]
    image = Image.open(io.BytesIO(records[-1].image.encoded_image_string))
    assert image.size == (4 * 96, 2 * 120 + 32)  # 8 digits in 2 rows of 4 at 80 dpi, with a title line


def test_config_as_hyper_parameters(logged):
    reader, _, _, _ = logged
    (record,) = reader.get_data("hyper_parameters", "hparam")
    values = {i.name: getattr(i, i.WhichOneof("type")) for i in record.hparam.hparamInfos}
    assert values == {"optimizer": "adam", "lr": 0.005, "batch_size": 64, "visualdl": "True", "data_dir": ""}
    assert [m.name for m in record.hparam.metricInfos] == ["epoch/train_loss", "epoch/train_acc",
                                                          "epoch/val_loss", "epoch/val_acc"]


def test_defaults_follow_history_and_switches_turn_parts_off(tmp_path):
    # grad_every=None: the gradient norm is logged at the loss's steps; no val loader: no val metrics.
    train(tmp_path, VisualDLLogger(tmp_path, num_images=0, histograms=False), num_epochs=1, log_every=3,
          val=False)
    reader = read_log(tmp_path)
    assert [s for s, _ in scalars(reader, "train/grad_norm")] == [3, 6] == [s for s, _ in
                                                                          scalars(reader, "train/loss")]
    tags = reader.get_tags()
    assert "histogram" not in tags and "image" not in tags and "hyper_parameters" not in tags
    assert not any(t.startswith("epoch/val") for t in tags["scalar"])


def test_reads_the_device_only_at_logged_steps(tmp_path, monkeypatch):
    """Counts every device-to-host read (float(t), t.numpy() ...) between consecutive steps."""
    reads, depth = [], [0]
    for name in ("__float__", "__int__", "__bool__", "numpy", "item", "tolist"):
        original = getattr(paddle.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            if not depth[0]:  # float(t) calls t.item() inside: one read, not two
                reads.append(1)
            depth[0] += 1
            try:
                return _original(self, *args, **kwargs)
            finally:
                depth[0] -= 1
        monkeypatch.setattr(paddle.Tensor, name, counted)

    class Count(Callback):
        order = 100
        reads_at = {}

        def after_batch(self, state):
            self.reads_at[state.step] = len(reads)

    count = Count()
    train(tmp_path, VisualDLLogger(tmp_path, grad_every=4), count, num_epochs=2, log_every=5)
    per_step = {s: n - count.reads_at.get(s - 1, 0) for s, n in count.reads_at.items()}
    first_of_epoch = {1, 9}  # the epoch's end (metrics, histograms, predictions) falls before these
    quiet = [s for s in per_step if s % 5 and s % 4 and s not in first_of_epoch]
    assert quiet and all(per_step[s] == 0 for s in quiet), per_step
    assert all(per_step[s] == 1 for s in (4, 8, 12, 16) if s % 5), per_step  # one read per grad norm


def test_visualdl_is_not_imported_when_logging_is_off(tmp_path):
    code = ("import sys\nfrom course import Config, train_run\n"
            f"train_run(Config(visualdl=False, progress=False, train_subset=256, eval_subset=100, num_epochs=1, "
            f"out_dir={str(tmp_path)!r}))\n"
            "assert 'visualdl' not in sys.modules, 'visualdl was imported'\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
    assert not list(tmp_path.rglob("*vdlrecords*"))


def test_without_visualdl_the_logger_says_so_in_one_line_and_training_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "visualdl", None)  # what `import visualdl` meets where it is not installed
    _, history = train(tmp_path / "vdl", VisualDLLogger(tmp_path / "vdl", config=CONFIG), num_epochs=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if "VisualDL" in line]
    assert lines == ["VisualDL logging skipped: the visualdl package is not installed (pip install visualdl)."]
    assert len(history.epochs) == 1 and not (tmp_path / "vdl").exists()
