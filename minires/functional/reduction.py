"""Reductions over axes: sum, mean and max.

A reduction's gradient has the reduced shape; backward first restores the
reduced axes as size-1 axes so that it broadcasts against the input again.
"""
from minires import backend
from minires.autograd import Function


class Sum(Function):
    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        xp = backend.get_array_module()
        gy = _restore_reduced_axes(gy, self.x_shape, self.axis, self.keepdims)
        return xp.broadcast_to(gy, self.x_shape)


def _restore_reduced_axes(gy, x_shape, axis, keepdims):
    """Reshape a reduction's gradient so it broadcasts against the input again."""
    if keepdims or axis is None:
        return gy.reshape((1,) * len(x_shape)) if axis is None else gy
    axes = (axis,) if isinstance(axis, int) else axis
    shape = list(x_shape)
    for a in axes:
        shape[a % len(x_shape)] = 1
    return gy.reshape(shape)


def sum(x, axis=None, keepdims=False):
    return Sum(axis, keepdims)(x)


def mean(x, axis=None, keepdims=False):
    total = Sum(axis, keepdims)(x)
    count = x.numel() // total.numel()
    return total * (1.0 / count)


class Max(Function):
    """Maximum over ``axis`` (PyTorch's ``amax``).

    The gradient goes to the elements equal to the maximum, shared evenly
    between them when several tie, so that it still sums to the upstream gradient.
    """

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x = x
        self.y = x.max(axis=self.axis, keepdims=True)
        return self.y if self.keepdims else self.y.squeeze(axis=self.axis)

    def backward(self, gy):
        gy = _restore_reduced_axes(gy, self.x.shape, self.axis, self.keepdims)
        winners = self.x == self.y
        count = winners.sum(axis=self.axis, keepdims=True, dtype=self.x.dtype)
        return gy * winners / count


def max(x, axis=None, keepdims=False):
    return Max(axis, keepdims)(x)
