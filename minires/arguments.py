"""The arguments of image layers, checked and normalised once, before any array work.

Shared by the functions (``functional.conv2d``, the poolings, batch norm), the
layers that build them (``nn``) and ``summary``, which prints the formula.

N batch, C channels, H/W input size, K kernel, S stride, P padding, D dilation.
"""
import math

from minires.errors import ShapeError


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
