"""Cross-entropy and squared error on one-hot targets: values and the gradient difference."""
import math

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from course import ConfigError, make_loss


def test_cross_entropy_is_paddles_for_both_label_shapes():
    logits = paddle.randn([5, 10])
    labels = paddle.to_tensor([0, 3, 9, 1, 1])
    expected = float(F.cross_entropy(logits, labels.reshape([-1, 1])))
    ce = make_loss("cross_entropy")
    assert float(ce(logits, labels)) == pytest.approx(expected)
    assert float(ce(logits, labels.reshape([-1, 1]))) == pytest.approx(expected)


def test_mse_is_the_per_sample_squared_distance_of_softmax_to_one_hot():
    logits = np.random.default_rng(0).normal(size=(4, 10)).astype("float32")
    labels = np.array([2, 7, 7, 0])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = ((p - np.eye(10)[labels]) ** 2).sum(1).mean()
    got = make_loss("mse")(paddle.to_tensor(logits), paddle.to_tensor(labels).reshape([-1, 1]))
    assert got.shape == [] and float(got) == pytest.approx(expected, rel=1e-5)
    # uniform prediction: (1 - 0.1)^2 + 9 * 0.1^2 = 0.9 per sample; cross-entropy is ln 10
    zeros, label = paddle.zeros([1, 10]), paddle.to_tensor([[3]])
    assert float(make_loss("mse")(zeros, label)) == pytest.approx(0.9)
    assert float(make_loss("cross_entropy")(zeros, label)) == pytest.approx(math.log(10))


def test_mse_gradient_vanishes_when_confidently_wrong_and_cross_entropy_does_not():
    # The lesson's argument for cross-entropy, as numbers: logits sure of class 0, label 1.
    grads = {}
    for name in ("cross_entropy", "mse"):
        logits = paddle.to_tensor([[12.0] + [0.0] * 9], stop_gradient=False)
        make_loss(name)(logits, paddle.to_tensor([[1]])).backward()
        grads[name] = float(paddle.linalg.norm(logits.grad))
    assert grads["cross_entropy"] > 1.0      # softmax - one_hot: about sqrt(2)
    assert grads["mse"] < 1e-3               # squashed by the saturated softmax


def test_unknown_loss_names_the_choices():
    with pytest.raises(ConfigError, match="choose one of: cross_entropy, mse"):
        make_loss("hinge")
