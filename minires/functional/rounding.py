"""Piecewise-constant functions and integer division: floor, ceil, round, sign, ``//`` and ``%``.

floor, ceil, round and sign are constant between their jumps, so their gradient
is 0 (PyTorch's choice too). ``a % b`` is PyTorch's ``remainder``, with the sign
of b as Python's, and d(a % b)/da = 1, d(a % b)/db = -floor(a / b). ``a // b``
floors the quotient, as PyTorch's ``//`` (``torch.floor_divide`` rounds toward
negative infinity since 1.13); integer tensors stay integers.
"""
from minires import backend
from minires.arguments import check_operands, check_tensor
from minires.autograd import Function
from minires.functional.arithmetic import sum_to
from minires.functional.casting import promote


class Stepwise(Function):
    """y = ``name``(x) for a piecewise-constant ``name``; gx = 0."""

    def __init__(self, name, decimals=0):
        self.name, self.decimals = name, decimals

    def forward(self, x):
        xp = backend.get_array_module()
        self.x_shape, self.x_dtype = x.shape, x.dtype
        if self.name == "round":
            return xp.round(x, self.decimals)       # halves to even, as PyTorch
        return {"floor": xp.floor, "ceil": xp.ceil, "sign": xp.sign}[self.name](x)

    def backward(self, gy):
        return backend.get_array_module().zeros(self.x_shape, dtype=gy.dtype)


def floor(input):
    check_tensor("floor()", "input", input, floating=False)
    return Stepwise("floor")(input) if input.dtype.kind == "f" else input


def ceil(input):
    check_tensor("ceil()", "input", input, floating=False)
    return Stepwise("ceil")(input) if input.dtype.kind == "f" else input


def round(input, decimals=0):
    return Stepwise("round", decimals)(input) if input.dtype.kind == "f" else input


def sign(input):
    check_tensor("sign()", "input", input, floating=False)
    return Stepwise("sign")(input)


class Remainder(Function):
    saves_inputs = True

    def forward(self, a, b):
        self.a, self.b = a, b
        return backend.get_array_module().remainder(a, b)

    def backward(self, gy):
        xp = backend.get_array_module()
        return sum_to(gy, self.a.shape), sum_to(-gy * xp.floor(self.a / self.b), self.b.shape)


def remainder(a, b):
    """PyTorch's ``a % b``: a - b * floor(a / b), the sign of b."""
    check_operands("remainder()", ("a", "b"), (a, b))
    return Remainder()(*promote(a, b))


class FloorDivide(Function):
    """y = floor(a / b); a step function of both, so both gradients are 0."""

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return backend.get_array_module().floor_divide(a, b)

    def backward(self, gy):
        xp = backend.get_array_module()
        return xp.zeros(self.shapes[0], dtype=gy.dtype), xp.zeros(self.shapes[1], dtype=gy.dtype)


def floor_divide(a, b):
    """PyTorch's ``a // b``: the quotient rounded toward negative infinity."""
    check_operands("floor_divide()", ("a", "b"), (a, b))
    return FloorDivide()(*promote(a, b))
