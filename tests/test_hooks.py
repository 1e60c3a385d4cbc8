"""course.hooks on real Paddle layers: the course MNIST and a small nn.Sequential."""
import numpy as np
import paddle
import pytest
from paddle import nn

from course import (MNIST, ForwardRecorder, find_dead_units, first_nonfinite_layer, format_report,
                    layer_report)


@pytest.fixture
def X():
    paddle.seed(0)
    return paddle.uniform([64, 1, 28, 28], min=-1.0, max=1.0)


@pytest.fixture
def mnist():
    paddle.seed(0)
    return MNIST()


def mlp():
    paddle.seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))


def all_hooks_gone(model):
    return all(not layer._forward_post_hooks and not layer._forward_pre_hooks
               for layer in [model, *model.sublayers()])


def test_report_shapes_match_the_course(mnist, X, capsys):
    records = layer_report(mnist, X)
    printed = capsys.readouterr().out
    shapes = {r.name: r.output_shape for r in records}
    # The flattened [64, 980] has no row: paddle.reshape is called in forward, not a sub-layer.
    assert shapes == {"conv1": [64, 20, 28, 28], "max_pool1": [64, 20, 14, 14],
                      "conv2": [64, 20, 14, 14], "max_pool2": [64, 20, 7, 7], "fc": [64, 10]}
    assert [r.name for r in records] == ["conv1", "max_pool1", "conv2", "max_pool2", "fc"]
    by_name = {r.name: r for r in records}
    assert by_name["conv1"].settings == {"kernel_shape": [20, 1, 5, 5], "padding": 2, "stride": [1, 1]}
    assert by_name["conv2"].param_shapes == {"weight": [20, 20, 5, 5], "bias": [20]}
    assert by_name["fc"].settings == {"in_features": 980, "out_features": 10}
    assert by_name["max_pool1"].settings == {"kernel_size": 2, "stride": 2, "padding": 0}
    assert by_name["max_pool1"].param_shapes == {}
    assert "[64, 20, 28, 28]" in printed and "kernel_shape=[20, 1, 5, 5]" in printed
    assert all_hooks_gone(mnist)


def test_report_works_with_the_label_argument_and_sequential(mnist, X, capsys):
    label = paddle.zeros([64, 1], dtype="int64")
    assert [r.name for r in layer_report(mnist, X, label, verbose=False)][-1] == "fc"
    records = layer_report(mlp(), X, verbose=False)
    assert [(r.type, r.output_shape) for r in records] == [
        ("Flatten", [64, 784]), ("Linear", [64, 32]), ("ReLU", [64, 32]), ("Linear", [64, 10])]
    assert capsys.readouterr().out == ""


def test_stats_and_sample_match_numpy(X):
    model = mlp()
    records = layer_report(model, X, stats=True, sample=True, sample_size=4, verbose=False)
    # Reference: the same layers applied by hand.
    h = X.reshape([64, -1])
    expected = []
    for layer in model:
        h = layer(h)
        expected.append(h.numpy().astype(np.float64))
    for rec, ref in zip(records, expected):
        assert rec.stats["mean"] == pytest.approx(ref.mean(), rel=1e-6, abs=1e-7)
        assert rec.stats["std"] == pytest.approx(ref.std(), rel=1e-6)
        assert rec.stats["zero_frac"] == pytest.approx((ref == 0).mean())
        np.testing.assert_allclose(rec.sample, ref.reshape(64, -1)[0, :4], rtol=1e-6)
    relu = records[2]
    assert 0.2 < relu.stats["zero_frac"] < 0.8  # ReLU zeroes part of its inputs
    table = format_report(records)
    assert "mean" in table and "zeros" in table and "sample" in table


def test_hooks_removed_after_the_context(mnist, X, capsys):
    with ForwardRecorder(mnist, stats=True) as rec:
        assert not all_hooks_gone(mnist)
        mnist(X)
    assert len(rec.records_) == 5
    assert all_hooks_gone(mnist)
    mnist(X)  # a forward pass afterwards neither prints nor records
    assert len(rec.records_) == 5
    assert capsys.readouterr().out == ""


def test_hooks_removed_even_if_forward_raises(X):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.Linear(33, 10))  # shapes don't chain
    with pytest.raises(ValueError):  # Paddle's InvalidArgument: [64, 32] x [33, 10]
        with ForwardRecorder(model) as rec:
            model(X)
    assert [r.output_shape for r in rec.records_] == [[64, 784], [64, 32]]  # recorded until the error
    assert all_hooks_gone(model)
    with pytest.raises(ValueError):
        layer_report(model, X)
    assert all_hooks_gone(model)


def test_hooks_do_not_change_outputs(mnist, X):
    before = mnist(X).numpy()
    layer_report(mnist, X, stats=True, sample=True, verbose=False)
    np.testing.assert_array_equal(mnist(X).numpy(), before)


def test_no_dead_units_on_a_healthy_init(mnist, X):
    assert find_dead_units(mnist, X) == {"conv1": [], "conv2": []}  # fc (logits) not checked
    assert find_dead_units(mlp(), X) == {"1": []}


def test_dead_units_found_where_killed(mnist, X):
    # weight 0, bias -1: the channel outputs -1 everywhere, relu(-1) = 0 for every image.
    with paddle.no_grad():
        w, b = mnist.conv2.weight.numpy(), mnist.conv2.bias.numpy()
        w[[3, 11]], b[[3, 11]] = 0.0, -1.0
        mnist.conv2.weight.set_value(w)
        mnist.conv2.bias.set_value(b)
    assert find_dead_units(mnist, X) == {"conv1": [], "conv2": [3, 11]}
    assert find_dead_units(mnist, X, layers=["conv2"]) == {"conv2": [3, 11]}
    assert all_hooks_gone(mnist)

    model = mlp()
    with paddle.no_grad():
        w, b = model[1].weight.numpy(), model[1].bias.numpy()
        w[:, 5], b[5] = 0.0, -1.0  # Paddle's Linear weight is [in, out]: unit 5 is column 5
        model[1].weight.set_value(w)
        model[1].bias.set_value(b)
    assert find_dead_units(model, X) == {"1": [5]}
    with pytest.raises(ValueError, match="no sub-layer"):
        find_dead_units(model, X, layers=["nope"])


def test_nonfinite_check_names_the_first_bad_layer(mnist, X):
    assert first_nonfinite_layer(mnist, X) is None
    with paddle.no_grad():
        w = mnist.conv2.weight.numpy()
        w[0, 0, 2, 2] = np.nan
        mnist.conv2.weight.set_value(w)
    # conv2, max_pool2 and fc all carry the NaN; conv2 is where it starts.
    assert first_nonfinite_layer(mnist, X) == "conv2"
    assert all_hooks_gone(mnist)

    model = mlp()
    with paddle.no_grad():
        b = model[3].bias.numpy()
        b[7] = np.inf
        model[3].bias.set_value(b)
    assert first_nonfinite_layer(model, X) == "3"
    records = layer_report(model, X, verbose=False)
    assert [r.nonfinite for r in records] == [False, False, False, True]
    assert "NaN/inf!" in format_report(records)


def test_checks_leave_a_batch_norm_model_untouched():
    # A check must not move BatchNorm's running statistics nor change the model's mode.
    from course import MNIST, find_dead_units, first_nonfinite_layer, layer_report
    paddle.seed(0)
    model = MNIST(batch_norm=True)
    model.train()
    X = paddle.randn([32, 1, 28, 28])
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    layer_report(model, X, verbose=False)
    find_dead_units(model, X)
    first_nonfinite_layer(model, X)
    assert model.training
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
