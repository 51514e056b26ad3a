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
from tests.support.torch_oracle import same_as_torch


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


def test_view_matches_torch_and_shares_memory(rng):
    x = rng.standard_normal((2, 3, 4))
    same_as_torch(lambda x: x.view(6, 4), lambda x: x.view(6, 4), x)
    same_as_torch(lambda x: x.view((4, -1)), lambda x: x.view((4, -1)), x)
    same_as_torch(lambda x: x.view(-1), lambda x: x.view(-1), x)
    t = Tensor(x)
    assert numpy.shares_memory(t.view(24).data, t.data)
    # a view PyTorch allows on a transposed tensor: splitting a dimension
    same_as_torch(lambda x: x.transpose(0, 2).view(2, 2, 3, 2),
                  lambda x: x.transpose(0, 2).view(2, 2, 3, 2), x)


def test_view_of_memory_that_would_need_a_copy_is_refused_as_in_torch():
    x = Tensor(numpy.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="use reshape"):
        x.T.view(6)
    assert x.T.reshape(6).shape == (6,)      # reshape copies where it must


def test_flatten_method_and_function_match_torch(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    same_as_torch(lambda x: x.flatten(), lambda x: x.flatten(), x)
    same_as_torch(lambda x: x.flatten(1), lambda x: x.flatten(1), x)
    same_as_torch(lambda x: x.flatten(1, 2), lambda x: x.flatten(1, 2), x)
    same_as_torch(lambda x: x.flatten(-2), lambda x: x.flatten(-2), x)
    same_as_torch(lambda x: F.flatten(x), lambda x: x.flatten(1), x)    # nn.Flatten's default
    same_as_torch(lambda x: x.flatten(), lambda x: x.flatten(), numpy.array(3.0))
    with pytest.raises(ValueError, match="start_dim 2 comes after end_dim 1"):
        Tensor(x).flatten(2, 1)
    with pytest.raises(IndexError):
        Tensor(x).flatten(4)


def test_squeeze_and_unsqueeze_match_torch(rng):
    x = rng.standard_normal((1, 3, 1, 2))
    for dim in (None, 0, 2, -2, 1, (0, 2)):
        args = () if dim is None else (dim,)
        same_as_torch(lambda x: x.squeeze(*args), lambda x: x.squeeze(*args), x)
    for dim in (0, 2, 4, -1, -5):
        same_as_torch(lambda x: x.unsqueeze(dim), lambda x: x.unsqueeze(dim), x)
    same_as_torch(lambda x: x.squeeze(0), lambda x: x.squeeze(0), numpy.array(2.0))
    same_as_torch(lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1), numpy.array(2.0))


def test_squeeze_unsqueeze_view_gradcheck(rng):
    x = Tensor(rng.standard_normal((1, 3, 1, 2)), requires_grad=True)
    assert minires.gradcheck(lambda x: x.squeeze() * x.squeeze(), [x], **TOL)
    assert minires.gradcheck(lambda x: x.unsqueeze(-1) * 2.0, [x], **TOL)
    assert minires.gradcheck(lambda x: x.view(3, 2) * x.view(3, 2), [x], **TOL)
    assert minires.gradcheck(lambda x: x.flatten() ** 2, [x], **TOL)


def test_dimension_out_of_range_is_an_index_error_as_in_torch():
    x = Tensor(numpy.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"range of \[-2, 1\], but got 2"):
        x.squeeze(2)
    with pytest.raises(IndexError, match=r"range of \[-3, 2\], but got 3"):
        x.unsqueeze(3)
