"""Padding with a constant: PyTorch's ``F.pad(x, pad, mode="constant", value=0)``.

``pad`` lists (before, after) pairs starting from the last dimension, as PyTorch:
``pad=(1, 2)`` adds 1 column on the left and 2 on the right of the last dimension;
``pad=(1, 1, 2, 0)`` also adds 2 rows at the top of the one before. A negative
amount crops. Backward cuts the gradient of the padded region away.
"""
from minires import backend
from minires.arguments import check_choice, check_int, check_number, check_tensor
from minires.autograd import Function


class Pad(Function):
    """y = x framed by ``value``: y.shape[d] = x.shape[d] + before[d] + after[d]."""

    def __init__(self, widths, value):
        self.widths, self.value = widths, value          # ((before, after), ...) per dimension

    def forward(self, x):
        xp = backend.get_array_module()
        self.x_shape = x.shape
        self.in_y, self.in_x = _regions(x.shape, self.widths)
        y = xp.full(tuple(n + b + a for n, (b, a) in zip(x.shape, self.widths)), self.value, dtype=x.dtype)
        y[self.in_y] = x[self.in_x]
        return y

    def backward(self, gy):
        xp = backend.get_array_module()
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        gx[self.in_x] = gy[self.in_y]
        return gx


def _regions(x_shape, widths):
    """(the slices of y that hold x's values, the slices of x that are kept): a negative width crops."""
    in_y, in_x = [], []
    for n, (before, after) in zip(x_shape, widths):
        kept = n + min(before, 0) + min(after, 0)
        in_y.append(slice(max(before, 0), max(before, 0) + kept))
        in_x.append(slice(-min(before, 0), -min(before, 0) + kept))
    return tuple(in_y), tuple(in_x)


def pad(input, pad, mode="constant", value=0.0):
    """PyTorch's ``F.pad`` with ``mode="constant"``."""
    check_tensor("pad()", "input", input, floating=False)
    check_choice("pad()", "mode", mode, ("constant",))
    check_number("pad()", "value", value)
    if not isinstance(pad, (tuple, list)):
        raise TypeError(f"pad(): pad must be a tuple of (before, after) ints, got {pad!r}")
    for width in pad:
        check_int("pad()", "pad", width)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad(): expected (before, after) pairs for at most {input.ndim} "
                         f"dimensions, got {tuple(pad)}")
    pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)]          # last dimension first
    widths = [(0, 0)] * (input.ndim - len(pairs)) + pairs[::-1]
    if any(n + before + after < 0 for n, (before, after) in zip(input.shape, widths)):
        raise ValueError(f"pad(): pad {tuple(pad)} crops more than the input's shape {tuple(input.shape)}")
    return Pad(tuple(widths), value)(input)
