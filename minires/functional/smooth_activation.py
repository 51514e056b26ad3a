"""Smooth activations, element-wise (every array has x's shape): gelu, silu, elu and softplus.

    gelu(x)     = x P(x), P the normal CDF           d/dx = P(x) + x p(x), p the normal density
                  ("tanh": P(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2, as PyTorch)
    silu(x)     = x s(x), s the sigmoid              d/dx = s(x) (1 + x (1 - s(x)))
    elu(x)      = x if x > 0, else a (e^x - 1)       d/dx = 1, or a e^x = elu(x) + a
    softplus(x) = log(1 + e^(b x)) / b, or x where b x > threshold (as PyTorch)
                                                     d/dx = s(b x), or 1
"""
import math

from minires import backend
from minires.arguments import check_choice, check_number, check_tensor
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
    check_tensor("silu()", "input", input, floating=False)
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
    check_tensor("elu()", "input", input, floating=False)
    check_number("elu()", "alpha", alpha)
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
    check_tensor("softplus()", "input", input, floating=False)
    check_number("softplus()", "beta", beta, low=0, low_open=True)
    check_number("softplus()", "threshold", threshold)
    return Softplus(beta, threshold)(floating(input))


def erf(x):
    """The error function, element-wise, to about 1e-15 (NumPy has none; CuPy's is in cupyx).

    Below |x| = 2, its Taylor series, 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1)), 40 terms;
    above, 1 - erfc(x) with erfc's continued fraction, e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x +
    (3/2)/(x + ...)))), 60 levels deep, evaluated from the bottom up.
    """
    xp = backend.get_array_module()
    a = xp.abs(x)
    small = xp.minimum(a, 2.0)
    term, series = small, small.copy()
    for n in range(1, 40):
        term = term * (-small * small / n)
        series += term / (2 * n + 1)
    series *= 2 / math.sqrt(math.pi)
    large = xp.maximum(a, 2.0)
    fraction = large
    for k in range(60, 0, -1):
        fraction = large + (k / 2) / fraction
    tail = 1 - xp.exp(-large * large) / (math.sqrt(math.pi) * fraction)
    return xp.sign(x) * xp.where(a < 2.0, series, tail)


class GELU(Function):
    def __init__(self, approximate):
        self.approximate = approximate

    def forward(self, x):
        xp = backend.get_array_module()
        self.x = x
        if self.approximate == "tanh":
            inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
            self.t = xp.tanh(inner)                                     # kept for backward
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + erf(x / math.sqrt(2)))                    # P(x), kept for backward
        return x * self.cdf

    def backward(self, gy):
        xp = backend.get_array_module()
        x = self.x
        if self.approximate == "tanh":
            d_inner = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
            return gy * (0.5 * (1 + self.t) + 0.5 * x * (1 - self.t * self.t) * d_inner)
        density = xp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)        # p(x)
        return gy * (self.cdf + x * density)


def gelu(input, approximate="none"):
    """PyTorch's ``F.gelu``: x P(x), exact (``approximate="none"``) or with tanh (``"tanh"``)."""
    check_tensor("gelu()", "input", input, floating=False)
    check_choice("gelu()", "approximate", approximate, ("none", "tanh"))
    return GELU(approximate)(floating(input))
