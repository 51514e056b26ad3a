"""Functions that move values without changing them: reshape (view, flatten, squeeze,
unsqueeze), transpose and indexing.

Their backward moves the gradient back the same way: reshape it to the input's
shape, transpose it by the inverse permutation, or scatter it into zeros at the
indexed places. Their output is a view of the input's memory where NumPy can
make one (then an in-place change of either shows in the other, as in PyTorch).
"""
import math
import numbers

import numpy

from minires import backend
from minires.arguments import check_int, check_tensor
from minires.autograd import Function, Tensor
from minires.errors import DimensionError, ShapeError
from minires.functional.arithmetic import sum_to


class Reshape(Function):
    output_may_view = True      # NumPy's reshape copies only where strides cannot express it

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError as error:     # a size that does not fit: PyTorch's RuntimeError too
            raise ShapeError(f"reshape of a tensor of shape {tuple(x.shape)} into {self.shape}: "
                             f"{error}") from None

    def backward(self, gy):
        return gy.reshape(self.x_shape)


def reshape(x, shape):
    return Reshape(tuple(shape))(x)


def view(x, shape):
    """PyTorch's ``x.view(shape)``: the elements in the order of ``x``'s (N, C, H, W) indices.

    PyTorch's tensors are laid out row-major in their own indices, so a view of
    any shape with the same number of elements shares their memory. minires keeps
    images channels-last behind (N, C, H, W) indices (``windows.py``), so the
    most common view of all, ``out.view(out.size(0), -1)`` after a convolution or
    a pooling, cannot share memory: its elements run c, h, w while memory runs
    h, w, c. ``view`` then copies, exactly when NumPy's ``reshape`` would (the
    values are always PyTorch's, as those of ``reshape`` and ``flatten``), and
    marks the copy: an in-place write into it (``relu(y, inplace=True)``) raises,
    since PyTorch would have written through to ``x`` and the copy cannot. A
    view that needs no copy (a channels-last image with C = 1 or H = W = 1, any
    row-major tensor) shares memory, and in-place writes reach ``x`` as in PyTorch.

    Unlike PyTorch, a view of a tensor the user transposed is also copied, not refused.
    """
    y = reshape(x, shape)
    xp = backend.get_array_module()
    if y.data.size and not xp.may_share_memory(y.data, x.data):
        y._version_counter.copied_by_view = f"view{tuple(shape)} of a tensor of shape {tuple(x.shape)}"
    return y


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
    """``x`` with its dimensions in the order ``axes`` (a permutation; None reverses them)."""
    if axes is not None:
        axes = tuple(wrap_dim(axis, x.ndim, "permute()", "dims") for axis in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ShapeError(f"permute{axes} of a tensor of shape {tuple(x.shape)}: the dimensions "
                             f"must be a permutation of 0 .. {x.ndim - 1}, each once")
    return Transpose(axes)(x)


class GetItem(Function):
    """``x[index]`` for basic and integer-array indexing, read as PyTorch reads it.

    ``index`` is one or two NumPy indices applied in turn (``split_index``):
    ``x[index[0]][index[1]]``.
    """
    output_may_view = True      # basic indexing gives a view, an index array a copy

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.x_shape, self.x_dtype = x.shape, x.dtype
        for part in self.index:
            x = x[part]
        return x

    def backward(self, gy):
        xp = backend.get_array_module()
        gx = xp.zeros(self.x_shape, dtype=self.x_dtype)
        *basic, last = self.index
        target = gx[basic[0]] if basic else gx      # a view: adding into it adds into gx
        xp.add.at(target, last, gy)     # repeated indices must add up (CuPy has add.at from v12)
        return gx


def getitem(x, index):
    return GetItem(split_index(index, backend.get_array_module()))(x)


def split_index(index, xp):
    """PyTorch's reading of ``x[index]`` as NumPy indices to apply in turn: ``[basic, arrays]``.

    PyTorch first applies the integers, slices, None and Ellipsis (a view), then
    the tensors (and lists) to what is left. NumPy counts an integer as one more
    index array, and puts the dimensions of non-adjacent index arrays first, so
    the two differ where a slice separates an integer from a tensor: for x of
    shape (5, 6, 7, 8, 9) and d of shape (3,), ``x[1, :, 3:11:2, d, 0:2]`` is
    (6, 2, 3, 2) in PyTorch, (3, 6, 2, 2) in NumPy. A 0-d integer tensor counts
    as an integer, as in PyTorch. Without tensors or lists, the index is one part.
    """
    parts = index if isinstance(index, tuple) else (index,)
    basic, arrays, has_array = [], [], False
    for part in parts:
        if isinstance(part, Tensor):
            part = part.data
        elif isinstance(part, (list, numpy.ndarray)):
            part = backend.to_device(part)          # host indices, on the array's device
        if isinstance(part, xp.ndarray) and part.ndim == 0 and part.dtype.kind in "iu":
            part = int(backend.to_host(part))       # a device read, as PyTorch's .item() here
        if isinstance(part, xp.ndarray):
            has_array = True
            basic += [slice(None)] * (part.ndim if part.dtype.kind == "b" else 1)
            arrays.append(part)
        else:
            basic.append(part)
            if part is Ellipsis:
                arrays.append(Ellipsis)
            elif not isinstance(part, (int, numpy.integer)):
                arrays.append(slice(None))          # a slice or None: its dimension stays
    if not has_array:
        return [tuple(basic)]
    if all(part == slice(None) or part is Ellipsis for part in basic):
        return [tuple(arrays)]
    return [tuple(basic), tuple(arrays)]
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


class Expand(Function):
    """x broadcast to ``shape`` without copying (a read-only view); backward sums gy back to x's shape."""
    output_may_view = True

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return backend.get_array_module().broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.x_shape)


