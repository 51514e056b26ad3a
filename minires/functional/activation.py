"""Activations, element-wise (every array has x's shape) except softmax (along ``dim``):
relu, leaky_relu, sigmoid, tanh and softmax.

relu and leaky_relu can overwrite their input (``inplace=True``); that counts as
a change of the input's version (``autograd.VersionCounter``), so that a Function
that saved the input for its backward refuses to use the overwritten values.
Integer inputs of sigmoid, tanh and softmax are computed in float32.
"""
from minires import backend
from minires.arguments import check_bool, check_number, check_tensor
from minires.autograd import Function, refuse_write_to_copied_view
from minires.functional.casting import floating
from minires.functional.shaping import wrap_dim


def _overwrite(name, input):
    """Check that ``input`` may be overwritten in place, and count the change."""
    if input.requires_grad and input.creator is None:
        raise RuntimeError(f"{name}(inplace=True) on a leaf tensor that requires grad would "
                           "overwrite the values its gradient is for; use inplace=False")
    refuse_write_to_copied_view(f"{name}(inplace=True)", input)
    # counted before the call, so that the Function notes its output at the new version
    input._version_counter.value += 1


class ReLU(Function):
    saves_output = True

    def __init__(self, inplace):
        self.output_may_view = self.inplace = inplace   # in place, the output is the input's array

    def forward(self, x):
        xp = backend.get_array_module()
        self.y = xp.maximum(x, 0, out=x if self.inplace else None)
        return self.y               # kept for backward: y > 0 exactly where x > 0

    def backward(self, gy):
        return _relu_grad(gy, self.y)


@backend.fuse
def _relu_grad(gy, y):
    """gy where y > 0, else 0: one GPU kernel (``backend.fuse``), not a comparison and a product."""
    return gy * (y > 0)


def relu(input, inplace=False):
    """max(input, 0) element-wise.

    ``inplace=True`` overwrites the input's array instead of making a new one
    (no allocation, one pass less over memory). Use it only where nothing else
    needs the input afterwards, e.g. right after a batch norm, whose backward
    does not use its output; where a backward does need it, backward raises.
    """
    check_tensor("relu", "input", input, floating=False)
    if check_bool("relu", "inplace", inplace):
        _overwrite("relu", input)
    return ReLU(inplace)(input)


class LeakyReLU(Function):
    """y = x for x > 0, slope * x elsewhere; dy/dx = 1 or slope (slope at 0, as PyTorch)."""

    def __init__(self, negative_slope, inplace):
        self.negative_slope = negative_slope
        self.output_may_view = self.inplace = inplace

    def forward(self, x):
        xp = backend.get_array_module()
        one, slope = x.dtype.type(1), x.dtype.type(self.negative_slope)    # keep x's dtype
        self.dydx = xp.where(x > 0, one, slope)            # kept for backward instead of x
        return xp.multiply(x, self.dydx, out=x if self.inplace else None)

    def backward(self, gy):
        return gy * self.dydx


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """PyTorch's ``F.leaky_relu``: x for x > 0, negative_slope * x elsewhere."""
    check_tensor("leaky_relu", "input", input, floating=False)
    check_number("leaky_relu", "negative_slope", negative_slope)
    check_bool("leaky_relu", "inplace", inplace)
    input = floating(input)
    if inplace:
        _overwrite("leaky_relu", input)
    return LeakyReLU(negative_slope, inplace)(input)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x); dy/dx = y (1 - y)."""
    saves_output = True

    def forward(self, x):
        xp = backend.get_array_module()
        # 1 / (1 + e^-x) = exp(-log(e^0 + e^-x)): logaddexp never forms e^-x, which
        # overflows for x < -88 in float32
        self.y = xp.exp(-xp.logaddexp(0, -x))
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


def sigmoid(input):
    check_tensor("sigmoid", "input", input, floating=False)
    return Sigmoid()(floating(input))


class Tanh(Function):
    """y = tanh(x); dy/dx = 1 - y^2."""
    saves_output = True

    def forward(self, x):
        self.y = backend.get_array_module().tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


def tanh(input):
    check_tensor("tanh", "input", input, floating=False)
    return Tanh()(floating(input))


class Softmax(Function):
    """y = exp(x) / sum(exp(x)) along ``axis``; dx = y * (gy - sum(gy * y)) along it.

    x: (..., K, ...) with K the size of ``axis``; y and gx have x's shape.
    """
    saves_output = True

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = backend.get_array_module()
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))      # (..., K, ...) no overflow
        e /= e.sum(axis=self.axis, keepdims=True)                   # (..., K, ...) in place
        self.y = e
        return self.y

    def backward(self, gy):
        return self.y * (gy - (gy * self.y).sum(axis=self.axis, keepdims=True))


def softmax(input, dim):
    """PyTorch's ``F.softmax`` along ``dim``: positive values summing to 1 along it."""
    check_tensor("softmax", "input", input, floating=False)
    wrap_dim(dim, input.ndim, "softmax")
    return Softmax(dim)(floating(input))
