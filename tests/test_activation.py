"""minires.functional.activation and nn.ReLU.

Gradient check (float64, random upstream gradient), PyTorch parity, errors.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.parity import check_layer, randn, rng_for


def test_relu(rng):
    x = leaf(rng, 3, 4)
    x.data[numpy.abs(x.data) < 0.05] += 0.2         # keep away from the kink at 0
    assert minires.gradcheck(F.relu, [x], **TOL)


# --- PyTorch parity ----------------------------------------------------------------------------

def test_relu_with_zeros_matches_torch(torch):
    # integer values put exact zeros in the input: both frameworks give them gradient 0
    x = rng_for("relu").integers(-2, 3, size=(3, 4, 5, 6)).astype(numpy.float32)
    check_layer(nn.ReLU(), torch.nn.ReLU(), x, exact=True)


def test_relu_random_matches_torch(torch):
    check_layer(nn.ReLU(), torch.nn.ReLU(), randn(rng_for("relu random"), 4, 7))


# --- errors ------------------------------------------------------------------------------------

def test_inplace_relu_on_a_leaf_that_requires_grad_is_refused():
    x = Tensor(numpy.array([-1.0, 2.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="inplace"):
        F.relu(x, inplace=True)
    numpy.testing.assert_array_equal(x.numpy(), [-1.0, 2.0])
    y = x * 1.0
    F.relu(y, inplace=True).sum().backward()     # a non-leaf may be overwritten
    numpy.testing.assert_array_equal(x.grad, [0.0, 1.0])
