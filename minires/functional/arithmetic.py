"""Element-wise arithmetic: +, -, *, /, negation, powers, exp and log.

Each operation is a Function (forward and backward side by side) followed by
its lowercase function. Arithmetic broadcasts as NumPy does; its backward
sums the gradient back to each input's shape with ``sum_to``.
"""
from minires import backend
from minires.autograd import Function


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
