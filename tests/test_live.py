"""``course.LivePlot``: curves drawn in place in Jupyter, nothing outside it.

Real Paddle on a tiny slice of MNIST; the Jupyter tests run a real kernel with nbclient and read the
executed notebook, as a student's saved notebook (and the site built from it) would show it.
"""
import base64
import hashlib
import time

import nbformat
import pytest
from nbclient import NotebookClient

from course import LivePlot, MNIST, fit, make_loader, make_optimizer, set_seed
from course.live import in_jupyter

from _helpers import ROOT


@pytest.fixture(scope="module")
def loader():
    return make_loader("train50k", 64, seed=0, subset=320)   # 5 batches


def train(loader, *callbacks, epochs=2):
    set_seed(0)
    model = MNIST()
    return fit(model, loader, make_optimizer("sgd", 0.01, model.parameters()), epochs, val_loader=loader,
               callbacks=list(callbacks))


def test_headless_it_draws_nothing_and_records_nothing(loader):
    assert not in_jupyter()   # pytest is not a kernel
    live = LivePlot(every=1)
    assert not live.enabled
    train(loader, live)
    assert live.frames == 0 and live.curves == {}


def test_headless_it_costs_about_nothing(loader):
    """Disabled, each event is one attribute test: timed on the callback itself, not on a noisy fit
    (a training step of this CNN is tens of milliseconds; the budget here is 20 microseconds)."""
    from course.events import TrainState

    live = LivePlot(every=1)
    state = TrainState(model=None, optimizer=None, loss_fn=None, train_loader=loader)
    live.before_fit(state)
    calls = 20000
    started = time.perf_counter()
    for _ in range(calls):
        live.after_batch(state)
    per_call = (time.perf_counter() - started) / calls
    assert per_call < 20e-6, f"{per_call * 1e6:.1f} us per step"


def test_enabled_it_records_window_means_and_epoch_rows(loader):
    live = LivePlot(every=2, enabled=True, min_interval=0.0, max_share=1.0)
    live.draw = lambda: setattr(live, "frames", live.frames + 1)   # count frames without a display
    history = train(loader, live, epochs=2)
    (curve,) = live.curves.values()
    assert curve.label == "run 1" and curve.done
    # 5 batches per epoch, a point every 2 steps and the epoch's leftover step: steps 2, 4, 5, 7, 9, 10
    assert curve.steps == [2, 4, 5, 7, 9, 10]
    assert all(0 <= a <= 1 for a in curve.acc) and all(l > 0 for l in curve.loss)
    assert curve.epoch_steps == [5, 10]
    assert curve.val_acc == [row["val_acc"] for row in history.epochs]
    # the window means cover every step once: their step-weighted mean is the epoch's mean training loss
    weights = [2, 2, 1]
    first_epoch = sum(w * l for w, l in zip(weights, curve.loss[:3])) / 5
    assert first_epoch == pytest.approx(history.epochs[0]["train_loss"], rel=1e-4)
    # a frame per full window (min_interval 0: steps 2, 4, 7, 9), per epoch end, and at the end of the run
    assert live.frames == 4 + 2 + 1


def test_a_hand_written_loop_logs_its_steps_like_fit(loader):
    """The course's own loop (no fit, no events): log() after each step, finish() after the loop."""
    import paddle
    import paddle.nn.functional as F

    live = LivePlot(every=2, enabled=True, min_interval=0.0, max_share=1.0)
    live.draw = lambda: setattr(live, "frames", live.frames + 1)
    set_seed(0)
    model = MNIST()
    opt = paddle.optimizer.SGD(learning_rate=0.01, parameters=model.parameters())
    losses = []
    for images, labels in loader():
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(float(loss))
        live.log(loss, logits, labels, steps_per_epoch=len(loader))
    live.finish()
    (curve,) = live.curves.values()
    assert curve.done and curve.steps == [2, 4, 5]   # a point every 2 steps and the leftover one
    assert curve.loss == pytest.approx([sum(losses[:2]) / 2, sum(losses[2:4]) / 2, losses[4]], rel=1e-5)
    assert all(0 <= a <= 1 for a in curve.acc) and curve.epoch_steps == []
    disabled = LivePlot(every=1)   # headless: nothing kept, finish() harmless
    disabled.log(loss, logits, labels)
    disabled.finish()
    assert disabled.curves == {}


