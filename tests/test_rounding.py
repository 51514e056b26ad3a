"""minires.functional.rounding and trigonometry: floor, ceil, round, sign, //, % and sin, cos."""
import numpy
import pytest

import minires
from minires import Tensor
from tests.support.gradients import TOL, leaf
from tests.support.torch_oracle import same_as_torch


def test_gradchecks(rng):
    assert minires.gradcheck(lambda x: x.sin() * x.cos(), [leaf(rng, 3, 2)], **TOL)
    b = Tensor(rng.random((3, 2)) + 0.5, requires_grad=True)
    assert minires.gradcheck(lambda a, b: a % b, [leaf(rng, 3, 2), b], **TOL)


def test_functions_match_torch(rng):
    pytest.importorskip("torch")
    x = numpy.concatenate([rng.standard_normal(6) * 3, [0.5, 1.5, -2.5, 0.0, -0.0]])
    for name in ("floor", "ceil", "round", "sign", "sin", "cos"):
        same_as_torch(lambda x: getattr(x, name)(), lambda x: getattr(x, name)(), x)
    same_as_torch(lambda x: x.round(decimals=1), lambda x: x.round(decimals=1), x)
    same_as_torch(lambda a, b: a % b, lambda a, b: a % b, x, rng.standard_normal(11) + 3)
    same_as_torch(lambda a: 2.5 % a, lambda a: 2.5 % a, x + 10, grad=False)    # torch: no derivative
    same_as_torch(lambda a: a // 0.7, lambda a: a // 0.7, x, grad=False)     # torch: no derivative


def test_integer_division_and_remainder_follow_torch():
    torch = pytest.importorskip("torch")
    a, b = numpy.array([7, -7, 7, -7, 0]), numpy.array([2, 2, -2, -2, 3])
    for op in (lambda a, b: a // b, lambda a, b: a % b, lambda a, b: a // 3, lambda a, b: 17 % b):
        got, expected = op(Tensor(a), Tensor(b)), op(torch.tensor(a), torch.tensor(b))
        assert got.dtype == numpy.int64
        numpy.testing.assert_array_equal(got.numpy(), expected.numpy())
    assert Tensor(numpy.arange(3)).floor().dtype == numpy.int64
