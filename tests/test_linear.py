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


@pytest.mark.parametrize("shape", [(2, 5), (2, 4, 1), (4,)])
def test_linear_wrong_feature_count(shape):
    with pytest.raises(ValueError, match=rf"Linear\(4, 3\): expected input \(N, 4\), "
                                         rf"got {re_tuple(shape)}"):
        nn.Linear(4, 3)(Tensor(numpy.zeros(shape, dtype=numpy.float32)))
