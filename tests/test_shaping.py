"""minires.functional.shaping: reshape, flatten, transpose / permute, indexing.

Reference values, then gradient checks (float64, random upstream gradient), then PyTorch parity.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.parity import check_layer, randn, rng_for


def test_getitem_repeated_index_adds_up():
    x = Tensor(numpy.zeros(3), requires_grad=True)
    x[numpy.array([0, 2, 0, 0])].sum().backward()
    numpy.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


# --- gradient checks ---------------------------------------------------------------------------

def test_reshape_and_flatten(rng):
    assert minires.gradcheck(lambda x: x.reshape(3, 8), [leaf(rng, 2, 3, 4)], **TOL)
    assert minires.gradcheck(lambda x: x.reshape((4, -1)), [leaf(rng, 2, 3, 2)], **TOL)
    assert minires.gradcheck(F.flatten, [leaf(rng, 2, 3, 2, 2)], **TOL)
    assert minires.gradcheck(lambda x: F.flatten(x, 0, 1), [leaf(rng, 2, 3, 2)], **TOL)


@pytest.mark.parametrize("axes", [None, (1, 2, 0), (2, 0, 1)])
def test_permute(rng, axes):
    fn = (lambda x: x.T) if axes is None else (lambda x: x.permute(*axes))
    assert minires.gradcheck(fn, [leaf(rng, 2, 3, 4)], **TOL)


def test_transpose_swaps_two_dimensions_as_pytorch(rng):
    x = leaf(rng, 2, 3, 4)
    assert x.transpose(0, 2).shape == (4, 3, 2) and x.transpose(-1, 1).shape == (2, 4, 3)
    numpy.testing.assert_array_equal(x.transpose(0, 2).numpy(), x.numpy().swapaxes(0, 2))
    assert minires.gradcheck(lambda x: x.transpose(1, 2), [x], **TOL)


@pytest.mark.parametrize("index", [(slice(None), slice(1, 3)), (1,), (Ellipsis, 0),
                                   (numpy.array([0, 2, 0, 0]),),
                                   (slice(None), numpy.array([1, 1, 3]))],
                         ids=["slice", "int", "ellipsis", "repeated_rows", "repeated_columns"])
def test_getitem(rng, index):
    x = leaf(rng, 3, 4)
    numpy.testing.assert_array_equal(x[index].numpy(), x.numpy()[index])
    assert minires.gradcheck(lambda x: x[index], [x], **TOL)


# --- PyTorch parity ----------------------------------------------------------------------------

def test_flatten_matches_torch(torch):
    check_layer(nn.Flatten(), torch.nn.Flatten(), randn(rng_for("flatten"), 2, 3, 4, 5), exact=True)
