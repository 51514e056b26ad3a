"""Tensor's operators and methods, as calls of the functions in this package.

``x + y`` is ``arithmetic.add(x, y)``, ``x.sum()`` is ``reduction.sum(x)``, and
so on. They are attached to Tensor here rather than written in autograd.py, so
that the engine knows nothing of the operations built on it: imports run one
way only, autograd -> functional (DeZero's ``setup_variable`` does the same).
"""
import numpy

from minires import backend
from minires.autograd import Tensor
from minires.functional import (
    activation,
    arithmetic,
    casting,
    comparison,
    inplace,
    joining,
    linear,
    loss,
    ordering,
    reduction,
    rounding,
    selection,
    shaping,
    trigonometry,
)


def _shape(shape):
    """``x.reshape(2, 3)`` and ``x.reshape((2, 3))`` alike."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _transpose(self, dim0, dim1):
    """Swap two dimensions, as PyTorch's ``x.transpose(0, 1)`` (not NumPy's permutation)."""
    axes = list(range(self.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return shaping.transpose(self, axes)


Tensor.__add__ = arithmetic.add
Tensor.__radd__ = lambda self, other: arithmetic.add(other, self)
Tensor.__sub__ = arithmetic.sub
Tensor.__rsub__ = lambda self, other: arithmetic.sub(other, self)
Tensor.__mul__ = arithmetic.mul
Tensor.__rmul__ = lambda self, other: arithmetic.mul(other, self)
Tensor.__truediv__ = arithmetic.div
Tensor.__rtruediv__ = lambda self, other: arithmetic.div(other, self)
Tensor.__neg__ = arithmetic.neg
Tensor.__pow__ = Tensor.pow = arithmetic.pow
Tensor.__rpow__ = lambda self, other: arithmetic.pow(other, self)
Tensor.__abs__ = Tensor.abs = arithmetic.abs
Tensor.exp = arithmetic.exp
Tensor.log = arithmetic.log
Tensor.sqrt = arithmetic.sqrt
Tensor.clamp = Tensor.clip = arithmetic.clamp
Tensor.log1p = arithmetic.log1p
Tensor.square = arithmetic.square
Tensor.maximum = selection.maximum
Tensor.minimum = selection.minimum
Tensor.where = lambda self, condition, other: selection.where(condition, self, other)
Tensor.masked_fill = selection.masked_fill
Tensor.gather = selection.gather
Tensor.index_select = selection.index_select
Tensor.scatter = selection.scatter
Tensor.scatter_add = selection.scatter_add
Tensor.sort = ordering.sort
Tensor.argsort = ordering.argsort
Tensor.topk = ordering.topk
Tensor.sin = trigonometry.sin
Tensor.cos = trigonometry.cos
Tensor.floor = rounding.floor
Tensor.ceil = rounding.ceil
Tensor.round = rounding.round
Tensor.sign = rounding.sign
Tensor.__floordiv__ = rounding.floor_divide
Tensor.__rfloordiv__ = lambda self, other: rounding.floor_divide(other, self)
Tensor.__mod__ = Tensor.remainder = rounding.remainder
Tensor.__rmod__ = lambda self, other: rounding.remainder(other, self)

# in place (functional/inplace.py): each returns the tensor itself
Tensor.add_ = inplace.add_
Tensor.sub_ = inplace.sub_
Tensor.mul_ = inplace.mul_
Tensor.div_ = inplace.div_
Tensor.clamp_ = Tensor.clip_ = inplace.clamp_
Tensor.fill_ = inplace.fill_
Tensor.zero_ = inplace.zero_
Tensor.copy_ = inplace.copy_
Tensor.bernoulli_ = inplace.bernoulli_
Tensor.__matmul__ = linear.matmul
Tensor.__rmatmul__ = lambda self, other: linear.matmul(other, self)

# comparisons give bool tensors; a Tensor stays hashable by identity, as in PyTorch
Tensor.__eq__ = Tensor.eq = comparison.eq
Tensor.__ne__ = Tensor.ne = comparison.ne
Tensor.__lt__ = Tensor.lt = comparison.lt
Tensor.__le__ = Tensor.le = comparison.le
Tensor.__gt__ = Tensor.gt = comparison.gt
Tensor.__ge__ = Tensor.ge = comparison.ge
Tensor.__invert__ = comparison.bitwise_not
Tensor.__and__ = comparison.bitwise_and
Tensor.__rand__ = lambda self, other: comparison.bitwise_and(self, other)
Tensor.__or__ = comparison.bitwise_or
Tensor.__ror__ = lambda self, other: comparison.bitwise_or(self, other)

Tensor.__getitem__ = shaping.getitem
Tensor.reshape = lambda self, *shape: shaping.reshape(self, _shape(shape))
Tensor.view = lambda self, *shape: shaping.view(self, _shape(shape))
Tensor.flatten = lambda self, start_dim=0, end_dim=-1: shaping.flatten(self, start_dim, end_dim)
Tensor.squeeze = shaping.squeeze
Tensor.unsqueeze = shaping.unsqueeze
Tensor.transpose = _transpose
Tensor.permute = lambda self, *dims: shaping.transpose(self, _shape(dims))
Tensor.T = property(lambda self: shaping.transpose(self, None))
Tensor.expand = lambda self, *sizes: shaping.expand(self, _shape(sizes))
Tensor.expand_as = lambda self, other: shaping.expand(self, other.shape)
Tensor.repeat = lambda self, *sizes: shaping.repeat(self, _shape(sizes))
Tensor.clone = shaping.clone
Tensor.split = joining.split
Tensor.chunk = joining.chunk
Tensor.flip = lambda self, *dims: shaping.flip(self, _shape(dims))
Tensor.roll = shaping.roll
Tensor.tril = shaping.tril
Tensor.triu = shaping.triu

Tensor.sum = reduction.sum
Tensor.mean = reduction.mean
Tensor.var = reduction.var
Tensor.std = reduction.std
Tensor.prod = reduction.prod
Tensor.logsumexp = reduction.logsumexp
Tensor.cumsum = reduction.cumsum
Tensor.norm = reduction.norm
Tensor.max = reduction.max
Tensor.min = reduction.min
Tensor.amax = reduction.amax
Tensor.amin = reduction.amin
Tensor.argmax = reduction.argmax
Tensor.argmin = reduction.argmin
Tensor.all = reduction.all
Tensor.any = reduction.any

Tensor.to = casting.to
Tensor.device = property(lambda self: backend.active_device())
Tensor.cpu = lambda self: casting.to(self, "cpu")
Tensor.cuda = lambda self, device=None: casting.to(self, "cuda" if device is None else device)
Tensor.float = lambda self: casting.to(self, numpy.float32)
Tensor.double = lambda self: casting.to(self, numpy.float64)
Tensor.long = lambda self: casting.to(self, numpy.int64)
Tensor.int = lambda self: casting.to(self, numpy.int32)
Tensor.bool = lambda self: casting.to(self, numpy.bool_)

Tensor.relu = activation.relu
Tensor.sigmoid = activation.sigmoid
Tensor.tanh = activation.tanh
Tensor.softmax = activation.softmax
Tensor.log_softmax = loss.log_softmax
