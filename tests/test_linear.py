"""minires.functional.linear and nn.Linear: matmul and y = x W^T + b.

Reference values with gradient checks (float64, random upstream gradient), PyTorch parity, errors.
"""


import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.parity import check_layer, randn, rng_for
from tests.support.torch_oracle import same_as_torch


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear(rng, with_bias):
    x, w, b = leaf(rng, 3, 4), leaf(rng, 2, 4), leaf(rng, 2)
    inputs = [x, w, b] if with_bias else [x, w]
    expected = x.numpy() @ w.numpy().T + (b.numpy() if with_bias else 0)
    numpy.testing.assert_allclose(F.linear(*inputs).numpy(), expected, rtol=1e-12)
    assert minires.gradcheck(F.linear, inputs, **TOL)


@pytest.mark.parametrize("shape_a, shape_b", [((2, 3), (3, 4)), ((2, 2, 3), (3, 4)),
                                              ((2, 2, 3), (2, 3, 4))])
def test_matmul(rng, shape_a, shape_b):
    assert minires.gradcheck(lambda a, b: a @ b, [leaf(rng, *shape_a), leaf(rng, *shape_b)], **TOL)


# --- PyTorch parity ----------------------------------------------------------------------------

def test_linear_matches_torch(torch):
    torch.manual_seed(0)
    check_layer(nn.Linear(in_features=7, out_features=4), torch.nn.Linear(7, 4),
                randn(rng_for("linear"), 5, 7))


# --- errors ------------------------------------------------------------------------------------

def re_tuple(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize("shape", [(2, 5), (2, 4, 1), (5,)])
def test_linear_wrong_feature_count(shape):
    with pytest.raises(ValueError, match=rf"Linear\(4, 3\): expected input \(N, 4\), "
                                         rf"got {re_tuple(shape)}"):
        nn.Linear(4, 3)(Tensor(numpy.zeros(shape, dtype=numpy.float32)))


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("x_shape", [(5, 4), (2, 3, 4), (2, 1, 3, 4), (4,)])
def test_linear_on_any_leading_dimensions_matches_torch(rng, x_shape):
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal((3, 4)), rng.standard_normal(3)
    same_as_torch(F.linear, lambda x, W, b: _torch().nn.functional.linear(x, W, b), x, W, b)
    same_as_torch(F.linear, lambda x, W: _torch().nn.functional.linear(x, W), x, W)


def test_linear_on_leading_dimensions_gradcheck(rng):
    x = Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    W = Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)
    assert minires.gradcheck(F.linear, [x, W, b], **TOL)


def test_linear_layer_on_a_sequence_of_features(rng):
    layer = nn.Linear(in_features=4, out_features=3)
    assert layer(Tensor(rng.standard_normal((2, 5, 4)).astype(numpy.float32))).shape == (2, 5, 3)


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (4, 3, 2)), ((4, 2, 3), (3,)),
    ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)), ((1, 2, 3), (5, 3, 4))])
def test_matmul_matches_torch_for_1d_and_batched_operands(rng, a_shape, b_shape):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    same_as_torch(lambda a, b: a @ b, lambda a, b: a @ b, a, b)


def test_matmul_with_1d_operands_gradcheck(rng):
    v = Tensor(rng.standard_normal(3), requires_grad=True)
    M = Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    batch = Tensor(rng.standard_normal((2, 3, 3)), requires_grad=True)
    assert minires.gradcheck(lambda v: v @ v, [v], **TOL)
    assert minires.gradcheck(lambda v, M: v @ M, [v, M], **TOL)
    assert minires.gradcheck(lambda v, M: M @ v, [v, M], **TOL)
    assert minires.gradcheck(lambda v, batch: v @ batch, [v, batch], **TOL)


def test_matmul_of_a_0d_operand_is_refused():
    with pytest.raises(ValueError):
        Tensor(numpy.array(2.0)) @ Tensor(numpy.ones(2))


def test_linear_with_a_broadcast_bias_gets_the_bias_shape_back(rng):
    """A (1, out) bias broadcasts in forward; its gradient is summed back to (1, out)."""
    x, w, b = leaf(rng, 5, 4), leaf(rng, 3, 4), leaf(rng, 1, 3)
    numpy.testing.assert_allclose(F.linear(x, w, b).numpy(), x.numpy() @ w.numpy().T + b.numpy(),
                                  rtol=1e-12)
    assert minires.gradcheck(F.linear, [x, w, b], **TOL)
    assert b.grad.shape == (1, 3)
