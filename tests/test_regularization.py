"""L1 / L2 penalties: through the optimizer for every parameter, through ParamAttr for one layer."""
import numpy as np
import paddle
import pytest
from paddle.regularizer import L1Decay, L2Decay

from course import ConfigError, MNIST, make_optimizer
from course.config import Config


def _zero_gradient_step(model, optimizer):
    """A step whose loss has zero gradient: only the penalty moves the weights."""
    x = paddle.randn([2, 1, 28, 28])
    (model(x).sum() * 0.0).backward()
    optimizer.step()
    optimizer.clear_grad()


def _weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("regularizer", ["l2", "l1"])
def test_optimizer_penalty_moves_every_parameter_by_its_gradient(regularizer):
    paddle.seed(0)
    model = MNIST()
    lr, coeff = 0.5, 0.1
    before = _weights(model)
    _zero_gradient_step(model, make_optimizer("sgd", lr, model.parameters(), coeff, regularizer=regularizer))
    for name, w in before.items():
        penalty_grad = coeff * (w if regularizer == "l2" else np.sign(w))
        np.testing.assert_allclose(model.state_dict()[name].numpy(), w - lr * penalty_grad, rtol=1e-5,
                                   atol=1e-7, err_msg=name)


def test_param_attr_regularizer_applies_to_one_layer_only():
    paddle.seed(0)
    model = MNIST(weight_attrs={"fc": paddle.ParamAttr(regularizer=L2Decay(0.2))})
    before = _weights(model)
    _zero_gradient_step(model, make_optimizer("sgd", 0.5, model.parameters()))  # no optimizer-wide decay
    after = _weights(model)
    np.testing.assert_allclose(after["fc.weight"], before["fc.weight"] * (1 - 0.5 * 0.2), rtol=1e-5)
    for name in ("conv1.weight", "conv2.weight", "fc.bias"):
        np.testing.assert_array_equal(after[name], before[name])


def test_a_layer_regularizer_takes_precedence_over_the_optimizer_one():
    # Paddle's documented rule; the course relies on it when it mixes the two.
    paddle.seed(0)
    model = MNIST(weight_attrs={"fc": paddle.ParamAttr(regularizer=L1Decay(0.01))})
    before = _weights(model)
    _zero_gradient_step(model, make_optimizer("sgd", 1.0, model.parameters(), 0.3, regularizer="l2"))
    after = _weights(model)
    w = before["fc.weight"]
    np.testing.assert_allclose(after["fc.weight"], w - 0.01 * np.sign(w), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(after["conv1.weight"], before["conv1.weight"] * 0.7, rtol=1e-5)


def test_weight_attrs_naming_an_unknown_layer_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['fc2'\].*conv1"):
        MNIST(weight_attrs={"fc2": paddle.ParamAttr()})


def test_regularizer_errors_name_the_choices():
    params = MNIST().parameters()
    with pytest.raises(ConfigError, match="choose one of: l2, l1"):
        make_optimizer("adam", 0.01, params, 0.1, regularizer="l3")
    with pytest.raises(ConfigError, match="adamw decouples an L2 decay"):
        make_optimizer("adamw", 0.01, params, 0.1, regularizer="l1")
    with pytest.raises(ConfigError, match="regularizer='elastic' is not one of: l2, l1"):
        Config(regularizer="elastic")
