"""The lesson's model contract: names, shapes, (logits, acc), check_shape / check_content, save / load."""
import inspect

import numpy as np
import paddle
import pytest

from MNIST_network import MNIST

EXPECTED = {"conv1.weight": [20, 1, 5, 5], "conv1.bias": [20], "conv2.weight": [20, 20, 5, 5],
            "conv2.bias": [20], "fc.weight": [980, 10], "fc.bias": [10]}


def batch(n=64):
    paddle.seed(0)
    return paddle.uniform([n, 1, 28, 28], min=-1, max=1), paddle.randint(0, 10, [n, 1])


def test_parameter_names_and_shapes():
    model = MNIST()
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == EXPECTED
    assert [name for name, _ in model.named_children()] == ["conv1", "max_pool1", "conv2", "max_pool2", "fc"]


def test_forward_returns_logits_and_optionally_accuracy():
    model = MNIST()
    x, y = batch()
    logits = model(x)
    assert logits.shape == [64, 10]
    logits2, acc = model(x, y)
    expected_acc = (logits2.numpy().argmax(1) == y.numpy()[:, 0]).mean()
    assert float(acc) == pytest.approx(expected_acc)


def test_check_shape_prints_settings_and_every_output_shape(capsys):
    MNIST()(batch()[0], check_shape=True)
    out = capsys.readouterr().out
    for text in ("conv1 -- kernel_shape: [20, 1, 5, 5], padding: 2, stride: [1, 1]",
                 "[64, 1, 28, 28]", "[64, 20, 28, 28]", "[64, 20, 14, 14]", "[64, 20, 7, 7]",
                 "[64, 980]", "[64, 10]"):
        assert text in out


def test_check_content_prints_kernels_channels_and_logits(capsys):
    model = MNIST()
    model(batch()[0], check_content=True)
    out = capsys.readouterr().out
    assert "conv1 kernel [0][0]" in out and "conv2 kernel [0][0]" in out
    assert "conv1 output channel" in out and "conv2 output channel" in out
    first_weight = f"{float(model.conv1.weight[0, 0, 0, 0]):.4f}"
    assert first_weight in out


def test_save_and_load_round_trip_the_lesson_way(tmp_path):
    model = MNIST()
    path = str(tmp_path / "mnist.pdparams")
    paddle.save(model.state_dict(), path)
    x, _ = batch(8)
    for load in ("load_dict", "set_state_dict"):
        other = MNIST()
        getattr(other, load)(paddle.load(path))
        np.testing.assert_array_equal(other(x).numpy(), model(x).numpy())


@pytest.mark.parametrize("bad", [paddle.zeros([4, 28, 28]), paddle.zeros([4, 3, 28, 28]),
                                 paddle.zeros([4, 1, 28, 28], dtype="float64")])
def test_wrong_input_gets_an_error_naming_the_expected_shape(bad):
    with pytest.raises(ValueError, match=r"\[N, 1, 28, 28\] and dtype float32"):
        MNIST()(bad)


def test_numpy_input_gets_a_clear_error():
    with pytest.raises(TypeError, match="paddle.to_tensor"):
        MNIST()(np.zeros((1, 1, 28, 28), dtype=np.float32))


def test_model_file_holds_the_lesson_only():
    """course/model.py is the network a student opens: the CPU levers' conv path lives in course/fast_conv.py."""
    import ast

    from course import model as model_module

    source = inspect.getsource(model_module)
    tree = ast.parse(source)
    for node in ast.walk(tree):  # the code, not the docstrings (which may say where the levers are)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    code = ast.unparse(tree)
    for lever_code in ("pool_bias", "bias_rows", "F.conv2d", "max_pool2d", "CONV_LEVERS", "lever_on", "_forward_pre_hooks"):
        assert lever_code not in code, f"{lever_code} is lever code: it belongs in course/fast_conv.py"
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.level for alias in node.names}
    assert "cpu" not in imported and "fast_conv" in imported
    assert len(source.splitlines()) < 150, "course/model.py should stay readable in one sitting, like the course's"


def test_the_lesson_forward_is_the_course_order():
    """conv -> (BatchNorm) -> ReLU -> max-pool twice, then flatten and fc, in the lesson's words."""
    source = inspect.getsource(MNIST.forward)
    steps = ["self.conv1(inputs)", "self.max_pool1(F.relu(conv1_out))", "self.conv2(pool1_out)",
             "self.max_pool2(F.relu(conv2_out))", "paddle.reshape(pool2_out", "self.fc(flat)"]
    positions = [source.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions))
