"""Shape and content checks for any ``paddle.nn.Layer`` through forward hooks (notebook 2.8.2).

The course's ``MNIST(check_shape=True, check_content=True)`` prints from inside ``forward``;
that only works for a model whose author wrote the printing. Forward post-hooks
(``Layer.register_forward_post_hook(hook) -> HookRemoveHelper``, ``hook(layer, inputs, output)``)
see every sub-layer's output of any model without touching its code::

    report = layer_report(model, X)                  # prints a table, returns LayerRecord rows
    dead = find_dead_units(model, X)                 # {'conv1': [...], 'conv2': [...]}
    first_nonfinite_layer(model, X)                  # 'conv2' or None

Only sub-layers are seen: the course's flatten (``paddle.reshape``) and ReLU (``F.relu``) are
function calls inside ``forward``, not sub-layers, so they have no row of their own.
Every hook is removed when the context ends, also when ``forward`` raises.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import paddle
from paddle import nn

from .tensors import inference

__all__ = ["LayerRecord", "ForwardRecorder", "layer_report", "format_report",
           "find_dead_units", "first_nonfinite_layer"]


@dataclass
class LayerRecord:
    """One sub-layer's row of a forward pass, in the order the sub-layers finished.

    ``stats`` holds ``mean, std, zero_frac`` (std with ``ddof=0``, as ``np.std``) when asked for;
    ``sample`` the first values of the first item's output; ``output`` the output itself
    (a NumPy array) only when the recorder keeps outputs.
    """
    name: str
    type: str
    settings: dict
    param_shapes: dict
    output_shape: list | None
    nonfinite: bool = False
    stats: dict | None = None
    sample: np.ndarray | None = None
    output: np.ndarray | None = field(default=None, repr=False)


def layer_settings(layer: nn.Layer) -> dict:
    """What the lesson prints about a layer: kernel / padding / stride, features, pool window."""
    if isinstance(layer, nn.layer.conv._ConvNd):
        return {"kernel_shape": list(layer.weight.shape), "padding": layer._padding,
                "stride": layer._stride}
    if isinstance(layer, nn.Linear):
        # Paddle's Linear weight is [in_features, out_features] (the transpose of torch's).
        return {"in_features": layer.weight.shape[0], "out_features": layer.weight.shape[1]}
    if hasattr(layer, "ksize"):  # MaxPool*D / AvgPool*D store their window as ksize
        return {"kernel_size": layer.ksize, "stride": layer.stride, "padding": layer.padding}
    text = layer.extra_repr()    # anything else: the layer's own one-line description
    return {"repr": text} if text else {}


def _first_tensor(output):
    """A layer may return a tuple (e.g. RNNs); the first Tensor in it stands for the output."""
    if isinstance(output, paddle.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return next((o for o in output if isinstance(o, paddle.Tensor)), None)
    return None


class ForwardRecorder:
    """Context manager that records every sub-layer's output while it is active.

    Parameters
    ----------
    model : paddle.nn.Layer
        The model; its code is not changed, hooks are added to its sub-layers.
    stats : bool
        Also compute ``mean, std, zero_frac`` of each output (one host copy per layer).
    sample : bool
        Also keep the first ``sample_size`` values of the first item's output.
    keep_outputs : bool
        Keep each output as a NumPy array in ``LayerRecord.output`` (memory: one batch per layer).
    leaves_only : bool
        Record only layers without sub-layers (default), so a ``Sequential`` inside a model
        does not repeat its last child's output.

    Attributes
    ----------
    records_ : list of LayerRecord
        One row per sub-layer call, in the order the calls finished (forward order for leaves).
    """

    def __init__(self, model, *, stats=False, sample=False, sample_size=5, keep_outputs=False,
                 leaves_only=True):
        self.model, self.stats, self.sample = model, stats, sample
        self.sample_size, self.keep_outputs, self.leaves_only = sample_size, keep_outputs, leaves_only
        self.records_: list[LayerRecord] = []
        self._handles = []

    def _hook_for(self, name):
        def hook(layer, inputs, output):
            self.records_.append(self._record(name, layer, output))
            return None  # None keeps the layer's output unchanged
        return hook

    def _record(self, name, layer, output) -> LayerRecord:
        tensor = _first_tensor(output)
        rec = LayerRecord(name, type(layer).__name__, layer_settings(layer),
                          {p_name: list(p.shape) for p_name, p in layer.named_parameters()},
                          None if tensor is None else list(tensor.shape))
        if tensor is None:
            return rec
        values = tensor.detach().numpy()
        rec.nonfinite = not bool(np.isfinite(values).all())
        if self.stats:
            v64 = values.astype(np.float64)
            rec.stats = {"mean": float(v64.mean()), "std": float(v64.std()),
                         "zero_frac": float((values == 0).mean())}
        if self.sample:
            rec.sample = values.reshape(values.shape[0], -1)[0, :self.sample_size].copy() \
                if values.ndim > 1 else values[:self.sample_size].copy()
        if self.keep_outputs:
            rec.output = values
        return rec

    def __enter__(self):
        self.records_ = []
        try:
            for name, layer in self.model.named_sublayers():
                if self.leaves_only and layer._sub_layers:
                    continue
                self._handles.append(layer.register_forward_post_hook(self._hook_for(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()
        return False  # never swallow the forward's exception

    def remove(self) -> None:
        """Remove every hook this recorder added (``HookRemoveHelper.remove``); safe to call twice."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _run(model, inputs, kwargs, **recorder_kw) -> list[LayerRecord]:
    # inference: no graph and no gradients left behind, and eval mode, so that a check never moves
    # a BatchNorm's running statistics (the model's mode is restored afterwards).
    with ForwardRecorder(model, **recorder_kw) as rec, inference(model):
        model(*inputs, **kwargs)
    return rec.records_


