"""Parameter initialization: a catalogue of ``paddle.nn.initializer`` schemes, ``ParamAttr``,
re-initializing a model in place, and inspecting its parameters.

Paddle's defaults (3.3.1): ``Linear`` weights Xavier (Glorot) uniform; ``Conv2D`` weights
Normal(0, sqrt(2 / fan_in)) with fan_in = in_channels x kernel area (He-style, suited to
ReLU); biases zero. Two ways to choose another start:

- when building a layer: ``Linear(980, 10, weight_attr=param_attr("constant", value=3.0))``;
- on a built model: ``apply_init(model, "kaiming_normal")`` (weights of every conv and
  linear layer; biases set to ``bias_value``).

To compare optimizers or learning rates fairly, every run starts from the same weights:
``fresh_model = SameStart(MNIST)`` keeps one set of initial weights and each ``fresh_model()``
is a new network holding a copy of them.
"""
from __future__ import annotations

import paddle
from paddle.nn import initializer as I

from .config import INITS
from .errors import ConfigError

# name -> (initializer class, default keyword arguments)
INITIALIZERS = {
    "constant": (I.Constant, {"value": 0.0}),
    "normal": (I.Normal, {"mean": 0.0, "std": 0.01}),
    "uniform": (I.Uniform, {"low": -0.05, "high": 0.05}),
    "truncated_normal": (I.TruncatedNormal, {"mean": 0.0, "std": 0.01}),
    "xavier_normal": (I.XavierNormal, {}),
    "xavier_uniform": (I.XavierUniform, {}),   # Paddle's default for Linear weights
    "kaiming_normal": (I.KaimingNormal, {}),   # He et al.: suited to ReLU
    "kaiming_uniform": (I.KaimingUniform, {}),
}
INIT_SCHEMES = ("default", *INITIALIZERS)  # "default": leave Paddle's initialization alone
assert set(INIT_SCHEMES) == set(INITS), "course.config.INITS must name the same schemes"


def make_initializer(name: str, **options) -> I.Initializer:
    """An initializer by name, e.g. ``make_initializer("normal", std=0.1)``."""
    if name not in INITIALIZERS:
        raise ConfigError(f"unknown initializer {name!r}; choose one of: {', '.join(INITIALIZERS)}.")
    cls, defaults = INITIALIZERS[name]
    try:
        return cls(**{**defaults, **options})
    except TypeError as e:
        raise ConfigError(f"initializer {name!r} does not take {sorted(options)} ({e}).") from None


def param_attr(name: str, learning_rate: float = 1.0, regularizer=None, trainable: bool = True,
               **options) -> paddle.ParamAttr:
    """A ``paddle.ParamAttr`` with a named initializer (plus the per-parameter learning-rate
    factor, regularizer and trainable flag ``ParamAttr`` also carries)."""
    return paddle.ParamAttr(initializer=make_initializer(name, **options), learning_rate=learning_rate,
                            regularizer=regularizer, trainable=trainable)


def weight_layers(model: paddle.nn.Layer):
    """``(name, layer)`` for every convolution and fully connected layer."""
    kinds = (paddle.nn.Conv2D, paddle.nn.Linear)
    return [(name, layer) for name, layer in model.named_sublayers() if isinstance(layer, kinds)]


def apply_init(model: paddle.nn.Layer, scheme: str, bias_value: float = 0.0, **options) -> paddle.nn.Layer:
    """Re-initialize, in place, the weights of every conv / linear layer with ``scheme`` and set
    their biases to ``bias_value``. ``"default"`` does nothing. Seed first (``set_seed``) to
    make random schemes repeatable. Returns the model."""
    if scheme == "default":
        return model
    init = make_initializer(scheme, **options)
    with paddle.no_grad():
        for _, layer in weight_layers(model):
            init(layer.weight)
            if layer.bias is not None:
                I.Constant(bias_value)(layer.bias)
    return model


def parameter_table(model: paddle.nn.Layer) -> str:
    """One line per parameter: name, shape, count, mean, std, min, max (what ``state_dict`` holds)."""
    lines = [f"{'name':<14} {'shape':<16} {'count':>7} {'mean':>9} {'std':>9} {'min':>9} {'max':>9}"]
    total = 0
    for name, p in model.named_parameters():
        values = p.numpy()
        total += values.size
        lines.append(f"{name:<14} {str(list(p.shape)):<16} {values.size:>7} {values.mean():>9.4f} "
                     f"{values.std():>9.4f} {values.min():>9.4f} {values.max():>9.4f}")
    lines.append(f"{'total':<14} {'':<16} {total:>7}")
    return "\n".join(lines)


class SameStart:
    """Hands out new models that all start from the same initial weights.

    ``SameStart(MNIST)`` builds one ``MNIST()`` (with Paddle's current random state: call
    ``set_seed`` first for a reproducible start) and keeps a copy of its weights in
    ``initial_state``; every call returns a new ``MNIST()`` loaded with that copy, so training
    one model never changes where the next one starts. ``make_model``: any zero-argument
    callable returning a ``paddle.nn.Layer``.
    """

    def __init__(self, make_model):
        self.make_model = make_model
        self.initial_state = {name: value.clone() for name, value in make_model().state_dict().items()}

    def __call__(self) -> paddle.nn.Layer:
        model = self.make_model()
        model.set_state_dict(self.initial_state)
        return model