def test_one_instance_follows_several_runs_one_curve_each(loader):
    live = LivePlot(every=5, enabled=True)
    live.draw = lambda: None
    for lr in (0.01, 0.1):
        train(loader, live.run(f"lr {lr}"), epochs=1)
    train(loader, live, epochs=1)                    # used directly: an automatic label
    assert list(live.curves) == ["lr 0.01", "lr 0.1", "run 3"]
    assert all(c.done and len(c.steps) == 1 for c in live.curves.values())
    with pytest.raises(ValueError, match="already has a run named 'lr 0.1'"):
        train(loader, live.run("lr 0.1"), epochs=1)


def test_add_a_finished_history_and_render_a_png(loader):
    history = train(loader, epochs=2)
    live = LivePlot(enabled=False)
    live.add("trained elsewhere", history)
    curve = live.curves["trained elsewhere"]
    assert curve.loss == history.losses and curve.val_acc == [r["val_acc"] for r in history.epochs]
    png = live.png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="every must be a positive number of steps"):
        LivePlot(every=0)
    with pytest.raises(ValueError, match="min_interval"):
        LivePlot(min_interval=-1)
    with pytest.raises(ValueError, match="max_share"):
        LivePlot(max_share=0)


NOTEBOOK_CELLS = [
    "import sys\nsys.path.insert(0, {root!r})\n"
    "from course import LivePlot, MNIST, fit, make_loader, make_optimizer, set_seed\n"
    "loader = make_loader('train50k', 64, seed=0, subset=320)\n"
    "def train(lr, *callbacks):\n"
    "    set_seed(0)\n"
    "    model = MNIST()\n"
    "    return fit(model, loader, make_optimizer('sgd', lr, model.parameters()), 2, val_loader=loader,\n"
    "               callbacks=list(callbacks))",
    "live = LivePlot(every=1, min_interval=0.0, max_share=1.0, title='one run')\n"
    "history = train(0.01, live)\n"
    "import hashlib\n"
    "print('frames', live.frames, 'final', hashlib.sha256(live.png()).hexdigest())",
    "compare = LivePlot(every=2, title='two runs')   # default spacing: the cell-end hook draws the last frame\n"
    "for lr in (0.01, 0.05):\n"
    "    train(lr, compare.run(f'lr {lr}'))\n"
    "print('final', hashlib.sha256(compare.png()).hexdigest(), 'runs', list(compare.curves))",
]


def images(cell):
    return [o for o in cell.outputs if "image/png" in o.get("data", {})]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    root = str(ROOT)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.format(root=root) if i == 0 else src)
                for i, src in enumerate(NOTEBOOK_CELLS)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder = tmp_path_factory.mktemp("live")
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def stdout(cell):
    return "".join(o["text"] for o in cell.outputs if o.get("name") == "stdout").split()


def shown_png(cell):
    shown = images(cell)
    assert len(shown) == 1, f"{len(shown)} images: a live view redraws one output in place"
    return base64.b64decode(shown[0]["data"]["image/png"])


def test_in_jupyter_the_final_frame_stays_in_the_executed_notebook(executed):
    words = stdout(executed.cells[1])
    assert int(words[1]) > 10               # redrawn many times (every step, every epoch end) ...
    png = shown_png(executed.cells[1])      # ... in place: one output, not one per frame
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert hashlib.sha256(png).hexdigest() == words[3]   # and the one kept is the final frame


def test_a_comparison_keeps_one_frame_with_every_run(executed):
    words = stdout(executed.cells[2])
    assert " ".join(words[3:]) == "['lr 0.01', 'lr 0.05']"
    assert hashlib.sha256(shown_png(executed.cells[2])).hexdigest() == words[1]   # both runs, done


def test_frames_are_spaced_to_keep_drawing_under_its_share(capsys):
    """After a frame that took c seconds, the next waits c * (1 - share) / share: drawing stays under the share."""
    live = LivePlot(enabled=True, min_interval=0.0, max_share=0.1)
    live.curves["a run"] = type("Curve", (), {})()   # draw() only needs a non-empty set of curves here

    def slow_png():
        time.sleep(0.05)
        return b"\x89PNG\r\n\x1a\n"

    live.png = slow_png
    live.draw()
    wait = live._next_frame - time.perf_counter()
    assert 0.05 * 9 * 0.9 < wait < 5, wait
    live._maybe_draw()
    assert live.frames == 1              # too soon: skipped
    live._maybe_draw(force=True)
    assert live.frames == 2
