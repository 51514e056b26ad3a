"""Arguments checked and normalised once, before any array work: every public function and layer
constructor of minires checks its arguments with these, and each error is one sentence naming the
function (or layer), the argument and what was expected, never a NumPy message from deep inside.

Shared by the functions (``functional.conv2d``, the poolings, batch norm), the
layers that build them (``nn``), the optimizers and ``summary``, which prints the formula.

N batch, C channels, H/W input size, K kernel, S stride, P padding, D dilation.
"""
import math
import numbers
import os

import numpy

from minires import backend
from minires.autograd import Tensor
from minires.errors import ShapeError


def _got(value):
    """How an error shows a wrong value: short, and its type when that is the problem."""
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"


def check_int(where, argument, value, least=None):
    """``value`` as an int (a NumPy integer too, never a bool), at least ``least`` if given.

    Raises TypeError for a non-integer (``2.0``, ``"3"``, ``True``) and ValueError below ``least``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {argument} must be an int, got {_got(value)}")
    if least is not None and value < least:
        raise ValueError(f"{where}: {argument} must be an int >= {least}, got {value}")
    return int(value)


def check_pair(where, argument, value, least):
    """An int or a pair of ints, each at least ``least``, as a pair: ``3 -> (3, 3)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{where}: {argument} must be an int or a pair of ints, got "
                             f"{_got(value)}")
        return (check_int(where, argument, value[0], least), check_int(where, argument, value[1], least))
    return (check_int(where, argument, value, least),) * 2


