"""course.metrics: exact accuracy, top-k, running means, confusion matrix, and why the
mean of per-batch accuracies is not the accuracy when the last batch is short."""
import math

import numpy as np
import paddle
import pytest

import course
from course import (MNIST, RunningMean, accuracy, confusion_matrix, mean_of_batch_accuracies,
                    most_confused_pair, paddle_accuracy_stream, plot_confusion_matrix, predict_all,
                    top_k_accuracy)


@pytest.fixture
def scores():
    """Random logits [200, 10] and labels [200] that agree on a known subset of rows."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=200)
    labels[:120] = logits[:120].argmax(axis=1)  # at least 120 right, the rest by chance
    return logits, labels


def test_accuracy_labels_n_and_n1_tensor_and_numpy(scores):
    logits, labels = scores
    expected = float(np.mean(logits.argmax(axis=1) == labels))
    assert expected >= 0.6
    cases = [(logits, labels), (logits, labels[:, None]),
             (paddle.to_tensor(logits), paddle.to_tensor(labels)),
             (paddle.to_tensor(logits), paddle.to_tensor(labels[:, None]))]
    for x, y in cases:
        assert accuracy(x, y) == expected  # exact: integer count / N, no float32 rounding


def test_accuracy_agrees_with_paddle_metric_accuracy(scores):
    logits, labels = map(paddle.to_tensor, scores)
    batch = float(paddle.metric.accuracy(input=logits, label=labels.reshape([-1, 1])))
    assert accuracy(logits, labels) == pytest.approx(batch, abs=1e-6)


def test_correct_count_still_importable_from_train():
    from course.tensors import correct_count
    assert int(correct_count(paddle.to_tensor([[0.1, 0.9], [0.8, 0.2]]), paddle.to_tensor([[1], [1]]))) == 1


def test_accuracy_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="labels"):
        accuracy(np.zeros((4, 10), np.float32), np.zeros(5, np.int64))


def test_top_k_accuracy(scores):
    logits, labels = scores
    rank = (logits > logits[np.arange(len(labels)), labels][:, None]).sum(axis=1)  # 0 = top-1
    for k in (1, 2, 5, 10):
        expected = float(np.mean(rank < k))
        assert top_k_accuracy(paddle.to_tensor(logits), paddle.to_tensor(labels[:, None]), k) == expected
        assert top_k_accuracy(logits, labels, k) == expected
    assert top_k_accuracy(logits, labels, 1) == accuracy(logits, labels)
    assert top_k_accuracy(logits, labels, 10) == 1.0
    assert top_k_accuracy(logits, labels, 1) <= top_k_accuracy(logits, labels, 3) <= top_k_accuracy(logits, labels, 5)
    with pytest.raises(ValueError, match="k must be"):
        top_k_accuracy(logits, labels, 11)


def test_running_mean_is_sample_weighted():
    m = RunningMean()
    assert math.isnan(m.mean) and m.count == 0
    values, sizes = [0.5, 1.0, 0.25], [300, 300, 100]
    for v, n in zip(values, sizes):
        m.update(paddle.to_tensor(v), n)  # 0-D tensors accepted, as a loss is
    assert m.count == 700
    assert m.mean == pytest.approx(np.average(values, weights=sizes))
    assert m.mean != pytest.approx(np.mean(values))
    m.reset()
    assert m.count == 0
    with pytest.raises(ValueError):
        m.update(1.0, -1)


def test_confusion_matrix_sums_and_diagonal(scores):
    logits, labels = scores
    for pred in (logits, paddle.to_tensor(logits), logits.argmax(axis=1), logits.argmax(axis=1)[:, None]):
        cm = confusion_matrix(pred, paddle.to_tensor(labels[:, None]), num_classes=10)
        assert cm.shape == (10, 10) and np.issubdtype(cm.dtype, np.integer)
        assert cm.sum() == len(labels)
        assert np.array_equal(cm.sum(axis=1), np.bincount(labels, minlength=10))      # rows: true
        assert np.array_equal(cm.sum(axis=0), np.bincount(logits.argmax(1), minlength=10))  # cols: predicted
        assert np.trace(cm) / cm.sum() == accuracy(logits, labels)
    cm = np.zeros((10, 10), np.int64)
    cm[4, 9], cm[7, 2], cm[3, 3] = 5, 2, 50
    assert most_confused_pair(cm) == (4, 9, 5)
    with pytest.raises(ValueError, match="labels must lie"):
        confusion_matrix(np.zeros(3, np.int64), np.array([0, 1, 10]))


def test_plot_confusion_matrix_saves(out_dir, scores):
    cm = confusion_matrix(*scores)
    assert plot_confusion_matrix(cm, path=out_dir / "cm.png").exists()


def _short_last_batch_setup():
    """An untrained-but-seeded model and 1000 test images in batches of 300: 300, 300, 300, 100."""
    course.set_seed(0)
    model = MNIST()
    loader = course.make_loader("test", batch_size=300, subset=1000)
    assert [int(X.shape[0]) for X, _ in loader] == [300, 300, 300, 100]
    # A few SGD steps on the first test batches so accuracy is neither ~0.1 nor uniform across batches.
    opt = paddle.optimizer.Adam(learning_rate=0.01, parameters=model.parameters())
    for X, y in course.make_loader("train", batch_size=100, subset=500, train=False):
        loss = paddle.nn.functional.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        opt.clear_grad()
    return model, loader


def test_mean_of_batch_accuracies_differs_from_exact_when_last_batch_is_short():
    model, loader = _short_last_batch_setup()
    logits, labels = predict_all(model, loader)
    assert logits.shape == (1000, 10) and labels.shape == (1000,)
    # Independent NumPy ground truth: correct / seen, and the per-batch accuracies.
    right = logits.argmax(axis=1) == labels
    exact = right.sum() / right.size
    per_batch = [right[i:i + 300].mean() for i in range(0, 1000, 300)]
    sizes = [300, 300, 300, 100]

    assert course.evaluate(model, loader)["acc"] == exact
    assert accuracy(logits, labels) == exact
    mob = mean_of_batch_accuracies(model, loader)
    assert mob == pytest.approx(np.mean(per_batch), abs=1e-6)   # what the course reports
    assert np.average(per_batch, weights=sizes) == pytest.approx(exact)  # weighting fixes it
    # The unweighted mean over-weights the last 100 images 3x: a real, visible difference.
    assert per_batch[-1] != pytest.approx(exact, abs=1e-3)
    assert abs(mob - exact) > 1e-4
    running = RunningMean()
    for acc, n in zip(per_batch, sizes):
        running.update(acc, n)
    assert running.mean == pytest.approx(exact) and running.count == 1000


def test_paddle_metric_accuracy_streaming_equals_exact():
    model, loader = _short_last_batch_setup()
    logits, labels = predict_all(model, loader)
    assert paddle_accuracy_stream(model, loader) == pytest.approx(accuracy(logits, labels), abs=1e-12)
    assert paddle_accuracy_stream(model, loader, k=3) == pytest.approx(top_k_accuracy(logits, labels, 3), abs=1e-12)


def test_helpers_restore_training_mode():
    model, loader = _short_last_batch_setup()
    model.train()
    for fn in (predict_all, paddle_accuracy_stream, mean_of_batch_accuracies):
        fn(model, loader)
        assert model.training
