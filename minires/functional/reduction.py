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
import numbers
from collections import namedtuple

import numpy

from minires import backend
from minires.arguments import check_bool, check_number, check_tensor
from minires.autograd import Function, Tensor
from minires.functional.shaping import wrap_dim


def _axis(dim, keepdim, axis, keepdims):
    """PyTorch's dim/keepdim or NumPy's axis/keepdims, as (axis, keepdims)."""
    if axis is not None:
        if dim is not None:
            raise TypeError("give dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return (tuple(dim) if isinstance(dim, list) else dim), keepdim


def _check_reduction(where, input, dim, keepdim):
    """A reduction's input, dim (None, an int or a tuple of ints, each in range) and keepdim."""
    check_tensor(where, "input", input, floating=False)
    for d in () if dim is None else dim if isinstance(dim, (tuple, list)) else (dim,):
        wrap_dim(d, input.ndim, where)
    check_bool(where, "keepdim", keepdim)


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
    _check_reduction("var()", input, dim, keepdim)
    if unbiased is not None:
        check_bool("var()", "unbiased", unbiased)
    if correction is not None:
        check_number("var()", "correction", correction)
    if correction is None:
        correction = 0 if unbiased is False else 1
    deviation = input - mean(input, dim, keepdim=True)
    total = sum(deviation * deviation, dim, keepdim)
    n = input.numel() // total.numel() if total.numel() else 0
    return total * (1.0 / (n - correction) if n > correction else float("inf"))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """The square root of ``var`` (same arguments)."""
    _check_reduction("std()", input, dim, keepdim)
    if unbiased is not None:
        check_bool("std()", "unbiased", unbiased)
    if correction is not None:
        check_number("std()", "correction", correction)
    return var(input, dim, unbiased, keepdim, correction=correction) ** 0.5


class Prod(Function):
    """The product over ``axis`` (one int, or all elements for None).

    gx_i = gy * (the product of all the others), computed as the product of those
    before i times that of those after i (exclusive cumulative products), so a zero
    among the x_j needs no division by it.
    """

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x = x
        return x.prod(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        xp = backend.get_array_module()
        x = self.x.reshape(-1) if self.axis is None else self.x
        axis = 0 if self.axis is None else self.axis
        K = x.shape[axis]

        def part(a, start, stop):           # a[..., start:stop, ...] along axis
            return a[(slice(None),) * axis + (slice(start, stop),)]
        one = xp.ones_like(part(x, 0, 1))                                   # (.., 1, ..)
        before = part(xp.cumprod(xp.concatenate([one, x], axis=axis), axis=axis), 0, K)  # x_0 .. x_(i-1)
        reversed_after = xp.cumprod(xp.flip(xp.concatenate([x, one], axis=axis), axis), axis=axis)
        after = xp.flip(part(reversed_after, 0, K), axis)                   # x_(i+1) .. x_(K-1)
        gy = _restore_reduced_axes(gy, self.x.shape, self.axis, self.keepdims)
        return gy * (before * after).reshape(self.x.shape)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """PyTorch's ``torch.prod``: over one dimension ``dim``, or all elements; integers as int64."""
    _check_reduction("prod()", input, dim, keepdim)
    if dtype is not None:
        input = input.to(dtype)
    elif input.dtype.kind in "biu":
        input = input.to(numpy.int64)
    if dim is not None and input.ndim:
        dim = wrap_dim(dim, input.ndim, "prod()")
    return Prod(None if not input.ndim else dim, keepdim)(input)


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(x))) over ``dim``, stably: m + log(sum(exp(x - m))) with m the maximum.

    The maximum is a constant here: the result does not depend on it, so neither does
    the gradient (softmax(x) along dim).
    """
    _check_reduction("logsumexp()", input, dim, keepdim)
    shift = Tensor(input.data.max(axis=_axis(dim, False, None, None)[0], keepdims=True))
    xp = backend.get_array_module()
    shift = Tensor(xp.where(xp.isfinite(shift.data), shift.data, 0))     # all -inf: no shift
    total = sum((input - shift).exp(), dim, keepdim=True).log() + shift
    return total if keepdim else total.squeeze(dim)


class CumSum(Function):
    """y_i = x_0 + ... + x_i along ``axis``; gx_i = gy_i + ... + gy_last (the reversed cumsum)."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        return x.cumsum(axis=self.axis, dtype=numpy.int64 if x.dtype.kind in "biu" else None)

    def backward(self, gy):
        xp = backend.get_array_module()
        return xp.flip(xp.flip(gy, self.axis).cumsum(axis=self.axis), self.axis)


def cumsum(input, dim):
    """PyTorch's ``torch.cumsum`` along ``dim``; integers sum as int64."""
    check_tensor("cumsum()", "input", input, floating=False)
    return CumSum(wrap_dim(dim, input.ndim, "cumsum()"))(input)


class Norm2(Function):
    """y = sqrt(sum x^2) over ``axis``; gx = gy * x / y, and 0 where y = 0 (as PyTorch)."""
    saves_inputs = True
    saves_output = True

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        xp = backend.get_array_module()
        self.x = x
        self.y = xp.sqrt((x * x).sum(axis=self.axis, keepdims=True))
        return self.y if self.keepdims else (self.y.reshape(()) if self.axis is None
                                             else self.y.squeeze(axis=self.axis))

    def backward(self, gy):
        xp = backend.get_array_module()
        gy = _restore_reduced_axes(gy, self.x.shape, self.axis, self.keepdims)
        safe = xp.where(self.y == 0, 1, self.y)
        return xp.where(self.y == 0, 0, gy * self.x / safe).astype(gy.dtype)


def norm(input, p="fro", dim=None, keepdim=False):
    """PyTorch's ``x.norm(p, dim)``: the p-norm of the flattened tensor, or along ``dim``.

    p = 2 (or "fro"): sqrt(sum x^2), gradient 0 at 0; p = inf: max |x|; other p:
    (sum |x|^p)^(1/p), built from the differentiable parts.
    """
    _check_reduction("norm()", input, dim, keepdim)
    if p != "fro" and (isinstance(p, bool) or not isinstance(p, numbers.Real) or p != p):
        raise ValueError(f"norm(): p must be 'fro' or a number (inf too), got {p!r}")
    axis = _axis(dim, keepdim, None, None)[0]
    if p in ("fro", 2, 2.0):
        return Norm2(axis, keepdim)(input)
    if p == float("inf"):
        return amax(input.abs(), dim, keepdim)
    return sum(input.abs() ** p, dim, keepdim) ** (1.0 / p)


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
