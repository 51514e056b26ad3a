"""The rectified linear unit, max(x, 0)."""
from minires import backend
from minires.autograd import Function


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
