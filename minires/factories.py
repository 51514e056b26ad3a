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
import numbers

import numpy

from minires import backend, seeding
from minires.arguments import check_bool, check_int, check_number, check_tensor
from minires.autograd import Tensor
from minires.functional.casting import DEFAULT_FLOAT


def _size(where, size):
    """``(2, 3)`` from ``(2, 3)`` or ``((2, 3),)``, each an int >= 0."""
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    return tuple(check_int(where, "size", length, least=0) for length in size)


def _dtype(where, dtype, default=DEFAULT_FLOAT):
    if dtype is None:
        return default
    try:
        return numpy.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where}: dtype must be a dtype such as minires.float32, got {dtype!r}") from None


def _float_dtype(where, dtype):
    """A dtype for random floats: a float dtype, as torch.rand and torch.randn ask."""
    dtype = _dtype(where, dtype)
    if dtype.kind != "f":
        raise TypeError(f"{where}: dtype must be a floating-point dtype, got {dtype}")
    return dtype


def _check_options(where, requires_grad, device):
    """requires_grad and device, checked before anything is made (or drawn)."""
    check_bool(where, "requires_grad", requires_grad)
    if device is not None:
        backend.check_device(device, f"{where}(device={str(device)!r})")


def _check_fill(where, fill_value):
    if not isinstance(fill_value, numbers.Number):
        raise TypeError(f"{where}: fill_value must be a number, got {fill_value!r}")


def _made(array, requires_grad):
    """``array`` (host or device) as a Tensor on the active device."""
    return Tensor(backend.to_device(array), requires_grad=requires_grad)


def zeros(*size, dtype=None, requires_grad=False, device=None):
    _check_options("zeros", requires_grad, device)
    xp = backend.get_array_module()
    return _made(xp.zeros(_size("zeros", size), dtype=_dtype("zeros", dtype)), requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None):
    _check_options("ones", requires_grad, device)
    xp = backend.get_array_module()
    return _made(xp.ones(_size("ones", size), dtype=_dtype("ones", dtype)), requires_grad)


def empty(*size, dtype=None, requires_grad=False, device=None):
    """Uninitialised memory, as ``torch.empty``: write every element before reading it."""
    _check_options("empty", requires_grad, device)
    xp = backend.get_array_module()
    return _made(xp.empty(_size("empty", size), dtype=_dtype("empty", dtype)), requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device=None):
    """``size`` filled with ``fill_value``; the dtype follows it as in PyTorch (int64 for an int)."""
    _check_options("full", requires_grad, device)
    _check_fill("full", fill_value)
    if isinstance(fill_value, bool):
        default = numpy.dtype(numpy.bool_)
    else:
        default = numpy.dtype(numpy.int64) if isinstance(fill_value, int) else DEFAULT_FLOAT
    xp = backend.get_array_module()
    array = xp.full(_size("full", (size,)), fill_value, dtype=_dtype("full", dtype, default))
    return _made(array, requires_grad)


def zeros_like(input, dtype=None, requires_grad=False, device=None):
    check_tensor("zeros_like", "input", input, floating=False)
    return zeros(input.shape, dtype=_dtype("zeros_like", dtype, input.dtype), requires_grad=requires_grad,
                 device=device)


def ones_like(input, dtype=None, requires_grad=False, device=None):
    check_tensor("ones_like", "input", input, floating=False)
    return ones(input.shape, dtype=_dtype("ones_like", dtype, input.dtype), requires_grad=requires_grad,
                device=device)


def full_like(input, fill_value, dtype=None, requires_grad=False, device=None):
    check_tensor("full_like", "input", input, floating=False)
    _check_fill("full_like", fill_value)
    return full(input.shape, fill_value, dtype=_dtype("full_like", dtype, input.dtype),
                requires_grad=requires_grad, device=device)


