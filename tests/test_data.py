"""The lesson's data contract and the loader's options, on real files."""
import gzip
import shutil

import numpy as np
import paddle
import pytest

from course import DataError, load_mnist, make_loader, read_idx
from course.data import EMBEDDED_DIR
from data_process import get_MNIST_dataloader


@pytest.fixture(scope="module")
def loaders():
    return get_MNIST_dataloader()


@pytest.mark.filterwarnings("ignore:To copy construct from a tensor")  # the lesson re-wraps tensors
def test_lesson_contract_batches_shapes_dtypes(loaders):
    train_loader, test_loader = loaders
    assert len(train_loader) == 937 and len(test_loader) == 157
    batches = list(enumerate(train_loader()))  # callable, as in the lesson
    assert len(batches) == 937
    images, labels = batches[0][1]
    assert isinstance(images, paddle.Tensor) and isinstance(labels, paddle.Tensor)
    assert images.shape == [64, 1, 28, 28] and images.dtype == paddle.float32
    assert labels.shape == [64, 1] and labels.dtype == paddle.int64
    assert all(x.shape[0] == 64 for _, (x, _) in batches)  # last partial batch dropped
    test_batches = list(test_loader)  # iterable too
    assert len(test_batches) == 157 and test_batches[-1][0].shape == [16, 1, 28, 28]
    # The lesson wraps batches again; that must keep working.
    again = paddle.to_tensor(images)
    assert again.shape == [64, 1, 28, 28]
    assert paddle.to_tensor(labels).astype("int64").shape == [64, 1]


def test_scaling_is_exactly_the_course_formula(loaders):
    _, test_loader = loaders
    x, y = next(iter(test_loader))
    raw, raw_labels = load_mnist("test")
    expected = ((raw[:64].astype(np.float32) - 127.5) / 127.5)[:, None]
    np.testing.assert_array_equal(x.numpy(), expected)
    np.testing.assert_array_equal(y.numpy()[:, 0], raw_labels[:64])
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0


def test_test_loader_keeps_order_and_covers_every_image_once(loaders):
    _, test_loader = loaders
    labels = np.concatenate([y.numpy()[:, 0] for _, y in test_loader()])
    np.testing.assert_array_equal(labels, load_mnist("test")[1])


def test_shuffle_is_a_permutation_fixed_by_seed_and_epoch():
    def epoch_labels(loader):
        return np.concatenate([y.numpy()[:, 0] for _, y in loader])

    a = make_loader("train", 500, seed=3, subset=2000)
    b = make_loader("train", 500, seed=3, subset=2000)
    first_a, second_a = epoch_labels(a), epoch_labels(a)
    assert len(first_a) == 2000
    np.testing.assert_array_equal(np.sort(first_a), np.sort(load_mnist("train")[1][:2000]))
    assert not np.array_equal(first_a, second_a)             # a new order every epoch
    np.testing.assert_array_equal(first_a, epoch_labels(b))  # same seed, same order
    b.set_epoch(1)
    np.testing.assert_array_equal(second_a, epoch_labels(b))  # resumable: order depends on (seed, epoch)
    c = make_loader("train", 500, seed=4, subset=2000)
    assert not np.array_equal(first_a, epoch_labels(c))


def test_images_and_labels_stay_paired_after_shuffling():
    loader = make_loader("train", 100, seed=0, subset=1000)
    raw, raw_labels = load_mnist("train")
    x, y = next(iter(loader))
    flat = ((raw[:1000].astype(np.float32) - 127.5) / 127.5).reshape(1000, -1)
    for image, label in zip(x.numpy()[:20], y.numpy()[:20, 0]):
        row = np.flatnonzero((flat == image.reshape(-1)).all(axis=1))
        assert raw_labels[row[0]] == label


def test_options_batch_size_subset_split():
    loader = make_loader("val", 1000)
    assert loader.num_samples == 10000 and len(loader) == 10 and not loader.shuffle
    small_train, small_test = get_MNIST_dataloader(batch_size=32, subset=320, seed=0)
    assert len(small_train) == 10 and len(small_test) == 10
    raw_loader = make_loader("test", 10, normalize=False, subset=10)
    x, _ = next(iter(raw_loader))
    np.testing.assert_array_equal(x.numpy()[:, 0], load_mnist("test")[0][:10].astype(np.float32))
    with pytest.raises(TypeError, match="normalized"):  # the old name is gone: one name, Config.normalize's
        make_loader("test", 10, normalized=False, subset=10)


def test_smoke_mode_shrinks_the_lesson_loaders(monkeypatch):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    train_loader, test_loader = get_MNIST_dataloader()
    assert train_loader.num_samples == 2000 and test_loader.num_samples == 1000


def _copy_test_split(dst, compress):
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                 "train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        src = EMBEDDED_DIR / f"{stem}.gz"
        if compress:
            shutil.copy(src, dst / src.name)
        else:
            (dst / stem).write_bytes(gzip.decompress(src.read_bytes()))


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_user_data_dir_by_argument_and_environment(tmp_path, monkeypatch, compress):
    _copy_test_split(tmp_path, compress)
    x, y = load_mnist("test", data_dir=tmp_path)
    np.testing.assert_array_equal(y, load_mnist("test")[1])
    monkeypatch.setenv("COURSE_MNIST_DIR", str(tmp_path))
    _, test_loader = get_MNIST_dataloader()
    assert test_loader.num_samples == 10000


def test_clear_errors_for_bad_data(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist("test", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        load_mnist("test", data_dir=tmp_path)  # empty directory: names the missing file
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes((EMBEDDED_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()[:100])
    with pytest.raises(DataError, match="truncated.gz"):
        read_idx(truncated)
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(DataError, match="magic"):
        read_idx(bad_magic)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02")
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(short)
    with pytest.raises(DataError, match="unknown split"):
        load_mnist("validation")


def test_image_and_label_counts_must_agree(tmp_path):
    _copy_test_split(tmp_path, compress=False)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    raw = labels.read_bytes()
    labels.write_bytes(raw[:4] + (9999).to_bytes(4, "big") + raw[8:-1])
    with pytest.raises(DataError, match="do not belong together"):
        load_mnist("test", data_dir=tmp_path)


def test_damaged_embedded_file_fails_its_checksum(tmp_path, monkeypatch):
    import course.data as data

    fake = tmp_path / "mnist_data"
    fake.mkdir()
    for item in EMBEDDED_DIR.iterdir():
        shutil.copy(item, fake / item.name)
    blob = bytearray((fake / "t10k-labels-idx1-ubyte.gz").read_bytes())
    blob[-12] ^= 0xFF  # one flipped byte inside the compressed stream
    (fake / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(blob))
    monkeypatch.setattr(data, "EMBEDDED_DIR", fake)
    data.verify_embedded.cache_clear()
    try:
        with pytest.raises(DataError, match="fails its SHA-256 check.*Reinstall"):
            load_mnist("test")
        load_mnist("train")  # the undamaged files still verify and load
    finally:
        data.verify_embedded.cache_clear()
