"""course/fast_conv.py: the conv levers' path gives the course's tensors from the course's layers.

The model-level equalities (logits bit for bit, gradients, hooks, check_shape, jit) are in
tests/test_cpu_levers.py; these are the module's own.
"""
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from course import MNIST, set_seed
from course import fast_conv


def _plain_blocks(model, x):
    """The course's two conv blocks, written as the lesson writes them."""
    out = model.max_pool1(F.relu(model.conv1(x)))
    return model.max_pool2(F.relu(model.conv2(out)))


@pytest.mark.parametrize("levers", [("pool_bias",), ("bias_rows",), ("pool_bias", "bias_rows")])
def test_conv_blocks_equal_the_course_layers_bit_for_bit(levers):
    set_seed(0)
    model = MNIST()
    paddle.seed(1)
    x = paddle.uniform([8, 1, 28, 28], min=-1, max=1)
    fast = fast_conv.conv_blocks(model, x, levers)
    assert fast.shape == [8, 20, 7, 7]
    assert np.array_equal(fast.numpy(), _plain_blocks(model, x).numpy())


def test_levers_for_reads_the_switch_in_cpu_order(monkeypatch):
    model = MNIST()
    monkeypatch.setenv("COURSE_CPU_LEVERS", "bias_rows,pool_bias")
    assert fast_conv.levers_for(model) == ("pool_bias", "bias_rows")
    monkeypatch.setenv("COURSE_CPU_LEVERS", "bias_rows")
    assert fast_conv.levers_for(model) == ("bias_rows",)
    monkeypatch.setenv("COURSE_CPU_LEVERS", "mkl_amd")
    assert fast_conv.levers_for(model) == ()


def test_levers_for_declines_whenever_the_course_tensors_are_watched_or_changed(monkeypatch):
    monkeypatch.setenv("COURSE_CPU_LEVERS", "1")
    assert fast_conv.levers_for(MNIST()) == ("pool_bias", "bias_rows")
    assert fast_conv.levers_for(MNIST(batch_norm=True)) == ()
    for name in fast_conv.PATH_LAYERS:
        model = MNIST()
        handle = getattr(model, name).register_forward_post_hook(lambda layer, inputs, output: None)
        assert fast_conv.levers_for(model) == (), name
        handle.remove()
        assert fast_conv.levers_for(model) == ("pool_bias", "bias_rows"), name
    model = MNIST()
    model.max_pool1 = paddle.nn.AvgPool2D(kernel_size=2, stride=2)   # not the plain layer any more
    assert fast_conv.levers_for(model) == ()
    model = MNIST()
    model.conv2 = paddle.nn.Conv2D(20, 20, 5, padding=2, bias_attr=False)
    assert fast_conv.levers_for(model) == ()


def test_the_same_parameters_and_state_dict_either_way(monkeypatch):
    """The path has no parameters of its own: switching the levers changes no key, shape or value."""
    keys = {}
    for value in ("0", "1"):
        monkeypatch.setenv("COURSE_CPU_LEVERS", value)
        set_seed(0)
        model = MNIST()
        model(paddle.zeros([2, 1, 28, 28]))
        keys[value] = {k: v.numpy() for k, v in model.state_dict().items()}
    assert list(keys["0"]) == list(keys["1"]) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                                  "fc.weight", "fc.bias"]
    for name, value in keys["0"].items():
        assert np.array_equal(value, keys["1"][name]), name