def check_number(where, argument, value, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a finite real number in [low, high] (open ends where asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {argument} must be a finite number, got {_got(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: {argument} must be a finite number, got {value}")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        span = f"{'(' if low_open else '['}{'-inf' if low is None else low}, " \
               f"{'inf' if high is None else high}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{where}: {argument} must be in {span}, got {value}")
    return value


def check_bool(where, argument, value):
    if not isinstance(value, (bool, numpy.bool_)):
        raise TypeError(f"{where}: {argument} must be True or False, got {_got(value)}")
    return bool(value)


def check_choice(where, argument, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{where}: {argument} must be one of {', '.join(map(repr, choices))}, "
                         f"got {_got(value)}")
    return value


def check_path(where, argument, value):
    """A file or folder name: a str or an os.PathLike (pathlib.Path)."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{where}: {argument} must be a path (a str or a pathlib.Path), got "
                        f"{type(value).__name__}")
    return value


def check_tensor(where, argument, value, ndims=None, floating=True):
    """Raise unless ``value`` is a Tensor (or an array of the backend) of one of ``ndims``
    dimensions, holding floating-point numbers if ``floating``."""
    if not isinstance(value, (Tensor, numpy.ndarray, backend.get_array_module().ndarray)):
        raise TypeError(f"{where}: {argument} must be a Tensor, got {type(value).__name__}")
    if floating and value.dtype.kind != "f":
        raise TypeError(f"{where}: {argument} must hold floating-point numbers, got dtype "
                        f"{value.dtype}; convert it first, e.g. x.float()")
    if not floating and value.dtype.kind not in "biuf":
        raise TypeError(f"{where}: {argument} must hold numbers, got dtype {value.dtype}")
    if ndims is not None and value.ndim not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{where}: {argument} must be {wanted}, got shape {tuple(value.shape)}")
    return value


def check_operands(where, arguments, values):
    """Raise unless each of ``values`` is a Tensor (an array) of numbers or a Python number, and
    their shapes broadcast together, as an element-wise operation of several operands needs."""
    shapes = {}
    for argument, value in zip(arguments, values):
        if not isinstance(value, numbers.Number):
            shapes[argument] = tuple(check_tensor(where, argument, value, floating=False).shape)
    try:
        numpy.broadcast_shapes(*shapes.values())
    except ValueError:
        given = " and ".join(f"{argument} {shape}" for argument, shape in shapes.items())
        raise ValueError(f"{where}: the shapes of {given} do not broadcast together") from None
    return values


def check_indices(where, argument, index, size):
    """Raise unless the array ``index`` holds integers in [0, size) (size None: no upper bound).
    The range is checked on the host only: reading a GPU array's extremes would make every call
    wait for the device."""
    if index.dtype.kind not in "iu":
        raise TypeError(f"{where}: {argument} must hold integers, got dtype {index.dtype}")
    if isinstance(index, numpy.ndarray) and index.size and \
            (index.min() < 0 or size is not None and index.max() >= size):
        raise ValueError(f"{where}: {argument} must be in [0, {'inf' if size is None else size}), "
                         f"got values from {index.min()} to {index.max()}")
    return index


def pair(value):
    """An int or a pair of ints as a pair: ``3 -> (3, 3)``."""
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


def output_size(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """The output size formula, D2 = (D1 + 2P - D(K - 1) - 1) // S + 1.

    A dilated kernel spans D(K - 1) + 1 pixels (K when D = 1). The division floors,
    as in every framework; pooling's ``ceil_mode`` rounds it up instead, but, as
    PyTorch, drops a last window that would start past the input and its left
    padding (that is, one reading right padding only).
    """
    span = dilation * (kernel - 1) + 1
    if not ceil_mode:
        return (size + 2 * padding - span) // stride + 1
    out = math.ceil((size + 2 * padding - span) / stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out


def conv_padding(name, padding, kernel, stride, dilation=(1, 1)):
    """PyTorch's conv padding argument (int, pair, 'valid' or 'same') as two pairs of ints.

    Returns ((PH, PW), (EH, EW)): P rows (columns) of zeros on every side, and E
    extra ones at the bottom (right). E is 0 except for 'same', which keeps H and W
    with stride 1: the kernel spans D(K - 1) + 1 pixels, so D(K - 1) rows of
    padding are needed in all; when that is odd, PyTorch puts the extra one at the
    bottom (right): P = D(K - 1) // 2, E = D(K - 1) % 2. ``name`` gives the layer's
    name for an error, as in ``check_image_input``.
    """
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        if pair(stride) != (1, 1):
            raise ValueError(f"{name()}: padding='same' needs stride 1 (as in PyTorch), got "
                             f"stride {stride}")
        totals = [D * (K - 1) for D, K in zip(dilation, kernel)]
        return (totals[0] // 2, totals[1] // 2), (totals[0] % 2, totals[1] % 2)
    if isinstance(padding, str):
        raise ValueError(f"{name()}: padding must be an int, a pair, 'valid' or 'same', "
                         f"got {padding!r}")
    return pair(padding), (0, 0)


def check_image_input(name, x, C, kernel, padding, extra=(0, 0)):
    """Raise a ShapeError (a ValueError) naming the layer unless x is (N, C, H, W) and large enough
    for the kernel.

    ``name`` is a function giving the layer's name: it is built only for an error,
    since this check runs on every call of every layer. ``kernel`` is the span a
    dilated kernel covers, D(K - 1) + 1; ``extra`` the rows (columns) of padding
    added at the bottom (right) only.
    """
    shape = tuple(x.shape)
    if len(shape) != 4 or (C is not None and shape[1] != C):
        channels = "C" if C is None else C
        raise ShapeError(f"{name()}: expected input (N, {channels}, H, W), got {shape}")
    KH, KW = kernel
    PH, PW = padding
    EH, EW = extra
    if shape[2] + 2 * PH + EH < KH or shape[3] + 2 * PW + EW < KW:
        pad_h, pad_w = f"2*{PH}" + (f" + {EH}" if EH else ""), f"2*{PW}" + (f" + {EW}" if EW else "")
        raise ShapeError(f"{name()}: input {shape} is too small for a {KH}x{KW} kernel with "
                         f"padding {padding}: needs H + {pad_h} >= {KH} and W + {pad_w} >= {KW}")


def check_pool_arguments(layer, kernel_size, stride, padding, dilation, ceil_mode):
    """A pooling's (kernel, stride, padding, dilation) as pairs, each checked; stride None is
    the kernel. The padding may be at most half the kernel, as in PyTorch."""
    where = f"{layer}(kernel_size={kernel_size!r})"
    kernel = check_pair(where, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else check_pair(where, "stride", stride, 1)
    padding = check_pair(where, "padding", padding, 0)
    dilation = check_pair(where, "dilation", dilation, 1)
    check_bool(where, "ceil_mode", ceil_mode)
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise ValueError(f"{where}: padding must be at most half the kernel size, got {padding}")
    return kernel, stride, padding, dilation


def check_output_size(layer, output_size):
    """An adaptive pooling's output size: an int >= 1, or a pair of them (None keeps that size)."""
    where = f"{layer}(output_size={output_size!r})"
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(sizes) != 2:
        raise ValueError(f"{where}: output_size must be an int or a pair, got {_got(output_size)}")
    return tuple(None if size is None else check_int(where, "output_size", size, least=1)
                 for size in sizes)


def check_loss_arguments(where, ignore_index, reduction, label_smoothing):
    """cross_entropy's options: an int ignore_index, 'mean'/'sum'/'none', label_smoothing in [0, 1]."""
    check_int(where, "ignore_index", ignore_index)
    check_choice(where, "reduction", reduction, ("mean", "sum", "none"))
    check_number(where, "label_smoothing", label_smoothing, low=0, high=1)
