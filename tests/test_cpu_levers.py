"""The CPU levers (course/cpu.py): same results with and without them, and the course's tensors still visible.

Speed itself is measured by bench/throughput.py, never asserted here.
"""
import inspect
import os
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from course import MNIST, ConfigError, ForwardRecorder, make_loader, set_seed
from course import cpu

from _helpers import ROOT, TEST_OUTPUT, course_env, run_course

WORKER = ROOT / "tests" / "_levers_worker.py"


def _levers(monkeypatch, value):
    monkeypatch.setenv("COURSE_CPU_LEVERS", value)


def _batch(n=16):
    X, y = next(iter(make_loader("train", n, subset=n)))
    return X, y


def test_switch_parsing():
    assert cpu.selected_levers("") == set(cpu.LEVERS)
    assert cpu.selected_levers("1") == set(cpu.LEVERS)
    assert cpu.selected_levers("off") == set()
    assert cpu.selected_levers("pool_bias") == {"pool_bias"}
    with pytest.raises(ConfigError, match="unknown lever.*mkl_amd, pool_bias, bias_rows"):
        cpu.selected_levers("fast")


@pytest.mark.parametrize("levers", ["pool_bias", "bias_rows", "pool_bias,bias_rows"])
def test_conv_levers_forward_is_bit_for_bit_and_gradients_agree(monkeypatch, levers):
    """relu(maxpool(conv(x)) + b) == maxpool(relu(conv(x) + b)), and a bias added per row is the same
    add: outputs equal bit for bit."""
    set_seed(0)
    model = MNIST()
    X, y = _batch(64)
    results = {}
    for value in ("0", levers):
        _levers(monkeypatch, value)
        logits = model(X)
        F.cross_entropy(logits, y).backward()
        results[value] = (logits.numpy(), {n: p.grad.numpy().copy() for n, p in model.named_parameters()})
        model.clear_gradients()
    assert model._lever_path() == tuple(levers.split(","))
    (plain, plain_grads), (fast, fast_grads) = results["0"], results[levers]
    assert np.array_equal(plain, fast)
    for name, grad in plain_grads.items():
        # weight gradients: equal up to the summation order of the bias gradient feeding nothing;
        # bias gradients: sums over 4x fewer (all non-zero) terms, a different order
        np.testing.assert_allclose(fast_grads[name], grad, rtol=1e-5, atol=1e-7, err_msg=name)


def test_state_dict_and_sublayers_unchanged(monkeypatch):
    _levers(monkeypatch, "1")
    model = MNIST()
    assert list(model.state_dict()) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                        "fc.weight", "fc.bias"]
    assert [name for name, _ in model.named_sublayers()] == ["conv1", "max_pool1", "conv2", "max_pool2", "fc"]


def test_hooks_see_the_course_tensors(monkeypatch):
    """A forward hook on conv1 must get the conv output with its bias, [N, 20, 28, 28] (plain path)."""
    _levers(monkeypatch, "1")
    set_seed(0)
    model = MNIST()
    X, _ = _batch()
    expected = model.conv1(X).numpy()
    with ForwardRecorder(model, keep_outputs=True) as rec:
        model(X)
    names = [r.name for r in rec.records_]
    assert names == ["conv1", "max_pool1", "conv2", "max_pool2", "fc"]
    assert np.array_equal(rec.records_[0].output, expected)
    # hooks removed: the fast path again, with the same logits
    _levers(monkeypatch, "0")
    plain = model(X).numpy()
    _levers(monkeypatch, "1")
    assert model._lever_path() and np.array_equal(model(X).numpy(), plain)


def test_check_shape_and_content_print_the_course_tensors(monkeypatch, capsys):
    _levers(monkeypatch, "1")
    model = MNIST()
    X, _ = _batch(4)
    model(X, check_shape=True)
    out = capsys.readouterr().out
    assert "conv1_shape:" in out and "[4, 20, 28, 28]" in out and "max_pool1_shape:" in out
    model(X, check_content=True)
    assert "conv1 output channel" in capsys.readouterr().out


def test_batch_norm_takes_the_plain_path(monkeypatch):
    _levers(monkeypatch, "1")
    assert not MNIST(batch_norm=True)._lever_path()
    assert MNIST()._lever_path() == ("pool_bias", "bias_rows")
    _levers(monkeypatch, "mkl_amd")
    assert MNIST()._lever_path() == ()
    _levers(monkeypatch, "0")
    assert not MNIST()._lever_path()


def test_to_static_and_jit_save(monkeypatch, out_dir):
    """The pool_bias path traces into a static graph (its path choice runs in Python, not traced)."""
    _levers(monkeypatch, "1")
    from course import model as model_module
    if "in_dynamic_mode" not in inspect.getsource(model_module.check_input):
        # check_input raises on a graph Value until it learns static mode (issue 14's branch);
        # this test is about the conv path, so it skips the input check while tracing until then.
        monkeypatch.setattr(model_module, "check_input", lambda x: None)
    set_seed(0)
    model = MNIST()
    model.eval()
    X, _ = _batch(8)
    expected = model(X).numpy()
    static = paddle.jit.to_static(model, input_spec=[paddle.static.InputSpec([None, 1, 28, 28], "float32")],
                                  full_graph=True)
    np.testing.assert_allclose(static(X).numpy(), expected, rtol=1e-6, atol=1e-6)
    paddle.jit.save(static, str(out_dir / "mnist"))
    loaded = paddle.jit.load(str(out_dir / "mnist"))
    np.testing.assert_allclose(loaded(X).numpy(), expected, rtol=1e-6, atol=1e-6)


