"""Choosing elements by a condition or by an index: where, masked_fill, maximum and minimum,
gather and index_select, and their inverse, scatter and scatter_add.

    y = minires.where(x > 0, x, 0.1 * x)                  # condition, then the two choices
    scores = scores.masked_fill(padding_mask, -1e9)
    picked = log_probs.gather(1, labels.unsqueeze(1))     # (N, 1): each row's label

Backward sends each gradient to where its value came from: to the chosen input
(where, masked_fill, maximum), or, for an index, back to the indexed positions,
adding up where an index repeats (gather, index_select). Operands of different
dtypes are cast to PyTorch's common one first (``casting.promote``).
"""
import numbers

from minires import backend
from minires.arguments import check_indices, check_operands, check_tensor
from minires.autograd import Function, Tensor
from minires.functional.arithmetic import sum_to
from minires.functional.casting import promote
from minires.functional.shaping import wrap_dim


def _array(value):
    """The array of a Tensor, or host data on the active device (a mask, an index)."""
    return value.data if isinstance(value, Tensor) else backend.to_device(value)


class Where(Function):
    """y = a where condition, else b; all three broadcast to y's shape."""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        xp = backend.get_array_module()
        self.shapes = (a.shape, b.shape)
        return xp.where(self.condition, a, b)

    def backward(self, gy):
        xp = backend.get_array_module()
        zero = xp.zeros((), dtype=gy.dtype)
        return (sum_to(xp.where(self.condition, gy, zero), self.shapes[0]),
                sum_to(xp.where(self.condition, zero, gy), self.shapes[1]))


def where(condition, input, other):
    """PyTorch's ``torch.where(condition, input, other)``: ``input`` where ``condition`` holds."""
    check_operands("where()", ("condition", "input", "other"), (condition, input, other))
    condition = _array(condition)
    if condition.dtype.kind != "b":
        raise TypeError(f"where(): the condition must be a bool tensor, got dtype {condition.dtype}")
    a, b = promote(input, other)
    return Where(condition)(a, b)


def masked_fill(input, mask, value):
    """``input`` with ``value`` where ``mask`` (bool, broadcast to input's shape) holds."""
    check_operands("masked_fill()", ("input", "mask"), (input, mask))
    if not isinstance(value, numbers.Number) and getattr(value, "ndim", None) != 0:
        raise TypeError(f"masked_fill(): value must be a number or a 0-d tensor, got {type(value).__name__}")
    mask = _array(mask)
    if mask.dtype.kind != "b":
        raise TypeError(f"masked_fill(): the mask must be a bool tensor, got dtype {mask.dtype}")
    xp = backend.get_array_module()
    value = value.data if isinstance(value, Tensor) else value
    filled = Tensor(xp.asarray(value, dtype=input.dtype))      # a 0-d constant: no gradient
    return Where(mask)(filled, input)


class Maximum(Function):
    """y = max(a, b) element-wise; a tie sends half of the gradient to each, as PyTorch."""
    saves_inputs = True

    def __init__(self, sign):
        self.sign = sign        # 1 for maximum, -1 for minimum

    def forward(self, a, b):
        xp = backend.get_array_module()
        self.a, self.b = a, b
        return xp.maximum(a, b) if self.sign > 0 else xp.minimum(a, b)

    def backward(self, gy):
        a_wins = (self.sign * (self.a - self.b) > 0) + 0.5 * (self.a == self.b)  # 1, 0.5 or 0
        return sum_to(gy * a_wins, self.a.shape), sum_to(gy * (1 - a_wins), self.b.shape)


def maximum(input, other):
    check_operands("maximum()", ("input", "other"), (input, other))
    return Maximum(1)(*promote(input, other))


def minimum(input, other):
    check_operands("minimum()", ("input", "other"), (input, other))
    return Maximum(-1)(*promote(input, other))


class Gather(Function):
    """y[i][j][k] = x[i][index[i][j][k]][k] along ``axis`` 1 (as ``torch.gather``); y has index's shape.

    Backward adds gy at the gathered positions (``add.at``: an index may repeat).
    """

    def __init__(self, index, axis):
        self.index, self.axis = index, axis

    def forward(self, x):
        xp = backend.get_array_module()
        self.x_shape = x.shape
        # index may be shorter than x outside axis (as in PyTorch): read only the part it covers
        covered = tuple(slice(None) if d == self.axis else slice(0, n)
                        for d, n in enumerate(self.index.shape))
        return xp.take_along_axis(x[covered], self.index, axis=self.axis)

    def backward(self, gy):
        xp = backend.get_array_module()
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        xp.add.at(gx, _positions(self.index, self.axis), gy)
        return gx


