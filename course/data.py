"""MNIST from the embedded IDX files (or a user directory), splits and loaders.

The lesson-facing ``data_process.get_MNIST_dataloader`` delegates here (and reads
``COURSE_SMOKE``: this module reads no environment but ``COURSE_MNIST_DIR``).

The hot path does no per-sample Python work: a split is read once (cached per
process), normalized once into one float32 array, moved to the device once,
and every batch is a slice (in order) or a gather (shuffled) of that array.

Splits
------
``"train"``     the 60,000 training images
``"train50k"``  the course's training part: the first 50,000 of ``"train"``
``"val"``       the course's validation part: the last 10,000 of ``"train"``
``"test"``      the 10,000 test images
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .compat import gunzip
from .config import SMOKE_EVAL_SUBSET, SMOKE_TRAIN_SUBSET
from .errors import DataError

EMBEDDED_DIR = Path(__file__).resolve().parent / "mnist_data"
DATA_DIR_ENV = "COURSE_MNIST_DIR"
# The canonical file stems; each may be given gzip-compressed (".gz") or raw.
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLITS = ("train", "train50k", "val", "test")
NUM_VAL = 10_000
IDX_UINT8 = 0x08


# --------------------------------------------------------------------------- files
def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The directory to read: the argument, else ``$COURSE_MNIST_DIR``, else the embedded copy."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV) or EMBEDDED_DIR
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataError(
            f"MNIST data directory {str(path)!r} does not exist or is not a directory. "
            f"Pass an existing directory (data_dir=... or ${DATA_DIR_ENV}), or leave both unset "
            "to use the copy embedded in the package."
        )
    return path


def find_idx_file(data_dir: Path, stem: str) -> Path:
    """``stem.gz`` or the raw ``stem`` inside ``data_dir``."""
    for name in (stem + ".gz", stem):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DataError(
        f"{data_dir} has no file {stem}.gz (or uncompressed {stem}). "
        "A data directory needs all four canonical MNIST files: "
        + ", ".join(s + "[.gz]" for pair in STEMS.values() for s in pair)
        + "; unset data_dir / $" + DATA_DIR_ENV + " to use the embedded copy."
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip-compressed or raw) of unsigned bytes into a uint8 array.

    Format: two zero bytes, a type byte (0x08 = uint8), the number of dimensions,
    then each dimension as a big-endian uint32, then the data.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic
            raw = gunzip(raw)  # in a child process when Paddle 2.6 came first (course.compat.gunzip)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found. Check the path or the data directory.") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"{path}: not a readable gzip file ({e}); it is truncated or corrupt. "
            "Replace it with a fresh copy of the file."
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'}). "
                        "Expected an MNIST file such as train-images-idx3-ubyte[.gz].")
    if raw[2] != IDX_UINT8:
        raise DataError(f"{path}: IDX data type 0x{raw[2]:02x} is not unsigned byte (0x08); "
                        "MNIST image and label files store uint8.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: IDX header is truncated ({len(raw)} bytes). Replace the file.")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise DataError(
            f"{path}: header promises shape {list(shape)} ({expected} bytes) but the file has "
            f"{len(raw)} bytes; it is truncated or corrupt. Replace the file."
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    return array


@functools.lru_cache(maxsize=None)
def verify_embedded(name: str) -> None:
    """Check one embedded file against ``SHA256SUMS`` (once per process: ~10 ms for all four)."""
    listed = dict(line.split()[::-1] for line in (EMBEDDED_DIR / "SHA256SUMS").read_text().splitlines())
    digest = hashlib.sha256((EMBEDDED_DIR / name).read_bytes()).hexdigest()
    if listed.get(name) != digest:
        raise DataError(
            f"embedded file {EMBEDDED_DIR / name} fails its SHA-256 check (got {digest[:12]}..., "
            f"expected {str(listed.get(name))[:12]}...): the installed copy is damaged. Reinstall the "
            "package, or rebuild the files with scripts/rebuild_mnist.py.")


@functools.lru_cache(maxsize=8)
def _read_pair(data_dir: Path, which: str, mtimes: tuple) -> tuple[np.ndarray, np.ndarray]:
    # `mtimes` is part of the cache key so that replaced files are read again.
    image_stem, label_stem = STEMS[which]
    images_path, labels_path = find_idx_file(data_dir, image_stem), find_idx_file(data_dir, label_stem)
    if data_dir == EMBEDDED_DIR:
        verify_embedded(images_path.name)
        verify_embedded(labels_path.name)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images have shape {list(images.shape)}, expected [N, 28, 28].")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path} holds {labels.shape[0] if labels.ndim else 0} labels but {images_path} "
            f"holds {len(images)} images; the two files do not belong together. Use the image and "
            "label files of the same MNIST set (one of them is truncated or from another data set)."
        )
    if labels.max(initial=0) > 9:
        raise DataError(f"{labels_path}: labels must be digits 0..9, found {int(labels.max())}.")
    return images, labels


def load_mnist(split: str = "train", data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """Raw arrays of one split: images uint8 ``[N, 28, 28]``, labels uint8 ``[N]`` (read-only)."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    directory = resolve_data_dir(data_dir)
    which = "test" if split == "test" else "train"
    mtimes = tuple(
        (directory / n).stat().st_mtime_ns if (directory / n).exists() else 0
        for stem in STEMS[which] for n in (stem, stem + ".gz")
    )
    images, labels = _read_pair(directory, which, mtimes)
    if split == "train50k":
        return images[:-NUM_VAL], labels[:-NUM_VAL]
    if split == "val":
        return images[-NUM_VAL:], labels[-NUM_VAL:]
    return images, labels


