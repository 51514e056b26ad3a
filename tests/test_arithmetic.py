"""minires.functional.arithmetic: +, -, *, / with broadcasting, neg, pow, exp, log, sum_to.

Reference values, then gradient checks (float64, random upstream gradient), then dtypes.
"""
import numpy
import pytest

import minires
from minires import Tensor
from minires.functional.arithmetic import sum_to
from tests.support.gradients import TOL, leaf


def test_basic_sum_to_reduces_broadcast_axes():
    g = numpy.ones((4, 2, 3))
    assert sum_to(g, (2, 1)).tolist() == [[12.0], [12.0]]
    assert sum_to(g, (3,)).tolist() == [8.0, 8.0, 8.0]
    assert sum_to(g, ()).item() == 24.0


def test_ndarray_on_the_left_defers_to_tensor():
    x = Tensor(numpy.asarray([1.0, 2.0], dtype=numpy.float64), requires_grad=True)
    y = numpy.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad, [3.0, 4.0])


# --- gradient checks ---------------------------------------------------------------------------

BROADCAST_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 3), (2, 1)), ((3,), (2, 3)),
                    ((2, 1), (1, 3)), ((2, 3), ())]


@pytest.mark.parametrize("shape_a, shape_b", BROADCAST_SHAPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_arithmetic_with_broadcasting(rng, op, shape_a, shape_b):
    a = leaf(rng, *shape_a)
    b = leaf(rng, *shape_b, low=0.5) if op == "div" else leaf(rng, *shape_b)   # b away from 0
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    assert minires.gradcheck(fn, [a, b], **TOL)


@pytest.mark.parametrize("fn", [lambda x: 2.5 + x, lambda x: 1 - x, lambda x: 3 * x,
                                lambda x: 2 / x, lambda x: x / 4, lambda x: -x],
                         ids=["radd", "rsub", "rmul", "rtruediv", "div_scalar", "neg"])
def test_scalar_operands_and_neg(rng, fn):
    assert minires.gradcheck(fn, [leaf(rng, 2, 3, low=0.5)], **TOL)


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.5])
def test_pow(rng, exponent):
    assert minires.gradcheck(lambda x: x ** exponent, [leaf(rng, 2, 3, low=0.5)], **TOL)


def test_exp_and_log(rng):
    assert minires.gradcheck(lambda x: x.exp(), [leaf(rng, 2, 3)], **TOL)
    assert minires.gradcheck(lambda x: x.log(), [leaf(rng, 2, 3, low=0.5)], **TOL)


# --- dtypes ------------------------------------------------------------------------------------

def test_float64_scalar_exponent_keeps_float32():
    x = Tensor(numpy.asarray([1.0, 2.0], dtype=numpy.float32), requires_grad=True)
    assert (x * numpy.float64(2.0)).dtype == numpy.float32
    assert (x ** numpy.float64(2.0)).dtype == numpy.float32
