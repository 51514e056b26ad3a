"""Tensor's operators and methods, as calls of the functions in this package.

``x + y`` is ``arithmetic.add(x, y)``, ``x.sum()`` is ``reduction.sum(x)``, and
so on. They are attached to Tensor here rather than written in autograd.py, so
that the engine knows nothing of the operations built on it: imports run one
way only, autograd -> functional (DeZero's ``setup_variable`` does the same).
"""
from minires.autograd import Tensor
from minires.functional import arithmetic, linear, reduction, shaping


def _reshape(self, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return shaping.reshape(self, shape)


def _transpose(self, dim0, dim1):
    """Swap two dimensions, as PyTorch's ``x.transpose(0, 1)`` (not NumPy's permutation)."""
    axes = list(range(self.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return shaping.transpose(self, axes)


def _permute(self, *dims):
    """Reorder all dimensions: ``x.permute(0, 2, 3, 1)`` (NumPy's ``transpose(axes)``)."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return shaping.transpose(self, dims)


Tensor.__add__ = arithmetic.add
Tensor.__radd__ = lambda self, other: arithmetic.add(other, self)
Tensor.__sub__ = arithmetic.sub
Tensor.__rsub__ = lambda self, other: arithmetic.sub(other, self)
Tensor.__mul__ = arithmetic.mul
Tensor.__rmul__ = lambda self, other: arithmetic.mul(other, self)
Tensor.__truediv__ = arithmetic.div
Tensor.__rtruediv__ = lambda self, other: arithmetic.div(other, self)
Tensor.__neg__ = arithmetic.neg
Tensor.__pow__ = arithmetic.pow
Tensor.exp = arithmetic.exp
Tensor.log = arithmetic.log
Tensor.__matmul__ = linear.matmul
Tensor.__rmatmul__ = lambda self, other: linear.matmul(other, self)
Tensor.__getitem__ = shaping.getitem
Tensor.reshape = _reshape
Tensor.transpose = _transpose
Tensor.permute = _permute
Tensor.T = property(lambda self: shaping.transpose(self, None))
Tensor.sum = reduction.sum
Tensor.mean = reduction.mean
Tensor.max = reduction.max
