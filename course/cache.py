"""Trained runs kept on disk and reused: train a configuration once, read it back every later time.

``cached_train_run(config)`` returns what ``train_run(config)`` returns (``metrics.json``'s content, with
``run_dir`` holding ``mnist.pdparams``, ``checkpoint.pdckpt`` and the plots), plus ``"cached": True`` when
the run was read back instead of trained. The key is a SHA-256 of everything that decides the result:

- the whole resolved ``Config`` except the fields that only choose where and how loudly to write
  (``out_dir``, ``run_name``, ``progress``, ``visualdl``);
- the data: the embedded files' ``SHA256SUMS``, or the SHA-256 of each IDX file of another data directory;
- the versions of this package and of Paddle.

So a different seed, subset, learning rate or data set trains anew; an identical request is served from
the cache. ``retrain=True`` (or the environment variable ``COURSE_RETRAIN=1``) trains again and replaces
the entry. The cache lives in ``$COURSE_CACHE_DIR``, else ``~/.cache/paddle-mnist-course``; deleting the
folder is always safe.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from .config import Config

CACHE_ENV = "COURSE_CACHE_DIR"
RETRAIN_ENV = "COURSE_RETRAIN"
NOT_IN_KEY = ("out_dir", "run_name", "progress", "visualdl")
DATA_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")


def cache_dir() -> Path:
    """Where cached runs are kept: ``$COURSE_CACHE_DIR``, else ``~/.cache/paddle-mnist-course``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "paddle-mnist-course")


def data_fingerprint(data_dir: str | os.PathLike | None = None) -> str:
    """A text that changes whenever the MNIST files a run reads change."""
    from .data import EMBEDDED_DIR, find_idx_file, resolve_data_dir

    folder = resolve_data_dir(data_dir or None)
    if folder.resolve() == Path(EMBEDDED_DIR).resolve():
        return (Path(EMBEDDED_DIR) / "SHA256SUMS").read_text(encoding="utf-8")
    lines = []
    for stem in DATA_STEMS:
        path = find_idx_file(folder, stem)
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}")
    return "\n".join(lines)


def cache_key(config: Config) -> str:
    """The SHA-256 (hex) that names ``config``'s entry in the cache."""
    import paddle

    from . import __version__

    settings = {k: v for k, v in config.to_dict().items() if k not in NOT_IN_KEY}
    material = json.dumps({"config": settings, "data": data_fingerprint(config.data_dir), "course": __version__,
                           "paddle": paddle.__version__}, sort_keys=True)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _retrain_from_env() -> bool:
    value = os.environ.get(RETRAIN_ENV, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{RETRAIN_ENV}={value!r} is not understood; set it to 1 to retrain or 0 (or unset) to reuse")


def cached_train_run(config: Config, retrain: bool | None = None, extra_callbacks=()) -> dict:
    """``train_run(config)``, read from the cache when the same run was trained before.

    ``retrain``: ``True`` trains again and replaces the entry; ``None`` (default) follows ``$COURSE_RETRAIN``.
    ``extra_callbacks`` run only when the model is actually trained. Prints one line saying which happened.
    """
    from .run import train_run

    if retrain is None:
        retrain = _retrain_from_env()
    entry = cache_dir() / cache_key(config)
    metrics = entry / "metrics.json"
    if metrics.is_file() and not retrain:
        results = json.loads(metrics.read_text(encoding="utf-8"))
        results.update(run_dir=str(entry), cached=True)
        print(f"reused the model trained earlier with these settings: {entry} "
              f"(set {RETRAIN_ENV}=1 or pass retrain=True to train again)")
        return results
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=entry.name[:12] + ".", dir=entry.parent))
    try:
        results = train_run(config.replace(visualdl=False), extra_callbacks=extra_callbacks, run_dir=staging)
        if results.get("diverged"):  # nothing worth keeping
            return {**results, "cached": False}
        results["run_dir"] = str(entry)
        (staging / "metrics.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(staging, entry)  # all or nothing: a half-written entry is never read
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    print(f"trained and cached: {entry}")
    return {**results, "cached": False}
