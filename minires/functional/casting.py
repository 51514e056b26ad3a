"""Dtypes: casting a tensor (``x.float()``, ``x.to("float64")``) and PyTorch's type promotion.

An operation mixing dtypes computes in the dtype ``result_type`` gives, as
PyTorch does; NumPy's own rules differ (an int32 array times 1.5 is float64
there, float32 in PyTorch), so the arithmetic casts its operands first.
Only floating-point tensors carry gradients: a cast between two floating
dtypes is differentiable, a cast to an integer or bool dtype is not.
"""
import numpy

from minires import backend
from minires.autograd import Function, Tensor

DEFAULT_FLOAT = numpy.dtype(numpy.float32)      # PyTorch's default dtype, and minires's


class Cast(Function):
    """A copy of x in another floating dtype; the gradient goes back in x's dtype."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.x_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.x_dtype)


def to(input, *args, dtype=None, device=None, non_blocking=False, copy=False):
    """PyTorch's ``x.to(dtype)``, ``x.to(device)``, ``x.to(device, dtype)`` and ``x.to(other)``.

    ``input`` itself if nothing changes. A device must be the active backend's
    (``backend.check_device``): minires keeps every array there, so moving to it
    is a no-op (``non_blocking`` has nothing to do). A cast to a floating dtype
    keeps the graph; one to an integer or bool dtype gives a tensor without a
    gradient (e.g. ``(logits.argmax(1) == y).float()``). ``copy=True`` always copies.
    """
    dtype, device = parse_to_arguments("to", args, dtype, device)
    if device is not None:
        backend.check_device(device, f"to({str(device)!r})")
    if dtype is None or dtype == input.dtype:
        return Tensor(input.data.copy(), requires_grad=input.requires_grad) if copy else input
    if dtype.kind == "f":
        return Cast(dtype)(input)
    return Tensor(input.data.astype(dtype))


def parse_to_arguments(caller, args, dtype=None, device=None):
    """(dtype as a numpy.dtype or None, device or None) from ``to``'s positional arguments:
    a device, a dtype, both (device first), or a Tensor whose dtype to take."""
    for value in args:
        if isinstance(value, Tensor):
            dtype = value.dtype
        elif backend.is_device(value):
            device = value
        else:
            dtype = value
    if dtype is not None:
        try:
            dtype = numpy.dtype(dtype)
        except TypeError:
            raise TypeError(f"{caller}(): expected a dtype such as 'float64' or minires.int64, or a "
                            f"device such as 'cpu', got {dtype!r}") from None
    return dtype, device


def floating(input):
    """``input``, cast to float32 if its dtype is an integer or bool (as torch.exp(int_tensor))."""
    return input if input.dtype.kind == "f" else to(input, DEFAULT_FLOAT)


def result_type(*operands):
    """The dtype PyTorch computes ``a op b`` in, for Tensors (or arrays) and Python numbers.

    Operands fall in three tiers, highest first: tensors with dimensions, 0-d
    tensors, Python numbers. Dtypes promote within a tier (int + float -> the
    float); a lower tier counts only when it is of a higher category (bool <
    integer < floating), and a Python float then counts as float32:

        int64 (N,) * 1.5              -> float32     float32 (N,) * 2.0   -> float32
        uint8 (N,) + 1                -> uint8       bool (N,) + 1        -> int64
        float32 (N,) + float64 (N,)   -> float64     float32 (N,) + float64 () -> float32
    """
    tiers = [None, None, None]
    for value in operands:
        if numpy.isscalar(value):       # Python and NumPy numbers
            tier, dtype = 2, _python_number_dtype(value)
        else:                           # Tensors and arrays
            tier, dtype = (0 if value.ndim else 1), value.dtype
        tiers[tier] = _promote(tiers[tier], dtype)
    return _combine(tiers[0], _combine(tiers[1], tiers[2]))


def _python_number_dtype(value):
    if isinstance(value, (bool, numpy.bool_)):
        return numpy.dtype(bool)
    if isinstance(value, (int, numpy.integer)):
        return numpy.dtype(numpy.int64)
    if isinstance(value, (float, numpy.floating)):
        return DEFAULT_FLOAT
    raise TypeError(f"expected a Tensor or a Python number, got {type(value).__name__}")


def _promote(a, b):
    """PyTorch's ``promote_types``: NumPy's, except that int with float gives the float."""
    if a is None or b is None:
        return b if a is None else a
    if (a.kind == "f") != (b.kind == "f"):
        return a if a.kind == "f" else b
    return numpy.promote_types(a, b)


def _combine(higher, lower):
    """The dtype of a higher tier, unless the lower tier is of a higher category."""
    if higher is None or lower is None:
        return lower if higher is None else higher
    if higher.kind == "b" or (lower.kind == "f" and higher.kind != "f"):
        return _promote(higher, lower)
    return higher


def promote(*operands, floating=False):
    """The operands as Tensors of ``result_type(*operands)``: PyTorch's dtype for ``a op b``.

    ``floating=True`` makes an integer result float32 instead (true division, int / int).
    A Python number wraps around an integer dtype's range, as in PyTorch
    (uint8 tensor + -3 adds 253, modulo 256).
    """
    dtype = result_type(*operands)
    if floating and dtype.kind != "f":
        dtype = DEFAULT_FLOAT
    return [_as(x, dtype) for x in operands]


def _as(value, dtype):
    if isinstance(value, Tensor):
        return to(value, dtype)
    if numpy.isscalar(value):
        return Tensor(numpy.asarray(value).astype(dtype))
    return to(Tensor(value), dtype)     # an array, on the host or the device