def rand(*size, dtype=None, requires_grad=False, device=None):
    """Uniform on [0, 1)."""
    _check_options("rand", requires_grad, device)
    size, dtype = _size("rand", size), _float_dtype("rand", dtype)
    return _made(seeding.init_generator().random(size).astype(dtype), requires_grad)


def randn(*size, dtype=None, requires_grad=False, device=None):
    """Standard normal."""
    _check_options("randn", requires_grad, device)
    size, dtype = _size("randn", size), _float_dtype("randn", dtype)
    return _made(seeding.init_generator().standard_normal(size).astype(dtype), requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None):
    """Integers in [low, high) (``randint(high, size)`` starts at 0); int64 by default, as PyTorch."""
    if size is None:        # randint(high, size)
        low, high, size = 0, low, high
    _check_options("randint", False, device)
    check_int("randint", "low", low)
    if check_int("randint", "high", high) <= low:
        raise ValueError(f"randint: high must be greater than low, got low={low} and high={high}")
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"randint: size must be a tuple of ints, got {size!r}")
    size, dtype = _size("randint", (size,)), _dtype("randint", dtype, numpy.dtype(numpy.int64))
    return _made(seeding.init_generator().integers(low, high, size=size).astype(dtype), False)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None):
    """[start, end) by ``step`` (``arange(end)`` starts at 0): int64 if all are ints, else float32."""
    if end is None:
        start, end = 0, start
    _check_options("arange", requires_grad, device)
    for argument, value in (("start", start), ("end", end), ("step", step)):
        check_number("arange", argument, value)
    if step == 0:
        raise ValueError("arange: step must not be zero")
    integers = all(isinstance(v, int) for v in (start, end, step))
    xp = backend.get_array_module()
    array = xp.arange(start, end, step, dtype=_dtype("arange", dtype, numpy.dtype(numpy.int64) if integers
                                                       else DEFAULT_FLOAT))
    return _made(array, requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False, device=None):
    """``steps`` evenly spaced numbers from ``start`` to ``end``, both included."""
    _check_options("linspace", requires_grad, device)
    check_number("linspace", "start", start)
    check_number("linspace", "end", end)
    check_int("linspace", "steps", steps, least=0)
    xp = backend.get_array_module()
    array = xp.linspace(start, end, steps, dtype=_dtype("linspace", dtype))
    return _made(array, requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, device=None):
    """The n x m identity (m = n by default)."""
    _check_options("eye", requires_grad, device)
    check_int("eye", "n", n, least=0)
    if m is not None:
        check_int("eye", "m", m, least=0)
    xp = backend.get_array_module()
    return _made(xp.eye(n, m, dtype=_dtype("eye", dtype)), requires_grad)


# torch.tensor's dtype for Python data, by NumPy's kind of it
_PYTHON_DATA_DTYPES = {"b": numpy.dtype(numpy.bool_), "i": numpy.dtype(numpy.int64), "f": DEFAULT_FLOAT}


def tensor(data, dtype=None, requires_grad=False, device=None):
    """A copy of ``data``, with ``torch.tensor``'s dtype: an array or Tensor keeps its own; Python
    ints give int64, floats float32, bools bool. (``minires.Tensor(data)``, as ``torch.Tensor``,
    is float32 for Python numbers.)"""
    _check_options("tensor", requires_grad, device)
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (numpy.ndarray, backend.get_array_module().ndarray)):
        array = backend.to_device(data).astype(_dtype("tensor", dtype, data.dtype))     # a copy
    else:
        try:
            host = numpy.array(data)
        except ValueError:          # a ragged list
            host = None
        if host is None or host.dtype.kind not in _PYTHON_DATA_DTYPES:
            raise TypeError(f"tensor: data must be a number or a (nested, rectangular) list of numbers, "
                            f"got {type(data).__name__}")
        array = host.astype(_dtype("tensor", dtype, _PYTHON_DATA_DTYPES[host.dtype.kind]))
    return _made(array, requires_grad)