def _positions(index, axis):
    """The full index of the elements that ``index`` names along ``axis`` (gather's and scatter's):
    position [i, j, k] of index (axis 1) stands for the element [i, index[i, j, k], k]."""
    xp = backend.get_array_module()
    positions = [xp.arange(n).reshape([n if e == d else 1 for e in range(index.ndim)])   # (1, .., n, .., 1)
                 for d, n in enumerate(index.shape)]
    positions[axis] = index
    return tuple(positions)


def gather(input, dim, index):
    """PyTorch's ``torch.gather``: ``index`` (int64, input's ndim) picks along ``dim``."""
    check_tensor("gather()", "input", input, floating=False)
    index = _array(index)
    axis = wrap_dim(dim, input.ndim, "gather()")
    check_indices("gather()", "index", index, input.shape[axis])
    if index.ndim != input.ndim:
        raise ValueError(f"gather(): index must have as many dimensions as input ({input.ndim}), "
                         f"got {index.ndim}")
    if any(n > m for d, (n, m) in enumerate(zip(index.shape, input.shape)) if d != axis):
        raise ValueError(f"gather(): index of shape {tuple(index.shape)} is larger than input "
                         f"{tuple(input.shape)} outside dimension {dim}")
    return Gather(index, axis)(input)


class IndexSelect(Function):
    """y = x with the entries ``index`` (1-D) along ``axis``; backward adds gy back (repeats add up)."""

    def __init__(self, index, axis):
        self.index, self.axis = index, axis

    def forward(self, x):
        xp = backend.get_array_module()
        self.x_shape = x.shape
        return xp.take(x, self.index, axis=self.axis)

    def backward(self, gy):
        xp = backend.get_array_module()
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        xp.add.at(gx, (slice(None),) * self.axis + (self.index,), gy)
        return gx


def index_select(input, dim, index):
    """PyTorch's ``torch.index_select``: the entries ``index`` (1-D int) of ``input`` along ``dim``."""
    check_tensor("index_select()", "input", input, floating=False)
    index = _array(index)
    axis = wrap_dim(dim, input.ndim, "index_select()")
    check_indices("index_select()", "index", index, input.shape[axis])
    if index.ndim > 1:
        raise ValueError(f"index_select(): index must be 1-D, got shape {tuple(index.shape)}")
    return IndexSelect(index.reshape(-1), axis)(input)


class Scatter(Function):
    """y = x with src written (``add=False``) or added (``add=True``) at the elements ``index``
    names along ``axis`` (see ``_positions``). gx = gy, but 0 at the overwritten places;
    gsrc = gy read at those places (gather's forward)."""

    def __init__(self, index, axis, add):
        self.index, self.axis, self.add = index, axis, add

    def forward(self, x, src):
        xp = backend.get_array_module()
        self.src_shape = src.shape
        y = x.copy()
        src = xp.broadcast_to(src, self.index.shape)
        if self.add:
            xp.add.at(y, _positions(self.index, self.axis), src)
        else:
            y[_positions(self.index, self.axis)] = src
        return y

    def backward(self, gy):
        places = _positions(self.index, self.axis)
        gx = gy
        if not self.add:
            gx = gy.copy()
            gx[places] = 0
        return gx, sum_to(gy[places], self.src_shape)


def _broadcasts_to(shape, target):
    return len(shape) <= len(target) and all(n in (1, m) for n, m in zip(shape[::-1], target[::-1]))


def _scatter(name, input, dim, index, src, add):
    check_tensor(f"{name}()", "input", input, floating=False)
    index = _array(index)
    if index.ndim != input.ndim:
        raise ValueError(f"{name}(): index must have as many dimensions as input ({input.ndim}), "
                         f"got {index.ndim}")
    check_indices(f"{name}()", "index", index, input.shape[wrap_dim(dim, input.ndim, f"{name}()")])
    if not isinstance(src, numbers.Number) and \
            not _broadcasts_to(check_tensor(f"{name}()", "src", src, floating=False).shape, index.shape):
        raise ValueError(f"{name}(): src of shape {tuple(src.shape)} does not broadcast to index's "
                         f"shape {tuple(index.shape)}")
    src = src if isinstance(src, Tensor) else Tensor(backend.to_device(src), dtype=input.dtype)
    input, src = promote(input, src)
    return Scatter(index, wrap_dim(dim, input.ndim, f"{name}()"), add)(input, src)


def scatter(input, dim, index, src=None, value=None):
    """PyTorch's ``x.scatter(dim, index, src)`` (or ``value=``): src written where index points.
    An element written twice takes one of the values, as undefined in PyTorch too."""
    return _scatter("scatter", input, dim, index, src if value is None else value, add=False)


def scatter_add(input, dim, index, src):
    """PyTorch's ``x.scatter_add(dim, index, src)``: src added where index points; repeats add up."""
    return _scatter("scatter_add", input, dim, index, src, add=True)
