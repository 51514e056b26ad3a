"""minires.functional.reduction: sum, mean, max over any axes, with keepdims.

Reference values, then gradient checks (float64, random upstream gradient), then dtypes.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor
from tests.support.gradients import TOL, distinct


def test_max_shares_the_gradient_between_ties():
    """As PyTorch's amax: tied maxima split the gradient, which still sums to the upstream one."""
    x = Tensor(numpy.array([[1.0, 1.0, 0.0], [2.0, 0.0, 2.0], [0.0, 3.0, 1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    y = Tensor(numpy.ones((2, 2), dtype=numpy.float32), requires_grad=True)
    y.max().backward()
    assert y.grad.dtype == numpy.float32
    numpy.testing.assert_array_equal(y.grad, numpy.full((2, 2), 0.25))


# --- gradient checks ---------------------------------------------------------------------------

AXES = [(None, False), (None, True), (0, False), (1, True), (-1, False), ((0, 2), False),
        ((0, 2), True)]


@pytest.mark.parametrize("axis, keepdims", AXES)
@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_reductions(rng, reduction, axis, keepdims):
    x = distinct(rng, 2, 3, 4)      # no ties, so max has one winner
    fn = lambda x: getattr(x, reduction)(axis=axis, keepdims=keepdims)
    expected = getattr(x.numpy(), reduction)(axis=axis, keepdims=keepdims)
    numpy.testing.assert_allclose(fn(x).numpy(), expected)
    assert minires.gradcheck(fn, [x], **TOL)


# --- dtypes ------------------------------------------------------------------------------------

def test_reduction_to_a_scalar_keeps_the_dtype():
    for dtype in (numpy.float32, numpy.float64):
        x = Tensor(numpy.asarray([[1.0, 2.0], [3.0, 4.0]], dtype=dtype), requires_grad=True)
        assert x.sum().dtype == dtype
        assert x.mean().dtype == dtype
        assert x.max().dtype == dtype
        assert F.cross_entropy(x, numpy.array([0, 1])).dtype == dtype
