"""Export a trained model for Paddle Inference, the way Paddle's documentation teaches.

``paddle.jit.save(model, prefix, input_spec=[InputSpec([None, 1, 28, 28], "float32")])`` traces
``MNIST.forward`` into a static graph and writes it with the weights:

- Paddle 2.6: ``prefix.pdmodel`` (the program), ``prefix.pdiparams`` (+ ``prefix.pdiparams.info``);
- Paddle 3.x: ``prefix.json`` (the PIR program) and ``prefix.pdiparams``.

``paddle.jit.load(prefix)`` (or ``load_inference``) gives a layer that predicts what the dygraph
model predicts; Paddle Inference (``paddle.inference.Config(model_file, params_file)``) serves
the same files. The exported graph takes the images exactly as the model was trained on them
(``[-1, 1]`` scaled unless the run used ``--no-normalize``); the batch size is free.

Used by: ``python -m course export --format inference``, tests/test_export.py.
"""
from __future__ import annotations

from pathlib import Path

import paddle
from paddle.static import InputSpec

from .model import INPUT_SHAPE

SUFFIXES = (".pdmodel", ".json", ".pdiparams", ".pdiparams.info")


def input_spec() -> list:
    """A batch of any size of float32 images ``[N, 1, 28, 28]``."""
    return [InputSpec([None, *INPUT_SHAPE], "float32", name="image")]


def export_inference(model: paddle.nn.Layer, prefix) -> list[Path]:
    """Write ``model`` (in eval mode) for Paddle Inference under ``prefix``; returns the files written."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()  # BatchNorm's running statistics, not the batch's, go into the graph
    try:
        paddle.jit.save(model, str(prefix), input_spec=input_spec())
    finally:
        if was_training:
            model.train()
    return [prefix.with_name(prefix.name + s) for s in SUFFIXES if prefix.with_name(prefix.name + s).exists()]


def load_inference(prefix) -> paddle.nn.Layer:
    """The exported model as a callable layer (``paddle.jit.load``): ``load_inference(p)(x)`` -> logits."""
    return paddle.jit.load(str(prefix))