def _run_levers_subprocess(tmp, levers, optimizer, lr, steps=100, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_DEBUG_CPU_TYPE", "COURSE_CPU_LEVERS")}
    env.update({"COURSE_CPU_LEVERS": levers, "OMP_NUM_THREADS": "1", **(extra_env or {})})
    out = tmp / f"{optimizer}-{levers}.npz"
    done = subprocess.run([sys.executable, str(WORKER), str(out), optimizer, str(lr), str(steps)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(out))


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, lr, atol", [
    # Momentum: measured max difference 3e-7 after 100 steps.
    ("momentum", 0.01, 1e-5),
    # Adam (the main job's optimizer) divides each gradient by its own running RMS, so a last-bit
    # difference in a gradient close to zero becomes a difference of up to ~lr in that step:
    # measured max 1.5e-5 (2 of 10,000 conv2 weights above 1e-5; every other tensor below 3.3e-6).
    ("adam", 0.001, 1e-4),
])
def test_100_steps_all_levers_on_vs_off(tmp_path, optimizer, lr, atol):
    """Fresh processes (the MKL lever acts when Paddle loads), same weights and batches."""
    off = _run_levers_subprocess(tmp_path, "0", optimizer, lr)
    on = _run_levers_subprocess(tmp_path, "1", optimizer, lr)
    assert str(off.pop("mkl_env")) == ""
    on_mkl = str(on.pop("mkl_env"))
    if cpu.mkl_amd_applies()[0]:
        assert on_mkl == cpu.MKL_VALUE
    np.testing.assert_allclose(on.pop("losses"), off.pop("losses"), rtol=1e-4, atol=1e-5)
    assert sorted(on) == sorted(off)
    for name in off:
        np.testing.assert_allclose(on[name], off[name], rtol=0, atol=atol, err_msg=name)


def _import_course_env(env_updates, code="import course, os; print(os.environ.get('MKL_DEBUG_CPU_TYPE'))"):
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_DEBUG_CPU_TYPE", "COURSE_CPU_LEVERS")}
    env.update(env_updates)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_import_course_sets_mkl_env_only_when_it_applies():
    applies = cpu.mkl_amd_applies()[0]
    assert _import_course_env({}) == ("5" if applies else "None")
    assert _import_course_env({"COURSE_CPU_LEVERS": "0"}) == "None"
    assert _import_course_env({"COURSE_CPU_LEVERS": "pool_bias"}) == "None"
    assert _import_course_env({"MKL_DEBUG_CPU_TYPE": "2"}) == "2"  # the user's value is kept
    # too late once paddle is loaded: not set, and the run header says why
    line = _import_course_env({}, "import zlib, paddle, course, os; from course.device import describe; "
                                  "print(os.environ.get('MKL_DEBUG_CPU_TYPE'), describe('cpu'))")
    assert line.startswith("None ")
    if applies:
        assert "paddle was imported before course" in line


def test_run_header_reports_the_levers(monkeypatch):
    from course.device import describe

    assert "CPU levers" in describe("cpu") and "pool_bias" in describe("cpu") and "bias_rows" in describe("cpu")
    if (os.cpu_count() or 1) > 1:  # why a run on a multi-core CPU uses one process
        assert "1 process (--nproc 2: " in describe("cpu")
        monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")
        assert "1 process" not in describe("cpu")
        monkeypatch.delenv("PADDLE_TRAINERS_NUM")
    monkeypatch.setenv("COURSE_CPU_LEVERS", "0")
    assert "CPU levers off (COURSE_CPU_LEVERS=0" in describe("cpu")
    monkeypatch.setenv("COURSE_CPU_LEVERS", "turbo")
    with pytest.raises(ConfigError, match="COURSE_CPU_LEVERS"):
        describe("cpu")


def test_bad_switch_is_a_one_line_cli_error():
    done = run_course("train", "--no-progress", "--out_dir", TEST_OUTPUT / "levers-bad-switch",
                      env=course_env(smoke=True, COURSE_CPU_LEVERS="turbo"))
    assert done.returncode == 2
    assert "COURSE_CPU_LEVERS='turbo' names unknown lever(s) ['turbo']" in done.stderr
    assert "Traceback" not in done.stderr


def test_lever_states_read_as_states_not_failures(monkeypatch):
    """The run's environment line names why a lever is not used in neutral words ("not needed",
    "not set"), never "not applied", which read like an error in the run header."""
    monkeypatch.delenv("COURSE_CPU_LEVERS", raising=False)
    monkeypatch.delenv(cpu.MKL_ENV, raising=False)
    monkeypatch.setattr(cpu, "cpu_vendor", lambda: "GenuineIntel")
    assert cpu.set_mkl_env() == "not needed (CPU vendor GenuineIntel; it is for AMD CPUs)"
    monkeypatch.setattr(cpu, "cpu_vendor", lambda: "AuthenticAMD")
    monkeypatch.setattr(cpu, "paddle_is_gpu_wheel", lambda: True)
    assert cpu.set_mkl_env() == "not needed (paddlepaddle-gpu: its convolutions do not run in MKL)"
    monkeypatch.setattr(cpu, "paddle_is_gpu_wheel", lambda: False)
    assert cpu.set_mkl_env().startswith("not set (paddle was imported before course")  # paddle is loaded here
    assert cpu.MKL_ENV not in os.environ
