"""The faster conv path behind the ``pool_bias`` and ``bias_rows`` CPU levers, kept out of the lesson's model.

``course.model.MNIST`` computes ``maxpool(relu(conv(x, w) + b))`` twice with its own layers, as the
course writes it. When a conv lever is on (``COURSE_CPU_LEVERS``, course/cpu.py: what each lever is,
how it is switched; docs/cpu-speed.md: what each measured) the same two blocks are computed here instead, from the same
layers' weights and biases, so the parameters and the ``state_dict`` do not change. Why the result is
the same:

``pool_bias``: max-pooling commutes with adding a per-channel constant (``max(a_i + b) = max(a_i) + b``,
and rounding ``a + b`` to float32 is monotone in ``a``, so this holds bit for bit) and with ReLU
(monotone), so::

    maxpool(relu(conv(x, w) + b)) == relu(maxpool(conv(x, w)) + b)

and the add and the ReLU run on the pooled tensor, 4x smaller.

``bias_rows``: the bias is added as ``[N, C, H*W] + [C, 1]`` instead of ``[N, C, H, W] + [1, C, 1, 1]``:
the same sums, the same rounding (the forward is bit for bit); the bias gradient sums the same terms in
another order.

:func:`levers_for` says when the path may be taken: never when someone looks at the course's tensors
(the conv output with its bias, before pooling): forward hooks on the sub-layers (course.hooks), a
sub-layer that is not the plain ``Conv2D`` / ``MaxPool2D``, or ``batch_norm=True`` (BatchNorm between
conv and ReLU does not commute with pooling). ``check_shape`` / ``check_content`` are the model's
own business: ``MNIST.forward`` does not ask then.
"""
from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle.nn import Conv2D, MaxPool2D

from . import cpu

PATH_LAYERS = ("conv1", "max_pool1", "conv2", "max_pool2")  # the sub-layers the path computes


@paddle.jit.not_to_static  # plain Python while tracing too: it reads settings, it computes nothing
def levers_for(model) -> tuple:
    """The conv levers ``model``'s forward may take now, in ``cpu.CONV_LEVERS`` order: ``()`` = its own layers."""
    chosen = tuple(name for name in cpu.CONV_LEVERS if cpu.lever_on(name))
    if getattr(model, "batch_norm", False) or not chosen:
        return ()
    for name in PATH_LAYERS:
        layer = getattr(model, name)
        if (getattr(layer, "_forward_pre_hooks", None) or getattr(layer, "_forward_post_hooks", None)
                or type(layer) not in (Conv2D, MaxPool2D)):
            return ()
    for conv in (model.conv1, model.conv2):
        if conv.bias is None or conv._padding_mode != "zeros" or conv._data_format != "NCHW":
            return ()
    for pool in (model.max_pool1, model.max_pool2):
        if pool.padding != 0 or pool.ceil_mode or pool.return_mask or pool.data_format != "NCHW":
            return ()
    return chosen


def conv_block(x, conv, pool, levers):
    """``pool(relu(conv(x)))`` computed the way ``levers`` choose, from ``conv``'s own weight and bias."""
    pre_bias = F.conv2d(x, conv.weight, None, stride=conv._stride, padding=conv._padding,
                        dilation=conv._dilation, groups=conv._groups)

    def add_bias(t):
        if "bias_rows" in levers:
            c, h, w = t.shape[1:]  # the batch as -1: traced graphs keep a variable batch size
            return paddle.reshape(paddle.reshape(t, [-1, c, h * w]) + paddle.reshape(conv.bias, [c, 1]),
                                  [-1, c, h, w])
        return t + paddle.reshape(conv.bias, [1, -1, 1, 1])

    def max_pool(t):
        return F.max_pool2d(t, kernel_size=pool.ksize, stride=pool.stride)

    if "pool_bias" in levers:
        return F.relu(add_bias(max_pool(pre_bias)))
    return max_pool(F.relu(add_bias(pre_bias)))


def conv_blocks(model, inputs, levers):
    """``model``'s two conv blocks on ``inputs`` ``[N, 1, 28, 28]`` -> ``[N, 20, 7, 7]`` (= its ``max_pool2`` output)."""
    pool1_out = conv_block(inputs, model.conv1, model.max_pool1, levers)   # [N, 20, 14, 14]
    return conv_block(pool1_out, model.conv2, model.max_pool2, levers)     # [N, 20, 7, 7]
