"""Mixed precision on a machine without a GPU.

Paddle 3.3.1's autocast does nothing on the CPU, so ``--amp`` there is a one-line error. The
float16 loss scaler is plain arithmetic (scale, look for inf / NaN, unscale, skip, adapt) that
Paddle merely refuses to enable on the CPU: ``scaler_on_cpu`` lifts that refusal, and the tests
run the real ``paddle.amp.GradScaler`` through the real loop, checkpoint and ``train_run``.
"""
import warnings

import numpy as np
import paddle
import paddle.amp.grad_scaler as grad_scaler
import pytest

import course.amp
from course import MNIST, Callback, Checkpoint, Config, fit, load_checkpoint, make_loader, train_run
from course.amp import MixedPrecision, check_dtype, supported_dtypes
from course.cli import main
from course.device import set_seed
from course.errors import ConfigError
from course import TrainState


class _GpuPlace:
    """What GradScaler's constructor asks of the current place before it agrees to be enabled."""

    def is_gpu_place(self):
        return True

    def is_xpu_place(self):
        return False

    def is_custom_place(self):
        return False


@pytest.fixture
def scaler_on_cpu(monkeypatch):
    real = grad_scaler._dygraph_tracer

    class Tracer:
        _expected_place = _GpuPlace()

        def __getattr__(self, name):
            return getattr(real(), name)

    monkeypatch.setattr(grad_scaler, "_dygraph_tracer", lambda: Tracer())
    monkeypatch.setattr(course.amp, "supported_dtypes", lambda device=None: ("float16", "bfloat16"))
    with warnings.catch_warnings():  # autocast on the CPU: "amp_guard can only be enabled on CUDAPlace ..."
        warnings.filterwarnings("ignore", message="amp_guard can only be enabled")
        yield


def enabled_scaler(**kwargs):
    scaler = course.amp.GradScaler(**kwargs)
    assert scaler.is_enable()
    return scaler


def train(callbacks=(), steps=5, seed=0):
    """``steps`` Adam steps of the course CNN on batches of 32; returns the final parameters."""
    set_seed(seed)
    model = MNIST()
    optimizer = paddle.optimizer.Adam(1e-3, parameters=model.parameters())
    loader = make_loader("train50k", 32, seed=seed, subset=32 * steps)
    fit(model, loader, optimizer, 1, callbacks=list(callbacks))
    return {k: v.numpy() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- the CPU answer
def test_the_cpu_supports_no_autocast_and_the_error_says_so():
    assert supported_dtypes("cpu") == ()
    for dtype in ("float16", "bfloat16"):
        with pytest.raises(ConfigError) as error:
            check_dtype(dtype, "cpu")
        message = str(error.value)
        assert "\n" not in message and f"amp={dtype!r} is not supported on cpu" in message
        assert message.endswith("supported here: off.")
    with pytest.raises(ConfigError, match="not one of: off, float16, bfloat16"):
        check_dtype("float8", "cpu")


def test_cli_amp_on_the_cpu_is_a_one_line_error_before_anything_is_written(tmp_path, capsys):
    assert main(["train", "--amp", "bfloat16", "--device", "cpu", "--out_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "amp='bfloat16' is not supported on cpu" in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as stop:
        main(["train", "--amp", "fp8"])
    assert stop.value.code == 2


def test_without_amp_the_loop_steps_through_a_disabled_scaler():
    state = TrainState(MNIST(), None, None, None)
    assert isinstance(state.scaler, paddle.amp.GradScaler) and not state.scaler.is_enable()
    loss = paddle.to_tensor(1.5)
    assert state.scaler.scale(loss) is loss


# --------------------------------------------------------------------------- the scaler, for real
class Spy(Callback):
    """Records the scaler the loop used and the parameters before / after one step."""

    def __init__(self, poison_step=None):
        self.poison_step, self.before, self.after, self.scaler = poison_step, None, None, None

    def before_batch(self, state):
        self.scaler = state.scaler
        if state.step == self.poison_step:
            self.before = {k: v.numpy().copy() for k, v in state.model.state_dict().items()}

    def after_loss(self, state):
        if state.step == self.poison_step:
            state.loss = state.loss * float("inf")  # every gradient of this step overflows

    def after_batch(self, state):
        if state.step - 1 == self.poison_step:
            self.after = {k: v.numpy().copy() for k, v in state.model.state_dict().items()}


def test_float16_loss_scaling_gives_the_float32_steps(scaler_on_cpu):
    reference = train()
    scaler = enabled_scaler()
    spy = Spy()
    scaled = train([MixedPrecision("float16", scaler=scaler), spy])
    assert spy.scaler is scaler  # the loop scaled the loss and stepped through it
    # Scaling by 2**16 and unscaling are exact in float32: the same parameters, bit for bit.
    for name in reference:
        np.testing.assert_array_equal(scaled[name], reference[name], err_msg=name)
    state = scaler.state_dict()
    assert state["scale"][0] == 2.0**16 and state["incr_count"] == 5 and state["decr_count"] == 0


def test_an_overflowed_step_is_skipped_and_the_scale_halved(scaler_on_cpu):
    scaler = enabled_scaler(init_loss_scaling=1024.0)
    spy = Spy(poison_step=2)
    train([MixedPrecision("float16", scaler=scaler), spy])
    for name in spy.before:
        np.testing.assert_array_equal(spy.after[name], spy.before[name], err_msg=name)  # no update
    state = scaler.state_dict()
    assert state["scale"][0] == 512.0 and state["incr_count"] == 2  # steps 4 and 5 since the overflow


def test_bfloat16_needs_no_scaler_and_leaves_autocast(scaler_on_cpu):
    amp = MixedPrecision("bfloat16")
    assert not amp.scaler.is_enable() and amp.state_dict() == {}
    spy = Spy()
    train([amp, spy], steps=2)
    assert spy.scaler is amp.scaler and amp._autocast is None


def test_checkpoint_keeps_the_loss_scale(scaler_on_cpu, tmp_path):
    scaler = enabled_scaler(init_loss_scaling=1024.0)
    train([MixedPrecision("float16", scaler=scaler), Spy(poison_step=1),
           Checkpoint(tmp_path / "c.pdckpt")], steps=4)
    saved = load_checkpoint(tmp_path / "c.pdckpt")["scaler"]
    assert float(saved["scale"][0]) == 512.0 and saved["incr_count"] == 2
    restored = MixedPrecision("float16", scaler=enabled_scaler())
    restored.set_state_dict(saved)
    again = restored.state_dict()
    assert again["scale"][0] == 512.0 and again["incr_count"] == 2
    train([Checkpoint(tmp_path / "plain.pdckpt")], steps=1)
    assert load_checkpoint(tmp_path / "plain.pdckpt")["scaler"] is None  # no AMP: no scaler state


def test_train_run_float16_resumes_with_its_loss_scale(scaler_on_cpu, tmp_path):
    config = Config(amp="float16", device="cpu", train_subset=320, eval_subset=100, num_epochs=1,
                    out_dir=str(tmp_path), run_name="amp", progress=False, visualdl=False)
    first = train_run(config)
    assert load_checkpoint(first["run_dir"])["scaler"]["incr_count"] == 5  # 320 / 64 good steps
    train_run(config.replace(num_epochs=2), resume=first["run_dir"])
    # Counting on from the restored 5 (a fresh scaler would be at 5 again, not 10).
    assert load_checkpoint(first["run_dir"])["scaler"]["incr_count"] == 10
