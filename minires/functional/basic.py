"""Element-wise arithmetic, matrix multiply, reshaping and reductions.

Each operation is a Function (forward and backward side by side) followed by
its lowercase function. Arithmetic broadcasts as NumPy does; its backward
sums the gradient back to each input's shape with ``sum_to``.
"""
from minires import backend
from minires.autograd import Function, Tensor


def sum_to(g, shape):
    """Sum ``g`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if g.shape == shape:
        return g
    leading = g.ndim - len(shape)
    stretched = tuple(leading + i for i, n in enumerate(shape) if n == 1 and g.shape[leading + i] != 1)
    g = g.sum(axis=tuple(range(leading)) + stretched, keepdims=True)
    return g.reshape(shape)


class Add(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])


def add(a, b):
    return Add()(a, b)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy, self.shapes[1])


def sub(a, b):
    return Sub()(a, b)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        return sum_to(gy * self.b, self.a.shape), sum_to(gy * self.a, self.b.shape)


def mul(a, b):
    return Mul()(a, b)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        g_a = gy / self.b
        return sum_to(g_a, self.a.shape), sum_to(-g_a * self.a / self.b, self.b.shape)


def div(a, b):
    return Div()(a, b)


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def neg(x):
    return Neg()(x)


class Pow(Function):
    """``x ** p`` for a constant exponent ``p``."""

    def __init__(self, exponent):
        # a Python number: a NumPy float64 scalar would turn float32 data into float64
        self.exponent = exponent.item() if hasattr(exponent, "item") else exponent

    def forward(self, x):
        self.x = x
        return x ** self.exponent

    def backward(self, gy):
        return gy * self.exponent * self.x ** (self.exponent - 1)


def pow(x, exponent):
    return Pow(exponent)(x)


class Exp(Function):
    def forward(self, x):
        self.y = backend.get_array_module().exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


def exp(x):
    return Exp()(x)


class Log(Function):
    def forward(self, x):
        self.x = x
        return backend.get_array_module().log(x)

    def backward(self, gy):
        return gy / self.x


def log(x):
    return Log()(x)


class MatMul(Function):
    """``a @ b`` for 2-D operands (or batches of them, broadcast as NumPy does)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        xp = backend.get_array_module()
        g_a = gy @ xp.swapaxes(self.b, -1, -2)
        g_b = xp.swapaxes(self.a, -1, -2) @ gy
        return sum_to(g_a, self.a.shape), sum_to(g_b, self.b.shape)


def matmul(a, b):
    return MatMul()(a, b)


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.x_shape)


def reshape(x, shape):
    return Reshape(tuple(shape))(x)


class Transpose(Function):
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


class GetItem(Function):
    """``x[index]`` for basic and integer-array indexing."""

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


class ReLU(Function):
    def __init__(self, inplace):
        self.inplace = inplace

    def forward(self, x):
        xp = backend.get_array_module()
        self.y = xp.maximum(x, 0, out=x if self.inplace else None)
        return self.y               # kept for backward: y > 0 exactly where x > 0

    def backward(self, gy):
        return gy * (self.y > 0)


def relu(input, inplace=False):
    """max(input, 0) element-wise.

    ``inplace=True`` overwrites the input's array instead of making a new one
    (no allocation, one pass less over memory). Use it only where nothing else
    needs the input afterwards, e.g. right after a batch norm, whose backward
    does not use its output.
    """
    if inplace and input.requires_grad and input.creator is None:
        raise RuntimeError("relu(inplace=True) on a leaf tensor that requires grad would "
                           "overwrite the values its gradient is for; use inplace=False")
    return ReLU(inplace)(input)


class Linear(Function):
    """y = x W^T + b with x: (N, in), W: (out, in), b: (out,), y: (N, out)."""

    def forward(self, x, W, b=None):
        self.x, self.W = x, W
        y = x @ W.T                         # (N, out)
        return y if b is None else y + b

    def backward(self, gy):
        gx = gy @ self.W                    # (N, in)
        gW = gy.T @ self.x                  # (out, in)
        if len(self.needs_input_grad) == 2:     # no bias
            return gx, gW
        gb = gy.sum(axis=0)                 # (out,)
        return gx, gW, gb


def linear(input, weight, bias=None):
    """PyTorch's ``F.linear``: ``input @ weight.T + bias``."""
    if input.ndim != 2 or input.shape[1] != weight.shape[1]:
        raise ValueError(f"Linear({weight.shape[1]}, {weight.shape[0]}): expected input "
                         f"(N, {weight.shape[1]}), got {tuple(input.shape)}")
    if bias is None:
        return Linear()(input, weight)
    return Linear()(input, weight, bias)


def flatten(input, start_dim=1, end_dim=-1):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one (PyTorch's ``torch.flatten``)."""
    end_dim = end_dim % input.ndim
    shape = input.shape[:start_dim] + (-1,) + input.shape[end_dim + 1:]
    return reshape(input, shape)