def scale_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 ``[N, 28, 28]`` -> float32 ``[N, 1, 28, 28]`` in [-1, 1], as the course does."""
    return ((images.astype(np.float32) - 127.5) / 127.5)[:, None]


# --------------------------------------------------------------------------- loader
class MNISTLoader:
    """Batches of one split, sliced from a single device-resident array.

    Iterable (``for x, y in loader``) and callable (``for x, y in loader()``),
    as the course's ``train_loader()`` is. Yields ``(images, labels)``:
    float32 ``[B, 1, 28, 28]`` and int64 ``[B, 1]`` paddle Tensors.

    Shuffling is a fresh permutation per epoch drawn from ``(seed, epoch)``, so
    epoch ``e`` sees the same order whether or not training was interrupted
    before it. ``epoch`` changes through ``set_epoch`` (what ``fit`` calls before
    each epoch) and when a pass over every batch finishes, so the lesson's own
    loop gets a new order each epoch; a pass left early (a peek,
    ``next(iter(loader))``, or a ``break``) leaves it, and the next order, as it was.
    """

    def __init__(self, images, labels, batch_size=64, shuffle=False, drop_last=False, seed=0,
                 normalize=True, place=None):
        import paddle

        if batch_size < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}.")
        self.batch_size, self.shuffle, self.drop_last, self.seed = batch_size, shuffle, drop_last, seed
        self.epoch = 0
        X = scale_pixels(images) if normalize else images.astype(np.float32)[:, None]
        # One host-to-device copy for the whole split; every batch is cut from these.
        self.X = paddle.to_tensor(X, place=place)  # [N, 1, 28, 28] float32
        self.y = paddle.to_tensor(labels.astype(np.int64)[:, None], place=place)  # [N, 1] int64

    @property
    def num_samples(self) -> int:
        return int(self.X.shape[0])

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        import paddle

        b = self.batch_size
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)
            order = paddle.to_tensor(order, place=self.X.place)  # one copy per epoch
        for i in range(len(self)):
            if self.shuffle:
                index = order[i * b:(i + 1) * b]
                yield paddle.gather(self.X, index), paddle.gather(self.y, index)
            else:
                yield self.X[i * b:(i + 1) * b], self.y[i * b:(i + 1) * b]
        self.epoch += 1  # only a finished pass is an epoch

    def __call__(self):
        return iter(self)

    def __repr__(self) -> str:
        return (f"MNISTLoader(samples={self.num_samples}, batch_size={self.batch_size}, "
                f"batches={len(self)}, shuffle={self.shuffle}, drop_last={self.drop_last})")


def make_loader(split: str, batch_size: int = 64, *, train: bool | None = None, seed: int = 0,
                subset: int = 0, data_dir=None, normalize: bool = True, place=None) -> MNISTLoader:
    """A loader over one split.

    ``train`` (default: true for the training splits) shuffles and drops the last
    partial batch, as the course's train loader does; otherwise order is kept and
    the last short batch is yielded. ``subset=N`` keeps the first N images (0 = all).
    ``normalize`` (``Config.normalize``, ``--no-normalize``): pixels scaled to [-1, 1] as the course
    does, or raw 0-255 floats.
    """
    images, labels = load_mnist(split, data_dir)
    if subset < 0:
        raise DataError(f"subset must be 0 (all) or a positive count, got {subset}.")
    if subset:
        images, labels = images[:subset], labels[:subset]
    if train is None:
        train = split in ("train", "train50k")
    return MNISTLoader(images, labels, batch_size, shuffle=train, drop_last=train, seed=seed,
                       normalize=normalize, place=place)


def get_MNIST_dataloader(batch_size: int = 64, seed: int | None = None, subset: int | None = None,
                         data_dir=None, train_split: str = "train", place=None, smoke: bool = False):
    """``train_loader, test_loader`` exactly as the course's ``data_process`` returns them.

    Defaults follow the lesson: batch 64, train = 60k shuffled with the last
    partial batch dropped (937 batches), test = 10k in order (157 batches, the
    last one 16 images). With ``smoke=True`` and no explicit ``subset`` the
    loaders keep the first 2,000 train / 1,000 test images (``data_process``'s
    version passes ``smoke=is_smoke()``, i.e. ``COURSE_SMOKE=1``).
    ``seed=None`` draws a random shuffling seed (stored as ``train_loader.seed``).
    """
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**32))
    train_subset = test_subset = subset or 0
    if subset is None and smoke:
        train_subset, test_subset = SMOKE_TRAIN_SUBSET, SMOKE_EVAL_SUBSET
    train_loader = make_loader(train_split, batch_size, train=True, seed=seed, subset=train_subset,
                               data_dir=data_dir, place=place)
    test_loader = make_loader("test", batch_size, train=False, subset=test_subset,
                              data_dir=data_dir, place=place)
    return train_loader, test_loader
