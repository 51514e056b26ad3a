"""Checks of chapter 11: the learner's own ``compare_gradients``, through ``gradcheck``, given
Functions whose backward is known.

It must pass correct backwards, catch wrong ones (among them one that a seed of ones would
hide) with a message naming the input and the element, and leave the inputs as they were.
"""
import numpy

import minires
from minires.autograd import Function
from minires.gradcheck import GradcheckError, gradcheck

from .compare import Wrong


class Square(Function):
    """y = x^2 with a backward made wrong on purpose where ``wrong`` says."""

    def __init__(self, wrong=None):
        self.wrong = wrong

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        gx = 2 * self.x * gy
        if self.wrong == "sign of one element":
            gx.flat[3] *= -1
        if self.wrong == "the mean of gy":      # right when gy is all ones, wrong otherwise
            gx = 2 * self.x * gy.mean()
        return gx


def _leaf(shape, seed, requires_grad=True):
    values = numpy.random.default_rng(seed).standard_normal(shape)
    return minires.Tensor(values, requires_grad=requires_grad)


def passes_right_backwards():
    a, b = _leaf((3, 4), 80), _leaf((4, 2), 81)
    for what, fn, inputs in [("x^2", lambda x: Square()(x), [_leaf((2, 3), 82)]),
                             ("a @ b", lambda a, b: a @ b, [a, b]),
                             ("tanh(a) with b needing no gradient", lambda a, b: minires.functional.tanh(a),
                              [a, _leaf((2,), 83, requires_grad=False)])]:
        try:
            result = gradcheck(fn, inputs)
        except GradcheckError as error:
            raise Wrong(f"{what}: gradcheck refused a right backward: {error}") from None
        if result is not True:
            raise Wrong(f"{what}: gradcheck returned {result!r}, expected True")


def catches_wrong_backwards():
    for wrong in ("sign of one element", "the mean of gy"):
        x = _leaf((2, 3), 84)
        try:
            gradcheck(lambda x, wrong=wrong: Square(wrong)(x), [x])
        except GradcheckError as error:
            message = str(error)
        else:
            raise Wrong(f"a wrong backward ({wrong}) passed"
                        + (" (a seed of ones hides it: draw gy at random)" if "mean" in wrong else ""))
        if wrong == "sign of one element" and not ("input 0" in message and "(1, 0)" in message):
            raise Wrong(f"the wrong sign is at input 0, element (1, 0); the message says: {message}")


def leaves_the_inputs_alone():
    x, c = _leaf((2, 3), 85), _leaf((3,), 86, requires_grad=False)
    before = x.data.copy(), c.data.copy()
    gradcheck(lambda x, c: Square()(x) * c, [x, c])
    if not (numpy.array_equal(x.data, before[0]) and numpy.array_equal(c.data, before[1])):
        raise Wrong("gradcheck changed its inputs' values: put every shifted element back")


def no_input_to_check():
    try:
        gradcheck(lambda x: x * 2.0, [_leaf((2,), 87, requires_grad=False)])
    except ValueError:
        return
    except GradcheckError as error:
        raise Wrong(f"no input requires a gradient: expected a ValueError, got GradcheckError: "
                    f"{error}") from None
    raise Wrong("no input requires a gradient, yet gradcheck raised no ValueError")


CHECKS = {
    "compare_gradients": [
        ("passes right backwards (x^2, a @ b, an input needing no gradient)", passes_right_backwards),
        ("catches a wrong sign (naming input and element) and one a seed of ones hides",
         catches_wrong_backwards),
        ("leaves its inputs' values as they were", leaves_the_inputs_alone),
        ("a ValueError when no input requires a gradient", no_input_to_check),
    ],
}
