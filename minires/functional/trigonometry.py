"""Sine and cosine, element-wise: d sin(x)/dx = cos(x), d cos(x)/dx = -sin(x)."""
from minires import backend
from minires.arguments import check_tensor
from minires.autograd import Function
from minires.functional.casting import floating


class Sin(Function):
    saves_inputs = True

    def forward(self, x):
        self.x = x
        return backend.get_array_module().sin(x)

    def backward(self, gy):
        return gy * backend.get_array_module().cos(self.x)


class Cos(Function):
    saves_inputs = True

    def forward(self, x):
        self.x = x
        return backend.get_array_module().cos(x)

    def backward(self, gy):
        return -gy * backend.get_array_module().sin(self.x)


def sin(input):
    check_tensor("sin()", "input", input, floating=False)
    return Sin()(floating(input))


def cos(input):
    check_tensor("cos()", "input", input, floating=False)
    return Cos()(floating(input))
