"""NumPy 2's rule for scalar reads, enforced on every NumPy: a Python number comes only from a 0-D value.

NumPy 2 refuses ``float(array)`` / ``int(array)`` when the array has dimensions (NumPy 1.25-1.26
only warn), and Paddle's ``float(tensor)`` goes through ``np.array(tensor)``: so ``float(w)`` of a
``[1, 1]`` weight works on NumPy 1.26 and raises ``TypeError`` on NumPy 2. ``install()`` makes
the test session (and, through an IPython startup file, every notebook kernel the tests start)
fail the same way on both lines, so the Paddle 2.6 / NumPy 1.26 leg catches what NumPy 2 would.
Read a scalar with ``.item()`` on a 0-D tensor, or index explicitly first (``w[0, 0].item()``).
"""
import warnings

NUMPY_MESSAGE = "Conversion of an array with ndim > 0 to a scalar"  # NumPy 1.25+'s DeprecationWarning


def install():
    import paddle

    warnings.filterwarnings("error", message=NUMPY_MESSAGE, category=DeprecationWarning)
    if getattr(paddle.Tensor, "_course_scalar_guard", False):
        return
    for name in ("__float__", "__int__", "__index__", "__complex__"):
        original = getattr(paddle.Tensor, name, None)
        if original is not None:
            setattr(paddle.Tensor, name, _guarded(name, original))
    paddle.Tensor._course_scalar_guard = True


def _guarded(name, original):
    def read(self):
        if len(self.shape) != 0:
            raise TypeError(f"{name[2:-2]}() of a Tensor of shape {list(self.shape)}: only 0-D tensors convert "
                            "to Python scalars (NumPy 2 refuses it); index first, e.g. t[0, 0].item()")
        return original(self)
    read.__name__ = name
    return read
