"""Smooth activations, element-wise (every array has x's shape): silu, elu and softplus.

    silu(x)     = x s(x), s the sigmoid              d/dx = s(x) (1 + x (1 - s(x)))
    elu(x)      = x if x > 0, else a (e^x - 1)       d/dx = 1, or a e^x = elu(x) + a
    softplus(x) = log(1 + e^(b x)) / b, or x where b x > threshold (as PyTorch)
                                                     d/dx = s(b x), or 1
"""
from minires import backend
from minires.autograd import Function
from minires.functional.casting import floating


def _sigmoid(x):
    xp = backend.get_array_module()
    return xp.exp(-xp.logaddexp(0, -x))         # never forms e^-x, which overflows for x < -88


class SiLU(Function):
    def forward(self, x):
        self.x, self.s = x, _sigmoid(x)                    # both for backward
        return x * self.s

    def backward(self, gy):
        return gy * self.s * (1 + self.x * (1 - self.s))


def silu(input):
    """PyTorch's ``F.silu`` (the swish): x * sigmoid(x)."""
    return SiLU()(floating(input))


class ELU(Function):
    def __init__(self, alpha):
        self.alpha = alpha

    def forward(self, x):
        xp = backend.get_array_module()
        self.positive = x > 0
        self.alpha_exp = self.alpha * xp.exp(xp.minimum(x, 0))     # a e^x, the slope below 0
        return xp.where(self.positive, x, self.alpha_exp - self.alpha)

    def backward(self, gy):
        xp = backend.get_array_module()
        return gy * xp.where(self.positive, 1, self.alpha_exp).astype(gy.dtype)


def elu(input, alpha=1.0):
    """PyTorch's ``F.elu``."""
    return ELU(alpha)(floating(input))


class Softplus(Function):
    def __init__(self, beta, threshold):
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        xp = backend.get_array_module()
        bx = self.beta * x
        self.linear = bx > self.threshold
        self.slope = _sigmoid(bx)
        return xp.where(self.linear, x, xp.logaddexp(0, bx) / self.beta)

    def backward(self, gy):
        xp = backend.get_array_module()
        return gy * xp.where(self.linear, 1, self.slope).astype(gy.dtype)


def softplus(input, beta=1.0, threshold=20.0):
    """PyTorch's ``F.softplus``: a smooth relu, linear where beta * x > threshold."""
    return Softplus(beta, threshold)(floating(input))
