"""Element-wise arithmetic: +, -, *, /, negation, powers, exp, log, log1p, square, sqrt, abs
and clamp.

Each operation is a Function (forward and backward side by side) followed by
its lowercase function. Every array has the shape of the (broadcast) inputs.
Arithmetic broadcasts as NumPy does; its backward sums the gradient back to
each input's shape with ``sum_to``. Operands of different dtypes are first cast
to the dtype PyTorch would compute in (``casting.promote``: an int tensor times
1.5 is float32), and exp, log and sqrt of an integer tensor give float32.
"""
import numpy

from minires import backend
from minires.arguments import check_tensor
from minires.autograd import Function, Tensor
from minires.functional.casting import floating, promote, result_type, to


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
    return Add()(*promote(a, b))


class Sub(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy, self.shapes[1])


def sub(a, b):
    if _is_bool(a) or _is_bool(b):
        raise RuntimeError("subtraction with a bool tensor is not supported (as in PyTorch); "
                           "to invert a mask use ~mask")
    return Sub()(*promote(a, b))


def _is_bool(value):
    return isinstance(value, (bool, numpy.bool_)) or getattr(value, "dtype", None) == numpy.bool_


class Mul(Function):
    saves_inputs = True

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        return sum_to(gy * self.b, self.a.shape), sum_to(gy * self.a, self.b.shape)


def mul(a, b):
    return Mul()(*promote(a, b))


class Div(Function):
    saves_inputs = True

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        g_a = gy / self.b
        return sum_to(g_a, self.a.shape), sum_to(-g_a * self.a / self.b, self.b.shape)


def div(a, b):
    """a / b, true division: integer tensors divide into float32, as PyTorch's ``/``."""
    return Div()(*promote(a, b, floating=True))


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def neg(x):
    return Neg()(x)


class Pow(Function):
    """``x ** p`` for a constant exponent ``p``: dy/dx = p x^(p-1), and 0 for p = 0
    (also at x = 0, where the formula reads 0 * inf), as PyTorch."""
    saves_inputs = True

    def __init__(self, exponent):
        # a Python number: a NumPy float64 scalar would turn float32 data into float64
        self.exponent = exponent.item() if hasattr(exponent, "item") else exponent

    def forward(self, x):
        self.x = x
        return x ** self.exponent

    def backward(self, gy):
        if self.exponent == 0:
            return backend.get_array_module().zeros_like(gy)
        return gy * self.exponent * self.x ** (self.exponent - 1)


class PowTensor(Function):
    """``x ** p`` for a Tensor exponent ``p`` (PyTorch's ``pow.Tensor_Tensor``), broadcast with x.

    dy/dx = p x^(p-1), taken as 0 where p = 0;  dy/dp = x^p ln x, taken as 0 where
    x = 0 and p >= 0. Those are PyTorch's choices: the limits from x > 0 at the
    places where the formulas read 0 * inf.
    """
    saves_inputs = True
    saves_output = True

    def forward(self, x, p):
        self.x, self.p = x, p
        self.y = x ** p
        return self.y

    def backward(self, gy):
        xp = backend.get_array_module()
        gx = gp = None
        with numpy.errstate(divide="ignore", invalid="ignore"):    # the 0 * inf that where() drops
            if self.needs_input_grad[0]:
                gx = sum_to(xp.where(self.p == 0, 0, gy * self.p * self.x ** (self.p - 1)),
                            self.x.shape)
            if self.needs_input_grad[1]:
                gp = sum_to(xp.where((self.x == 0) & (self.p >= 0), 0, gy * self.y * xp.log(self.x)),
                            self.p.shape)
        return gx, gp


def pow(x, exponent):
    """``x ** exponent`` for a number or Tensor exponent; ``2 ** x`` is ``pow(2, x)``."""
    if isinstance(exponent, Tensor):
        return PowTensor()(*promote(x, exponent))
    return Pow(exponent)(to(x, result_type(x, exponent)))


class Exp(Function):
    saves_output = True

    def forward(self, x):
        self.y = backend.get_array_module().exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


def exp(x):
    return Exp()(floating(x))


class Log(Function):
    saves_inputs = True

    def forward(self, x):
        self.x = x
        return backend.get_array_module().log(x)

    def backward(self, gy):
        return gy / self.x


def log(x):
    return Log()(floating(x))


class Log1p(Function):
    """y = log(1 + x), accurate for small x; dy/dx = 1 / (1 + x)."""
    saves_inputs = True

    def forward(self, x):
        self.x = x
        return backend.get_array_module().log1p(x)

    def backward(self, gy):
        return gy / (1 + self.x)


def log1p(x):
    check_tensor("log1p()", "x", x, floating=False)
    return Log1p()(floating(x))


def square(x):
    """x * x (PyTorch's ``x.square()``), through ``pow``: dy/dx = 2x."""
    check_tensor("square()", "x", x, floating=False)
    return pow(x, 2)


class Sqrt(Function):
    """y = sqrt(x); dy/dx = 1 / (2 y), inf at x = 0 (as PyTorch)."""
    saves_output = True

    def forward(self, x):
        self.y = backend.get_array_module().sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


def sqrt(x):
    return Sqrt()(floating(x))


class Abs(Function):
    """y = |x|; dy/dx = sign(x), 0 at x = 0 (as PyTorch)."""

    def forward(self, x):
        xp = backend.get_array_module()
        self.sign = xp.sign(x)          # the derivative, kept rather than x
        return xp.abs(x)

    def backward(self, gy):
        return gy * self.sign


def abs(x):
    return Abs()(x)


class Clamp(Function):
    """y = min(max(x, low), high); the gradient passes where clamping left x as it was
    (low <= x <= high, the bounds included, as PyTorch) and is 0 elsewhere."""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, x):
        y = backend.get_array_module().clip(x, self.low, self.high)
        self.unchanged = y == x         # (bool) where the gradient passes
        return y

    def backward(self, gy):
        return gy * self.unchanged


def clamp(input, min=None, max=None):
    """PyTorch's ``x.clamp(min, max)`` with number bounds; either may be None (no bound)."""
    if min is None and max is None:
        raise ValueError("clamp(): give min, max or both")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        raise TypeError("clamp(): the bounds must be numbers (Tensor bounds are not supported)")
    bounds = [b for b in (min, max) if b is not None]
    return Clamp(min, max)(to(input, result_type(input, *bounds)))
