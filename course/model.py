"""The tutorial CNN: two 5x5 convolutions with max-pooling and one fully connected layer.

The lesson-facing ``MNIST_network.MNIST`` is this class. Shapes for a batch of N::

    inputs    [N, 1, 28, 28]
    conv1     [N, 20, 28, 28]   5x5, padding 2, stride 1, then ReLU
    max_pool1 [N, 20, 14, 14]   2x2, stride 2
    conv2     [N, 20, 14, 14]   5x5, padding 2, stride 1, then ReLU
    max_pool2 [N, 20, 7, 7]
    flatten   [N, 980]
    fc        [N, 10]           logits (no softmax: cross_entropy applies it)

``MNIST(batch_norm=True)`` is the ablation variant the course's companion
material discusses: a ``BatchNorm2D`` after each convolution, before its ReLU
(``bn1``, ``bn2``; the plain network's parameter names are unchanged).
``weight_attrs={"fc": paddle.ParamAttr(regularizer=L2Decay(1e-3))}`` gives one
layer its own ``ParamAttr`` (initializer, regularizer, learning-rate factor).

On a CPU the two conv blocks may be computed another way that gives the same logits, faster (the
``pool_bias`` / ``bias_rows`` levers of course/cpu.py): that code is in course/fast_conv.py, not here.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle.nn import BatchNorm2D, Conv2D, Linear, MaxPool2D

from . import fast_conv
from .hooks import layer_settings

INPUT_SHAPE = (1, 28, 28)


@paddle.jit.not_to_static  # plain Python while tracing too: it reads shapes, it computes nothing
def check_input(x) -> None:
    """Raise a clear error unless ``x`` is a float32 Tensor ``[N, 1, 28, 28]``.

    While Paddle traces the model into a static graph (``paddle.jit.to_static`` / ``jit.save``)
    ``x`` is a graph value (``Variable`` on Paddle 2.6, ``Value`` on 3.x) whose batch dimension
    may be unknown (-1): only its per-image shape is checked then; the ``InputSpec`` fixes the dtype.
    """
    if not paddle.in_dynamic_mode():
        if len(x.shape) != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
            raise ValueError(f"MNIST expects images of shape [N, 1, 28, 28], got {list(x.shape)}; "
                             "use InputSpec([None, 1, 28, 28], 'float32').")
        return
    if not isinstance(x, paddle.Tensor):
        raise TypeError(f"MNIST expects a paddle.Tensor of shape [N, 1, 28, 28] float32, got "
                        f"{type(x).__name__}; wrap it with paddle.to_tensor(x, dtype='float32').")
    if len(x.shape) != 4 or tuple(x.shape[1:]) != INPUT_SHAPE or x.dtype != paddle.float32:
        raise ValueError(f"MNIST expects images of shape [N, 1, 28, 28] and dtype float32, got "
                         f"{list(x.shape)} {str(x.dtype).replace('paddle.', '')}; reshape with "
                         "x.reshape([-1, 1, 28, 28]) and convert with x.astype('float32').")


class MNIST(paddle.nn.Layer):
    """The course's CNN. ``model(x)`` -> logits ``[N, 10]``; ``model(x, label)`` -> ``(logits, acc)``.

    ``check_shape=True`` prints each layer's settings and each output's shape;
    ``check_content=True`` prints the first kernel of each convolution, one
    random channel of each convolution's output and the logits of the first image.
    """

    WEIGHT_LAYERS = ("conv1", "conv2", "fc")

    def __init__(self, batch_norm: bool = False, weight_attrs: dict | None = None):
        super().__init__()
        attrs = dict(weight_attrs or {})
        unknown = sorted(set(attrs) - set(self.WEIGHT_LAYERS))
        if unknown:
            raise ValueError(f"weight_attrs names unknown layer(s) {unknown}; "
                             f"the layers with weights are {list(self.WEIGHT_LAYERS)}.")
        self.batch_norm = batch_norm
        self.conv1 = Conv2D(in_channels=1, out_channels=20, kernel_size=5, stride=1, padding=2,
                            weight_attr=attrs.get("conv1"))
        self.max_pool1 = MaxPool2D(kernel_size=2, stride=2)
        self.conv2 = Conv2D(in_channels=20, out_channels=20, kernel_size=5, stride=1, padding=2,
                            weight_attr=attrs.get("conv2"))
        self.max_pool2 = MaxPool2D(kernel_size=2, stride=2)
        self.fc = Linear(in_features=980, out_features=10, weight_attr=attrs.get("fc"))
        if batch_norm:
            self.bn1, self.bn2 = BatchNorm2D(20), BatchNorm2D(20)
        self._content_rng = np.random.default_rng(0)  # check_content's channel choice; global np.random untouched

    def forward(self, inputs, label=None, check_shape=False, check_content=False):
        check_input(inputs)
        levers = () if (check_shape or check_content) else self._lever_path()
        if levers:  # the same two conv blocks, computed faster on a CPU: course/fast_conv.py
            pool2_out = fast_conv.conv_blocks(self, inputs, levers)  # [N, 20, 7, 7]
        else:
            conv1_out = self.conv1(inputs)                  # [N, 20, 28, 28]
            if self.batch_norm:
                conv1_out = self.bn1(conv1_out)
            pool1_out = self.max_pool1(F.relu(conv1_out))   # [N, 20, 14, 14]
            conv2_out = self.conv2(pool1_out)               # [N, 20, 14, 14]
            if self.batch_norm:
                conv2_out = self.bn2(conv2_out)
            pool2_out = self.max_pool2(F.relu(conv2_out))   # [N, 20, 7, 7]
        flat = paddle.reshape(pool2_out, [pool2_out.shape[0], -1])  # [N, 980]
        logits = self.fc(flat)                              # [N, 10]

        if check_shape:
            self._print_shapes([("inputs", inputs), ("conv1", conv1_out), ("max_pool1", pool1_out),
                                ("conv2", conv2_out), ("max_pool2", pool2_out),
                                ("flatten", flat), ("fc", logits)])
        if check_content:
            self._print_content(conv1_out, conv2_out, logits)
        if label is not None:
            acc = paddle.metric.accuracy(input=F.softmax(logits), label=label)
            return logits, acc
        return logits

    @paddle.jit.not_to_static
    def _lever_path(self) -> tuple:
        """The CPU levers this forward takes (course/fast_conv.py); ``()`` = the layers above, as written."""
        return fast_conv.levers_for(self)

    def _print_shapes(self, outputs) -> None:
        print("\n########## layer settings ##########")
        for name in ("conv1", "conv2"):  # kernel_shape, padding, stride: what hooks.layer_report shows too
            print(f"{name} -- " + ", ".join(f"{k}: {v}" for k, v in layer_settings(getattr(self, name)).items()))
        print(f"fc -- weight_shape: {list(self.fc.weight.shape)}, bias_shape: {list(self.fc.bias.shape)}")
        print("\n########## output shape of every layer ##########")
        for name, tensor in outputs:
            print(f"{name + '_shape:':<18} {list(tensor.shape)}")

    def _print_content(self, conv1_out, conv2_out, logits) -> None:
        with np.printoptions(precision=4, suppress=True, linewidth=120):
            print("\n########## first kernel of each convolution ##########")
            print("conv1 kernel [0][0]:\n", self.conv1.weight[0][0].numpy())
            print("conv2 kernel [0][0]:\n", self.conv2.weight[0][0].numpy())
            print("\n########## one random channel of each convolution's output, first image ##########")
            for name, out in (("conv1", conv1_out), ("conv2", conv2_out)):
                channel = int(self._content_rng.integers(0, out.shape[1]))
                print(f"{name} output channel {channel}:\n", out[0][channel].numpy())
            print("\n########## logits of the first image ##########")
            print(logits[0].numpy(), "\n")