def format_report(records) -> str:
    """The table of ``layer_report`` as text: one line per sub-layer."""
    def fmt_settings(s):
        return ", ".join(f"{k}={v}" for k, v in s.items())

    def fmt_params(p):
        return ", ".join(f"{k}{v}" for k, v in p.items()) or "-"

    rows = [["layer", "type", "settings", "params", "output"]]
    with_stats = any(r.stats for r in records)
    with_sample = any(r.sample is not None for r in records)
    if with_stats:
        rows[0] += ["mean", "std", "zeros"]
    if with_sample:
        rows[0] += ["sample"]
    for r in records:
        row = [r.name, r.type, fmt_settings(r.settings), fmt_params(r.param_shapes),
               str(r.output_shape) + (" NaN/inf!" if r.nonfinite else "")]
        if with_stats:
            s = r.stats or {}
            row += [f"{s['mean']:.4f}", f"{s['std']:.4f}", f"{s['zero_frac']:.1%}"] if s else ["-"] * 3
        if with_sample:
            row += ["-" if r.sample is None else np.array2string(r.sample, precision=3, suppress_small=True)]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def layer_report(model, *inputs, stats=False, sample=False, sample_size=5, verbose=True,
                 **kwargs) -> list[LayerRecord]:
    """Run one forward pass and report every sub-layer: settings, parameter shapes, output shape.

    Parameters
    ----------
    model : paddle.nn.Layer
    *inputs, **kwargs
        Passed to ``model(*inputs, **kwargs)`` (e.g. ``layer_report(model, X)``).
    stats, sample, sample_size
        See ``ForwardRecorder``.
    verbose : bool
        Print the table (``format_report``).

    Returns
    -------
    list of LayerRecord
        For the course's ``MNIST`` and ``X [64, 1, 28, 28]``: conv1 ``[64, 20, 28, 28]``,
        max_pool1 ``[64, 20, 14, 14]``, conv2 ``[64, 20, 14, 14]``, max_pool2 ``[64, 20, 7, 7]``,
        fc ``[64, 10]``. The flattened ``[64, 980]`` has no row: ``paddle.reshape`` is not a
        sub-layer (it shows as fc's ``in_features=980``).
    """
    records = _run(model, inputs, kwargs, stats=stats, sample=sample, sample_size=sample_size)
    if verbose:
        print(format_report(records))
    return records


def find_dead_units(model, *inputs, layers=None, **kwargs) -> dict:
    """Channels (conv) / units (linear) whose ReLU'd output is zero for every item of the batch.

    A unit is dead on this batch when ``relu(output) == 0`` everywhere, i.e. ``output <= 0`` for
    every image and (for a convolution) every pixel: no gradient flows through it, so it stays
    dead. The check runs on the Conv / Linear outputs themselves because the course's ``MNIST``
    applies ReLU functionally inside ``forward`` (``F.relu(self.conv1(x))``), so there is no ReLU
    sub-layer to hook. A NaN output is not counted as dead (it is not ``<= 0``);
    see ``first_nonfinite_layer``.

    Parameters
    ----------
    model : paddle.nn.Layer
    *inputs, **kwargs
        One batch, passed to ``model``; the larger the batch, the more trustworthy "dead".
    layers : list of str, optional
        Sub-layer names to check. Default: every Conv and Linear layer except the last one called
        (the logits, which no ReLU follows).

    Returns
    -------
    dict
        ``{layer name: sorted list of dead channel / unit indices}`` for every checked layer.
    """
    with ForwardRecorder(model, keep_outputs=True) as rec, inference(model):
        model(*inputs, **kwargs)
    sublayers = dict(model.named_sublayers())
    candidates = [r for r in rec.records_
                  if isinstance(sublayers.get(r.name), (nn.Linear, nn.layer.conv._ConvNd))]
    if layers is None:
        checked = candidates[:-1]
    else:
        unknown = set(layers) - {r.name for r in rec.records_}
        if unknown:
            raise ValueError(f"no sub-layer output recorded for {sorted(unknown)}; "
                             f"known: {[r.name for r in rec.records_]}")
        checked = [r for r in rec.records_ if r.name in layers]
    dead = {}
    for r in checked:
        out = r.output
        # Conv outputs are [N, C, H, W] (units on axis 1); Linear outputs [N, ..., units] (last axis).
        axis = out.ndim - 1 if isinstance(sublayers.get(r.name), nn.Linear) else 1
        per_unit = np.moveaxis(out, axis, 0).reshape(out.shape[axis], -1)
        dead[r.name] = np.flatnonzero((per_unit <= 0).all(axis=1)).tolist()
    return dead


def first_nonfinite_layer(model, *inputs, **kwargs) -> str | None:
    """Name of the first sub-layer (in forward order) whose output contains NaN or inf, else None.

    Later layers inherit a NaN from the one that made it, so the first is the one to look at:
    usually a NaN / inf parameter of that layer, or an input that already had one.
    """
    records = _run(model, inputs, kwargs)
    return next((r.name for r in records if r.nonfinite), None)
