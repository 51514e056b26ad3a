"""minires.gradcheck, the public finite-difference checker, checked itself.

It must catch a backward wrong at one element and name it, catch a backward that ignores the
upstream gradient (so it draws a random one), leave the inputs as they were, and perturb module
parameters passed as inputs. The checks of each function live with the function's tests.
"""
import numpy
import pytest

import minires
from minires import Tensor
from tests.support.gradients import TOL, leaf


class WrongAtOneElement(minires.Function):
    """y = a * b whose backward for b is off by 0.5 at element (1, 2) only."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        gb = gy * self.a
        gb[1, 2] += 0.5
        return gy * self.b, gb


def test_gradcheck_catches_a_wrong_backward_and_names_the_worst_element(rng):
    a, b = leaf(rng, 2, 3), leaf(rng, 2, 3)
    with pytest.raises(minires.GradcheckError) as caught:
        minires.gradcheck(lambda a, b: WrongAtOneElement()(a, b), [a, b], **TOL)
    message = str(caught.value)
    assert "input 1 (2, 3) at (1, 2)" in message
    assert "1 of 6 elements out of tolerance" in message


class IgnoresUpstream(minires.Function):
    """y = 3 x with a backward that returns 3 whatever gradient arrives: right only for gy = 1."""

    def forward(self, x):
        return 3 * x

    def backward(self, gy):
        return numpy.full(gy.shape, 3.0)


def test_gradcheck_uses_a_random_upstream_gradient(rng):
    x = leaf(rng, 4)
    y = IgnoresUpstream()(x)
    y.backward(numpy.ones(4))
    numpy.testing.assert_allclose(x.grad, 3.0)      # a seed of ones would not notice
    x.grad = None
    with pytest.raises(minires.GradcheckError, match="input 0"):
        minires.gradcheck(lambda x: IgnoresUpstream()(x), [x], **TOL)


def test_gradcheck_passes_and_restores_the_inputs(rng):
    x, w = leaf(rng, 2, 3), leaf(rng, 3)
    before = x.numpy(), w.numpy()
    assert minires.gradcheck(lambda x, w: x * w, [x, w], **TOL) is True
    numpy.testing.assert_array_equal(x.numpy(), before[0])
    numpy.testing.assert_array_equal(w.numpy(), before[1])


class WrongWeightScale(minires.nn.Module):
    """y = x * w with w: (2, 3), through ``WrongAtOneElement``: dy/dw is wrong at (1, 2)."""

    def __init__(self):
        super().__init__()
        self.weight = minires.nn.Parameter(numpy.linspace(0.5, 1.5, 6).reshape(2, 3))

    def forward(self, x):
        return WrongAtOneElement()(x, self.weight)


def test_gradcheck_over_module_parameters(rng):
    """Parameters passed as ignored inputs are still perturbed in place, so they are checked."""
    layer = minires.nn.Linear(3, 2).double()
    x = leaf(rng, 4, 3)
    assert minires.gradcheck(lambda x, w, b: layer(x), [x, layer.weight, layer.bias], **TOL)
    broken = WrongWeightScale()
    assert broken.weight.dtype == numpy.float64
    with pytest.raises(minires.GradcheckError, match=r"input 1 \(2, 3\) at \(1, 2\)"):
        minires.gradcheck(lambda x, w: broken(x), [leaf(rng, 2, 3), broken.weight], **TOL)


# --- errors ------------------------------------------------------------------------------------

def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input requires a gradient"):
        minires.gradcheck(lambda x: x * 2, [Tensor(numpy.ones(3))])
