"""Mixed precision (``paddle.amp``) as a callback: ``--amp float16`` or ``--amp bfloat16``.

Paddle's recipe, spread over the training events so that the loop stays the lesson's::

    with paddle.amp.auto_cast(dtype=..., level="O1"):   # before_batch ... after_loss: forward + loss
        y_hat = model(X); loss = loss_fn(y_hat, y)
    scaler.scale(loss).backward()                       # the loop (state.scaler)
    scaler.unscale_(optimizer)                          # after_backward: later callbacks see true gradients
    scaler.step(optimizer); scaler.update()             # the loop: skips a step whose gradients overflowed

O1 runs the matrix multiplications and convolutions in the low-precision type and keeps
softmax, cross-entropy and the parameters in float32. float16 needs the loss scaler
(``paddle.amp.GradScaler``: small gradients would round to zero); bfloat16 has float32's
range and needs none. Without this callback ``state.scaler`` is a disabled GradScaler,
whose ``scale`` returns the loss and whose ``step`` is ``optimizer.step()``.

Where it runs: Paddle's dynamic-graph autocast works on GPUs (float16; bfloat16 where
``paddle.amp.is_bfloat16_supported()`` says so, Ampere / A100 and later), XPUs and custom
devices. On the CPU it does nothing (Paddle 3.3.1 warns "amp_guard can only be enabled on
CUDAPlace ..." and turns itself off, although ``is_bfloat16_supported('cpu')`` is True), so
asking for it there is a one-line error that says what the device supports.
"""
from __future__ import annotations

import paddle

from .errors import ConfigError
from .events import ORDER, Callback

AMP_DTYPES = ("float16", "bfloat16")


def supported_dtypes(device: str | None = None) -> tuple[str, ...]:
    """The mixed-precision types Paddle's autocast applies on ``device`` (default: the current one)."""
    device = device or paddle.device.get_device()
    if device == "cpu":  # auto_cast warns "can only be enabled on CUDAPlace, XPUPlace ..." and does nothing
        return ()
    return tuple(dtype for dtype, ok in (("float16", paddle.amp.is_float16_supported(device)),
                                         ("bfloat16", paddle.amp.is_bfloat16_supported(device))) if ok)


def check_dtype(dtype: str, device: str | None = None) -> None:
    """Raise a one-line ``ConfigError`` unless ``dtype`` mixed precision runs on ``device``."""
    if dtype not in AMP_DTYPES:
        raise ConfigError(f"amp={dtype!r} is not one of: off, {', '.join(AMP_DTYPES)}.")
    device = device or paddle.device.get_device()
    supported = supported_dtypes(device)
    if dtype not in supported:
        why = (f"Paddle {paddle.__version__} applies autocast only on GPU / XPU / custom devices"
               if device == "cpu" else f"Paddle reports no {dtype} support for this device")
        raise ConfigError(f"amp={dtype!r} is not supported on {device} ({why}); "
                          f"supported here: {', '.join(('off',) + supported)}.")


class GradScaler(paddle.amp.GradScaler):
    """``paddle.amp.GradScaler`` whose loss-scale update works on NumPy 2.

    Paddle (2.6.2 and 3.3.1) keeps the loss scale as a ``[1]`` tensor, and when an overflow
    halves it, prints ``float(self._scale)``: NumPy 2 refuses ``float()`` of an array with
    dimensions, so the first overflowed step of a float16 run raised ``TypeError``. Paddle's own
    update runs here unchanged on a 0-D view of the scale, which is then given back its ``[1]``
    shape (what the unscale kernels, ``state_dict`` and checkpoints expect).
    """

    def _update(self):
        if not self._enable:
            return
        self._scale = self._scale.reshape([])
        try:
            super()._update()
        finally:
            self._scale = self._scale.reshape([1])


class MixedPrecision(Callback):
    """Autocast around forward + loss, and the loss scaler for float16.

    Parameters
    ----------
    dtype
        ``"float16"`` or ``"bfloat16"``; checked against the current device when built.
    scaler
        The loss scaler to use: a ``course.amp.GradScaler`` (``paddle.amp.GradScaler``'s arguments;
        Paddle's own class fails on NumPy 2 at the first overflow, see above). Default: for float16,
        one with Paddle's defaults (loss scale 2**16, halved after a step whose gradients overflowed, which is then
        skipped, and doubled after 2000 good steps); for bfloat16, a disabled one. Passing
        one skips the device check (tests use this to run the scaler on the CPU).

    ``state_dict`` / ``set_state_dict`` carry the scaler's state through a checkpoint.
    """

    order = ORDER["MixedPrecision"]  # leave autocast before any other callback's after_loss; unscale before GradientClip

    def __init__(self, dtype: str = "float16", scaler=None):
        if scaler is None:
            check_dtype(dtype)
            scaler = GradScaler(enable=dtype == "float16")
        self.dtype, self.scaler = dtype, scaler
        self._autocast = None

    def before_fit(self, state):
        state.scaler = self.scaler  # the loop's scaler.scale(loss).backward() / scaler.step(optimizer)

    def before_batch(self, state):
        self._autocast = paddle.amp.auto_cast(enable=True, dtype=self.dtype, level="O1")
        self._autocast.__enter__()

    def after_loss(self, state):
        self._leave()

    def after_backward(self, state):
        self.scaler.unscale_(state.optimizer)  # a no-op for a disabled scaler (bfloat16)

    def after_fit(self, state):
        self._leave()  # if forward raised, autocast must not stay on for the rest of the process

    def _leave(self):
        if self._autocast is not None:
            self._autocast.__exit__(None, None, None)
            self._autocast = None

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """The scaler's state (loss scale and its counters); ``{}`` when there is no scaler (bfloat16)."""
        return self.scaler.state_dict()

    def set_state_dict(self, saved: dict | None) -> None:
        if saved:  # a checkpoint's tensors come back as paddle Tensors; GradScaler wants NumPy
            self.scaler.load_state_dict({k: v.numpy() if isinstance(v, paddle.Tensor) else v
                                         for k, v in saved.items()})

