"""Tensors made from nothing, on the active backend, with ``torch``'s names and dtypes.

    x = minires.zeros(2, 3)                       # float32, as torch.zeros
    i = minires.arange(10)                        # int64: every argument is an int
    noise = minires.randn(4, 5, dtype=minires.float64)
    t = minires.tensor([[1, 2], [3, 4]])          # int64, as torch.tensor

Sizes are given as ``zeros(2, 3)`` or ``zeros((2, 3))``. Every factory takes
``dtype`` (default float32, PyTorch's default), ``requires_grad`` and ``device``,
which must be the active backend's (``backend.check_device``). Random numbers
are drawn on the host from ``minires.manual_seed``'s generator and then moved,
so a seed gives the same numbers on NumPy and CuPy.
"""
import numpy

from minires import backend, seeding
from minires.autograd import Tensor
from minires.functional.casting import DEFAULT_FLOAT


def _size(size):
    """``(2, 3)`` from ``(2, 3)`` or ``((2, 3),)``."""
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def _dtype(dtype, default=DEFAULT_FLOAT):
    return default if dtype is None else numpy.dtype(dtype)


def _made(array, requires_grad, device, name):
    """``array`` (host or device) as a Tensor on the active device."""
    if device is not None:
        backend.check_device(device, f"{name}(device={str(device)!r})")
    return Tensor(backend.to_device(array), requires_grad=requires_grad)


def zeros(*size, dtype=None, requires_grad=False, device=None):
    xp = backend.get_array_module()
    return _made(xp.zeros(_size(size), dtype=_dtype(dtype)), requires_grad, device, "zeros")


def ones(*size, dtype=None, requires_grad=False, device=None):
    xp = backend.get_array_module()
    return _made(xp.ones(_size(size), dtype=_dtype(dtype)), requires_grad, device, "ones")


def empty(*size, dtype=None, requires_grad=False, device=None):
    """Uninitialised memory, as ``torch.empty``: write every element before reading it."""
    xp = backend.get_array_module()
    return _made(xp.empty(_size(size), dtype=_dtype(dtype)), requires_grad, device, "empty")


def full(size, fill_value, dtype=None, requires_grad=False, device=None):
    """``size`` filled with ``fill_value``; the dtype follows it as in PyTorch (int64 for an int)."""
    if isinstance(fill_value, bool):
        default = numpy.dtype(numpy.bool_)
    else:
        default = numpy.dtype(numpy.int64) if isinstance(fill_value, int) else DEFAULT_FLOAT
    xp = backend.get_array_module()
    array = xp.full(_size((size,)), fill_value, dtype=_dtype(dtype, default))
    return _made(array, requires_grad, device, "full")


def zeros_like(input, dtype=None, requires_grad=False, device=None):
    return zeros(input.shape, dtype=_dtype(dtype, input.dtype), requires_grad=requires_grad,
                 device=device)


def ones_like(input, dtype=None, requires_grad=False, device=None):
    return ones(input.shape, dtype=_dtype(dtype, input.dtype), requires_grad=requires_grad,
                device=device)


def full_like(input, fill_value, dtype=None, requires_grad=False, device=None):
    return full(input.shape, fill_value, dtype=_dtype(dtype, input.dtype),
                requires_grad=requires_grad, device=device)


def rand(*size, dtype=None, requires_grad=False, device=None):
    """Uniform on [0, 1)."""
    values = seeding.init_generator().random(_size(size)).astype(_dtype(dtype))
    return _made(values, requires_grad, device, "rand")


def randn(*size, dtype=None, requires_grad=False, device=None):
    """Standard normal."""
    values = seeding.init_generator().standard_normal(_size(size)).astype(_dtype(dtype))
    return _made(values, requires_grad, device, "randn")


def randint(low, high=None, size=None, dtype=None, device=None):
    """Integers in [low, high) (``randint(high, size)`` starts at 0); int64 by default, as PyTorch."""
    if size is None:        # randint(high, size)
        low, high, size = 0, low, high
    values = seeding.init_generator().integers(low, high, size=tuple(size))
    return _made(values.astype(_dtype(dtype, numpy.dtype(numpy.int64))), False, device, "randint")


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None):
    """[start, end) by ``step`` (``arange(end)`` starts at 0): int64 if all are ints, else float32."""
    if end is None:
        start, end = 0, start
    integers = all(isinstance(v, int) for v in (start, end, step))
    xp = backend.get_array_module()
    array = xp.arange(start, end, step, dtype=_dtype(dtype, numpy.dtype(numpy.int64) if integers
                                                       else DEFAULT_FLOAT))
    return _made(array, requires_grad, device, "arange")


def linspace(start, end, steps, dtype=None, requires_grad=False, device=None):
    """``steps`` evenly spaced numbers from ``start`` to ``end``, both included."""
    xp = backend.get_array_module()
    array = xp.linspace(start, end, steps, dtype=_dtype(dtype))
    return _made(array, requires_grad, device, "linspace")


def eye(n, m=None, dtype=None, requires_grad=False, device=None):
    """The n x m identity (m = n by default)."""
    xp = backend.get_array_module()
    return _made(xp.eye(n, m, dtype=_dtype(dtype)), requires_grad, device, "eye")


# torch.tensor's dtype for Python data, by NumPy's kind of it
_PYTHON_DATA_DTYPES = {"b": numpy.dtype(numpy.bool_), "i": numpy.dtype(numpy.int64), "f": DEFAULT_FLOAT}


def tensor(data, dtype=None, requires_grad=False, device=None):
    """A copy of ``data``, with ``torch.tensor``'s dtype: an array or Tensor keeps its own; Python
    ints give int64, floats float32, bools bool. (``minires.Tensor(data)``, as ``torch.Tensor``,
    is float32 for Python numbers.)"""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (numpy.ndarray, backend.get_array_module().ndarray)):
        array = backend.to_device(data).astype(_dtype(dtype, data.dtype))     # a copy
    else:
        host = numpy.array(data)
        array = host.astype(_dtype(dtype, _PYTHON_DATA_DTYPES[host.dtype.kind]))
    return _made(array, requires_grad, device, "tensor")
