"""Initialization: the catalogue, ParamAttr, apply_init, inspection, and symmetric weights failing."""
import numpy as np
import paddle
import pytest

from course import ConfigError, MNIST, fit, make_loader, make_optimizer, set_seed, evaluate
from course.config import INITS
from course.init import INITIALIZERS, apply_init, make_initializer, param_attr, parameter_table


def test_catalogue_matches_the_config_choices():
    assert set(INITS) == {"default", *INITIALIZERS}


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_every_initializer_reinitializes_weights_and_zeroes_biases(name):
    set_seed(0)
    model = MNIST()
    for _, p in model.named_parameters():
        p.set_value(paddle.full(p.shape, 7.0))
    apply_init(model, name)
    for key, p in model.named_parameters():
        values = p.numpy()
        if key.endswith("bias"):
            assert (values == 0).all(), key
        else:
            assert not (values == 7.0).any(), (name, key)


def test_statistics_follow_the_scheme():
    set_seed(0)
    model = apply_init(MNIST(), "normal", std=0.1)
    assert model.fc.weight.numpy().std() == pytest.approx(0.1, rel=0.05)
    he = apply_init(MNIST(), "kaiming_normal")
    fan_in = 20 * 5 * 5  # conv2: in_channels x kernel area
    assert he.conv2.weight.numpy().std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.1)
    default = MNIST()
    limit = np.sqrt(6 / (980 + 10))  # Xavier uniform, Paddle's default for fc.weight
    assert np.abs(default.fc.weight.numpy()).max() <= limit
    # Paddle's default for conv weights is Normal(0, sqrt(2 / fan_in)), not Xavier.
    assert default.conv2.weight.numpy().std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.1)


def test_param_attr_constant_three_as_in_the_course():
    layer = paddle.nn.Linear(4, 3, weight_attr=param_attr("constant", value=3.0))
    assert (layer.weight.numpy() == 3.0).all()
    frozen = paddle.nn.Linear(4, 3, weight_attr=param_attr("normal", trainable=False))
    assert frozen.weight.stop_gradient


def test_unknown_initializer_and_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="choose one of: constant"):
        make_initializer("glorot")
    with pytest.raises(ConfigError, match="does not take"):
        make_initializer("constant", std=1.0)


def test_parameter_table_lists_every_parameter():
    table = parameter_table(MNIST())
    for name, shape in (("conv1.weight", "[20, 1, 5, 5]"), ("fc.weight", "[980, 10]"), ("fc.bias", "[10]")):
        assert name in table and shape in table
    assert table.splitlines()[-1].split()[-1] == str(20 * 25 + 20 + 20 * 20 * 25 + 20 + 9800 + 10)


@pytest.mark.slow
def test_symmetric_constant_weights_cannot_learn_but_default_init_can():
    """Constant weights give every channel the same gradient, so they stay identical: 20
    channels that compute one feature. (The fc rows still differ, since each class's label
    pulls its own row, so the network learns something, just less.)"""
    results = {}
    for scheme in ("default", "constant"):
        set_seed(0)
        model = apply_init(MNIST(), scheme, **({"value": 0.01} if scheme == "constant" else {}))
        fit(model, make_loader("train", 64, subset=1280), make_optimizer("adam", 0.002, model.parameters()), 1)
        kernels = model.conv1.weight.numpy().reshape(20, -1)
        results[scheme] = (evaluate(model, make_loader("test", 500, subset=1000))["acc"],
                           float(np.abs(kernels - kernels[0]).max()))
    # all 20 conv1 kernels still identical, up to rounding: the CPU levers' kernels (course/cpu.py)
    # sum some channels in another order (after these 20 Adam steps: pool_bias 7.5e-9, mkl_amd 2.2e-4;
    # Paddle's default path exactly 0), which is still far below the spread of random kernels
    assert results["default"][1] > 0.01
    assert results["constant"][1] < 0.01 * results["default"][1]
    assert results["default"][0] > results["constant"][0]
