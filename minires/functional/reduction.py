"""Reductions over dimensions: sum, mean, var and std, max and min (amax, amin), argmax and
argmin, all, any.

Each takes PyTorch's ``dim=`` / ``keepdim=`` or NumPy's ``axis=`` / ``keepdims=``;
``dim`` may be an int or a tuple of ints. A reduction's gradient has the
reduced shape; backward first restores the reduced axes as size-1 axes so that
it broadcasts against the input again.

max and min, as PyTorch: ``x.max()`` is a 0-d tensor and ``x.max(dim)`` is the
pair ``(values, indices)``, as in the accuracy idiom

    _, predicted = logits.max(1)                 # (N,) class indices
    correct = (predicted == labels).sum().item()

``axis`` is another name for ``dim`` (as in PyTorch): ``x.max(axis=1)`` is the
pair too; ``amax`` gives the values alone.
"""
from collections import namedtuple

import numpy

from minires import backend
from minires.autograd import Function, Tensor


def _axis(dim, keepdim, axis, keepdims):
    """PyTorch's dim/keepdim or NumPy's axis/keepdims, as (axis, keepdims)."""
    if axis is not None:
        if dim is not None:
            raise TypeError("give dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return (tuple(dim) if isinstance(dim, list) else dim), keepdim


def _restore_reduced_axes(gy, x_shape, axis, keepdims):
    """Reshape a reduction's gradient so it broadcasts against the input again."""
    if keepdims or axis is None or not x_shape:     # a 0-d input: dim 0 or -1 is the element
        return gy.reshape((1,) * len(x_shape)) if axis is None else gy
    axes = (axis,) if isinstance(axis, int) else axis
    shape = list(x_shape)
    for a in axes:
        shape[a % len(x_shape)] = 1
    return gy.reshape(shape)


class Sum(Function):
    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x_shape = x.shape
        # integers and bools sum as int64, as PyTorch (NumPy sums unsigned ones as uint64)
        dtype = numpy.int64 if x.dtype.kind in "biu" else None
        return x.sum(axis=self.axis, keepdims=self.keepdims, dtype=dtype)

    def backward(self, gy):
        xp = backend.get_array_module()
        gy = _restore_reduced_axes(gy, self.x_shape, self.axis, self.keepdims)
        return xp.broadcast_to(gy, self.x_shape)


def sum(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The sum over ``dim`` (all elements by default); integer tensors sum as int64."""
    return Sum(*_axis(dim, keepdim, axis, keepdims))(input)


def mean(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The mean over ``dim``; of a floating tensor only, as PyTorch (``(y == t).float().mean()``)."""
    if input.dtype.kind != "f":
        raise RuntimeError(f"mean() of a {input.dtype} tensor: PyTorch needs a floating dtype "
                           "here too; convert first, e.g. x.float().mean()")
    total = Sum(*_axis(dim, keepdim, axis, keepdims))(input)
    count = input.numel() // total.numel() if total.numel() else 0
    return total * (1.0 / count if count else float("nan"))     # over no elements: nan, as PyTorch


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """PyTorch's ``x.var``: sum((x - mean)^2) / (n - correction) over ``dim`` (all by default).

    ``correction`` is 1 unless given (Bessel's, the unbiased estimate); ``unbiased=False``
    means 0. Built from sum and mean, so its gradient is theirs:
    d var / dx_i = 2 (x_i - mean) / (n - correction). n - correction <= 0 gives inf or nan.
    """
    if correction is None:
        correction = 0 if unbiased is False else 1
    deviation = input - mean(input, dim, keepdim=True)
    total = sum(deviation * deviation, dim, keepdim)
    n = input.numel() // total.numel() if total.numel() else 0
    return total * (1.0 / (n - correction) if n > correction else float("inf"))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """The square root of ``var`` (same arguments)."""
    return var(input, dim, unbiased, keepdim, correction=correction) ** 0.5


class Max(Function):
    """Maximum over ``axis`` (PyTorch's ``amax``).

    The gradient goes to the elements equal to the maximum, shared evenly
    between them when several tie, so that it still sums to the upstream gradient.
    """
    saves_inputs = True
    saves_output = True         # the output is self.y, or a view of it

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x = x
        self.y = self.reduce(x, self.axis)
        return self.y if self.keepdims else self.y.squeeze(axis=self.axis)

    @staticmethod
    def reduce(x, axis):
        return x.max(axis=axis, keepdims=True)

    def backward(self, gy):
        gy = _restore_reduced_axes(gy, self.x.shape, self.axis, self.keepdims)
        winners = self.x == self.y
        count = winners.sum(axis=self.axis, keepdims=True, dtype=self.x.dtype)
        return gy * winners / count


class Min(Max):
    """Minimum over ``axis`` (PyTorch's ``amin``): Max with the minimum as the winner."""

    @staticmethod
    def reduce(x, axis):
        return x.min(axis=axis, keepdims=True)


def amax(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The maximum values over ``dim`` (all elements by default); tied maxima share the gradient."""
    return Max(*_axis(dim, keepdim, axis, keepdims))(input)


def amin(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The minimum values over ``dim`` (all elements by default); tied minima share the gradient."""
    return Min(*_axis(dim, keepdim, axis, keepdims))(input)


class Pick(Function):
    """One element of each slice along ``axis``: the values of ``max(dim)`` and ``min(dim)``.

    x: (..., K, ...); indices: (..., 1, ...) in [0, K); y: (..., 1, ...), or
    (..., ...) without keepdims. Backward sends gy to the picked element (for a tie,
    the one argmax chose, as PyTorch) and 0 to the others.
    """

    def __init__(self, indices, axis, keepdims):
        self.indices, self.axis, self.keepdims = indices, axis, keepdims

    def forward(self, x):
        xp = backend.get_array_module()
        self.K = x.shape[self.axis]
        y = xp.take_along_axis(x, self.indices, axis=self.axis)       # (..., 1, ...)
        return y if self.keepdims else y.squeeze(axis=self.axis)

    def backward(self, gy):
        xp = backend.get_array_module()
        if not self.keepdims:
            gy = xp.expand_dims(gy, self.axis)                          # (..., 1, ...)
        shape = [1] * self.indices.ndim
        shape[self.axis] = self.K
        positions = xp.arange(self.K).reshape(shape)                    # (1, .., K, .., 1)
        return (positions == self.indices) * gy                         # (..., K, ...)


ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])    # torch.return_types.max


def max(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """``x.max()``: the maximum (0-d). ``x.max(dim)``: ``(values, indices)`` along ``dim``.

    ``axis`` and ``keepdims`` are other names for ``dim`` and ``keepdim``, as in PyTorch.
    """
    dim, keepdim = _axis(dim, keepdim, axis, keepdims)
    if dim is None:
        return amax(input, None, keepdim)
    return _pick(argmax, input, dim, keepdim)


def min(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """``x.min()``: the minimum (0-d). ``x.min(dim)``: ``(values, indices)`` along ``dim``."""
    dim, keepdim = _axis(dim, keepdim, axis, keepdims)
    if dim is None:
        return amin(input, None, keepdim)
    return _pick(argmin, input, dim, keepdim)


def _pick(arg, input, dim, keepdim):
    """(values, indices) along ``dim`` where ``arg`` (argmax or argmin) points."""
    indices = arg(input, dim, keepdim=True)                             # (..., 1, ...)
    values = Pick(indices.data, dim, keepdim)(input)
    return ValuesIndices(values, indices if keepdim else Tensor(indices.data.squeeze(axis=dim)))


def argmax(input, dim=None, keepdim=False):
    """Index of the maximum along ``dim`` (int64, no gradient); of the flattened tensor if None.
    The first one where several tie, as PyTorch."""
    return Tensor(input.data.argmax(axis=dim, keepdims=keepdim))


def argmin(input, dim=None, keepdim=False):
    """Index of the minimum along ``dim`` (int64, no gradient); of the flattened tensor if None."""
    return Tensor(input.data.argmin(axis=dim, keepdims=keepdim))


def all(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Whether every element (along ``dim``, an int or a tuple) is nonzero: a bool tensor, no gradient."""
    dim, keepdim = _axis(dim, keepdim, axis, keepdims)
    return Tensor(input.data.all(axis=dim, keepdims=keepdim))


def any(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Whether some element (along ``dim``, an int or a tuple) is nonzero: a bool tensor, no gradient."""
    dim, keepdim = _axis(dim, keepdim, axis, keepdims)
    return Tensor(input.data.any(axis=dim, keepdims=keepdim))
