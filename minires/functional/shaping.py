"""Functions that move values without changing them: reshape, transpose, indexing, flatten.

Their backward moves the gradient back the same way: reshape it to the input's
shape, transpose it by the inverse permutation, or scatter it into zeros at the
indexed places.
"""
from minires import backend
from minires.autograd import Function, Tensor


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


def flatten(input, start_dim=1, end_dim=-1):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one (PyTorch's ``torch.flatten``)."""
    end_dim = end_dim % input.ndim
    shape = input.shape[:start_dim] + (-1,) + input.shape[end_dim + 1:]
    return reshape(input, shape)