def expand(x, shape):
    """PyTorch's ``x.expand(*sizes)``: size-1 dimensions stretched, new ones in front; -1 keeps a size."""
    leading = len(shape) - x.ndim
    if leading < 0:
        raise ShapeError(f"expand{tuple(shape)} of a tensor of shape {tuple(x.shape)}: give at least "
                         f"{x.ndim} sizes")
    shape = tuple(x.shape[d - leading] if n == -1 and d >= leading else n for d, n in enumerate(shape))
    return Expand(shape)(x)


class Repeat(Function):
    """x tiled ``repeats`` times along each dimension, as ``torch.Tensor.repeat`` (NumPy's ``tile``).

    x: (S_0, ..., S_k) (padded with leading 1s to len(repeats)), y: (R_0 S_0, ..., R_k S_k).
    Backward sums the R_d copies: gy seen as (R_0, S_0, ..., R_k, S_k), summed over the R axes.
    """

    def __init__(self, repeats):
        self.repeats = repeats

    def forward(self, x):
        self.x_shape = x.shape
        return backend.get_array_module().tile(x, self.repeats)

    def backward(self, gy):
        sizes = (1,) * (len(self.repeats) - len(self.x_shape)) + tuple(self.x_shape)
        split = [n for pair in zip(self.repeats, sizes) for n in pair]     # (R_0, S_0, R_1, S_1, ...)
        summed = gy.reshape(split).sum(axis=tuple(range(0, len(split), 2)))  # (S_0, ..., S_k)
        return summed.reshape(self.x_shape)


def repeat(x, repeats):
    if len(repeats) < x.ndim:
        raise ShapeError(f"repeat{tuple(repeats)} of a tensor of shape {tuple(x.shape)}: give at "
                         f"least {x.ndim} numbers of repeats")
    return Repeat(tuple(repeats))(x)


class Clone(Function):
    """A copy in new memory, still in the graph: y = x, gx = gy."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


def clone(x):
    """PyTorch's ``x.clone()``: a copy that later in-place changes of ``x`` do not reach."""
    check_tensor("clone()", "x", x, floating=False)
    return Clone()(x)


class Flip(Function):
    """x reversed along ``axes``; gx = gy reversed the same way."""

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return backend.get_array_module().flip(x, self.axes)

    def backward(self, gy):
        return backend.get_array_module().flip(gy, self.axes)


def flip(x, dims):
    check_tensor("flip()", "x", x, floating=False)
    axes = tuple(wrap_dim(d, x.ndim, "flip()", "dims")
                 for d in (dims if isinstance(dims, (tuple, list)) else (dims,)))
    if len(set(axes)) < len(axes):
        raise ValueError(f"flip(): dims must not repeat a dimension, got {dims!r}")
    return Flip(axes)(x)


class Roll(Function):
    """x shifted cyclically by ``shifts`` along ``axes`` (all elements flattened for None);
    gx = gy shifted back."""

    def __init__(self, shifts, axes):
        self.shifts, self.axes = shifts, axes

    def forward(self, x):
        return backend.get_array_module().roll(x, self.shifts, self.axes)

    def backward(self, gy):
        back = -self.shifts if isinstance(self.shifts, int) else tuple(-s for s in self.shifts)
        return backend.get_array_module().roll(gy, back, self.axes)


def roll(x, shifts, dims=None):
    """PyTorch's ``torch.roll``: elements pushed past the end come back at the start."""
    check_tensor("roll()", "x", x, floating=False)
    shift_list = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
    for shift in shift_list:
        check_int("roll()", "shifts", shift)
    if dims is not None:
        dim_list = dims if isinstance(dims, (tuple, list)) else (dims,)
        for dim in dim_list:
            wrap_dim(dim, x.ndim, "roll()", "dims")
        if len(dim_list) != len(shift_list):
            raise ValueError(f"roll(): shifts and dims must have the same length, got {shifts!r} and "
                             f"{dims!r}")
    elif len(shift_list) != 1:
        raise ValueError(f"roll(): shifts must be one int when dims is None, got {shifts!r}")
    return Roll(shifts if isinstance(shifts, int) else tuple(shifts), dims if dims is None or
                isinstance(dims, int) else tuple(dims))(x)


class Triangle(Function):
    """The lower (``tril``) or upper (``triu``) triangle of the last two dimensions, 0 elsewhere;
    gx is gy on the same triangle."""

    def __init__(self, name, diagonal):
        self.name, self.diagonal = name, diagonal

    def forward(self, x):
        return self._keep(x)

    def backward(self, gy):
        return self._keep(gy)

    def _keep(self, a):
        xp = backend.get_array_module()
        return xp.tril(a, self.diagonal) if self.name == "tril" else xp.triu(a, self.diagonal)


def _check_triangle(where, x, diagonal):
    if check_tensor(where, "x", x, floating=False).ndim < 2:
        raise ValueError(f"{where}: x must have at least 2 dimensions, got shape {tuple(x.shape)}")
    check_int(where, "diagonal", diagonal)


def tril(x, diagonal=0):
    _check_triangle("tril()", x, diagonal)
    return Triangle("tril", diagonal)(x)


def triu(x, diagonal=0):
    _check_triangle("triu()", x, diagonal)
    return Triangle("triu", diagonal)(x)
