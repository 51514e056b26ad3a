"""Functions that move values without changing them: reshape (view, flatten, squeeze,
unsqueeze), transpose and indexing.

Their backward moves the gradient back the same way: reshape it to the input's
shape, transpose it by the inverse permutation, or scatter it into zeros at the
indexed places. Their output is a view of the input's memory where NumPy can
make one (then an in-place change of either shows in the other, as in PyTorch).
"""
import math
import numbers

from minires import backend
from minires.arguments import check_int, check_tensor
from minires.autograd import Function, Tensor


class Reshape(Function):
    output_may_view = True      # NumPy's reshape copies only where strides cannot express it

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.x_shape)


def reshape(x, shape):
    return Reshape(tuple(shape))(x)


def view(x, shape):
    """PyTorch's ``x.view(shape)``: a reshape that shares the input's memory, or an error.

    Where the elements cannot be reached with strides over the input's memory
    (flattening a transposed tensor, say), NumPy's reshape would quietly copy,
    and an in-place change of the result would no longer reach the input;
    PyTorch refuses such a view, and so does minires. ``reshape`` copies there.
    """
    y = reshape(x, shape)
    if y.data.size and not backend.get_array_module().may_share_memory(y.data, x.data):
        raise RuntimeError(f"view({tuple(shape)}) of a tensor of shape {tuple(x.shape)} whose "
                           "memory is not laid out for it (a transposed tensor?); use reshape(), "
                           "which copies")
    return y


class DimensionError(IndexError, ValueError):
    """A dimension out of range: an IndexError, as in PyTorch, and a ValueError, as every bad
    argument of minires is."""


def wrap_dim(dim, ndim, where="dimension", argument="dim"):
    """``dim`` in [0, ndim), from PyTorch's range [-ndim, ndim) ([-1, 0] for a 0-d tensor).

    ``where`` and ``argument`` name the function and its argument in the error.
    """
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{where}: {argument} must be an int, got {dim!r}")
    ndim = max(ndim, 1)
    if not -ndim <= dim < ndim:
        raise DimensionError(f"{where}: {argument} out of range (expected to be in range of "
                             f"[{-ndim}, {ndim - 1}], but got {dim})")
    return int(dim) % ndim


def squeeze(x, dim=None):
    """Remove size-1 dimensions: all of them, or ``dim`` (an int or a tuple) where its size is 1."""
    if dim is None:
        dims = range(x.ndim)
    else:
        dims = [wrap_dim(d, x.ndim) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))]
    return reshape(x, [n for d, n in enumerate(x.shape) if not (d in dims and n == 1)])


def unsqueeze(x, dim):
    """Insert a size-1 dimension at ``dim``, in [-ndim - 1, ndim]."""
    dim = wrap_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


class Transpose(Function):
    output_may_view = True

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return gy.transpose()
        return gy.transpose(inverse_permutation(self.axes))


def inverse_permutation(axes):
    """The axes that undo ``transpose(axes)``."""
    inverse = [0] * len(axes)
    for position, axis in enumerate(axes):
        inverse[axis] = position
    return tuple(inverse)


def transpose(x, axes=None):
    return Transpose(None if axes is None else tuple(axes))(x)


class GetItem(Function):
    """``x[index]`` for basic and integer-array indexing."""
    output_may_view = True      # basic indexing gives a view, an index array a copy

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.x_shape, self.x_dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = backend.get_array_module()
        gx = xp.zeros(self.x_shape, dtype=self.x_dtype)
        xp.add.at(gx, self.index, gy)      # repeated indices must add up (CuPy has add.at from v12)
        return gx


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    return GetItem(index)(x)


def flatten(input, start_dim=1, end_dim=-1):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one (``nn.Flatten``'s default:
    all but the batch dimension; ``x.flatten()``, as ``torch.flatten``, starts at 0)."""
    check_tensor("flatten", "input", input, floating=False)
    check_int("flatten", "start_dim", start_dim)
    check_int("flatten", "end_dim", end_dim)
    if input.ndim == 0:
        return reshape(input, (1,))
    start = wrap_dim(start_dim, input.ndim, "flatten", "start_dim")
    end = wrap_dim(end_dim, input.ndim, "flatten", "end_dim")
    if start > end:
        raise ValueError(f"flatten(): start_dim {start_dim} comes after end_dim {end_dim}")
    shape = input.shape[:start] + (math.prod(input.shape[start:end + 1]),) + input.shape[end + 1:]
    return reshape(input, shape)
