"""minires.functional.activation and nn.ReLU.

Gradient check (float64, random upstream gradient), PyTorch parity, errors.
"""
import warnings

import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.parity import check_layer, randn, rng_for
from tests.support.torch_oracle import same_as_torch


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


def _tf():
    return pytest.importorskip("torch").nn.functional


def test_activations_gradcheck(rng):
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    for fn in (F.sigmoid, F.tanh, lambda x: F.softmax(x, dim=1), lambda x: F.softmax(x, 0),
               F.leaky_relu, lambda x: F.leaky_relu(x, negative_slope=0.2)):
        assert minires.gradcheck(fn, [x], **TOL)


def test_activations_match_torch_including_zero_and_extremes():
    x = numpy.array([[-1000.0, -30.0, -1.0, 0.0], [0.5, 2.0, 30.0, 1000.0]])
    same_as_torch(F.sigmoid, lambda x: _tf().sigmoid(x), x)
    same_as_torch(F.tanh, lambda x: _tf().tanh(x), x)
    same_as_torch(F.leaky_relu, lambda x: _tf().leaky_relu(x), x)
    same_as_torch(lambda x: F.leaky_relu(x, 0.3), lambda x: _tf().leaky_relu(x, 0.3), x)
    for dim in (0, 1, -1):
        same_as_torch(lambda x: F.softmax(x, dim), lambda x: _tf().softmax(x, dim), x)


def test_tensor_methods_match_torch(rng):
    x = rng.standard_normal((2, 5)).astype(numpy.float32)
    close = dict(rtol=1e-6, atol=1e-7)
    same_as_torch(lambda x: x.sigmoid(), lambda x: x.sigmoid(), x, **close)
    same_as_torch(lambda x: x.tanh(), lambda x: x.tanh(), x, **close)
    same_as_torch(lambda x: x.softmax(1), lambda x: x.softmax(1), x, **close)
    same_as_torch(lambda x: x.log_softmax(-1), lambda x: x.log_softmax(-1), x, rtol=1e-5, atol=1e-6)
    same_as_torch(lambda x: (x * 1.0).relu(), lambda x: (x * 1.0).relu(), x, **close)


def test_sigmoid_of_large_negative_float32_neither_overflows_nor_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.sigmoid(Tensor(numpy.array([-1000.0, -80.0, -60.0, 90.0], dtype=numpy.float32)))
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(y.numpy(), [0.0, numpy.exp(-80.0), numpy.exp(-60.0), 1.0],
                                  rtol=1e-5)       # relative accuracy kept far below 1e-30


def test_integer_inputs_give_float32_as_torch():
    ints = numpy.array([-2, 0, 3])
    same_as_torch(F.sigmoid, lambda x: _tf().sigmoid(x), ints, rtol=1e-6)
    same_as_torch(F.tanh, lambda x: _tf().tanh(x), ints, rtol=1e-6)


def test_leaky_relu_in_place_overwrites_and_counts_a_version():
    x = Tensor(numpy.array([-2.0, 3.0]), requires_grad=True)
    h = x * 1.0
    y = F.leaky_relu(h, 0.5, inplace=True)
    assert y.data is h.data and h._version == 1
    numpy.testing.assert_array_equal(h.numpy(), [-1.0, 3.0])
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad, [0.5, 1.0])
    with pytest.raises(RuntimeError, match="leaky_relu\\(inplace=True\\) on a leaf"):
        F.leaky_relu(x, inplace=True)
