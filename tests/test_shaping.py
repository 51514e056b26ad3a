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
    x = Tensor(numpy.zeros((2, 3)), requires_grad=True)
    x[Tensor(numpy.array([0, 1, 0])), Tensor(numpy.array([2, 2, 2]))].sum().backward()
    numpy.testing.assert_array_equal(x.grad, [[0.0, 0.0, 2.0], [0.0, 0.0, 1.0]])


INDEXES_WITH_TENSORS = [
    lambda T: (1, slice(None), slice(3, 11, 2), T([0, 1, 2, 1]), slice(0, 2)),  # PyTorch != NumPy
    lambda T: (T([1, 0, 1]), T([2, 2, 0])),                                     # x[i, j]
    lambda T: (slice(None), T([3, 0, 3])),                                      # x[:, t, :]
    lambda T: (T([0, 2]), slice(None), T(2)),                                   # a 0-d tensor: an int
    lambda T: (None, T([0, 1]), Ellipsis, T([1, 1])),
    lambda T: (slice(None), T(numpy.eye(6, 7) > 0)),                            # a mask of 2 dims
    lambda T: (Ellipsis, [0, 0, 3]),                                            # a list is a tensor
    lambda T: (2, T([[0, 1], [1, 1]]), slice(1, None)),
]


@pytest.mark.parametrize("index", INDEXES_WITH_TENSORS)
def test_tensors_anywhere_in_an_index_follow_torch(rng, index):
    """Issue 17, idiom 5: Tensors inside an index tuple, with PyTorch's placement of the
    advanced-indexed dimensions, forward and backward (repeated indices add up)."""
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((5, 6, 7, 8, 9))

    def minires_tensor(value):
        return Tensor(numpy.asarray(value))
    same_as_torch(lambda x: x[index(minires_tensor)], lambda x: x[index(torch.tensor)], x)


def test_getitem_with_tensors_gradcheck(rng):
    i, j = Tensor(numpy.array([1, 0, 1])), Tensor(numpy.array([2, 0, 2]))
    assert minires.gradcheck(lambda x: x[i, :, j], [leaf(rng, 2, 3, 3)], **TOL)
    assert minires.gradcheck(lambda x: x[1, :, j], [leaf(rng, 2, 3, 3)], **TOL)


def test_getitem_one_array_index_adds_up():
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


def test_view_of_a_transposed_tensor_copies_and_refuses_in_place_writes_through_it():
    x = Tensor(numpy.arange(6.0).reshape(2, 3))
    flat = x.T.view(6)                          # PyTorch refuses this view; minires copies
    numpy.testing.assert_array_equal(flat.numpy(), x.T.reshape(6).numpy())
    assert not numpy.shares_memory(flat.data, x.data)
    with pytest.raises(RuntimeError, match="would not reach the input"):
        F.relu(flat, inplace=True)


@pytest.mark.parametrize("pool", ["max", "avg", "conv"])
def test_view_after_a_convolution_or_pooling_gives_torchs_nchw_order(rng, pool):
    """Issue 17, idiom 1: ``out.view(out.size(0), -1)`` of a channels-last image is PyTorch's
    (N, C*H*W) in c, h, w order, forward and backward; reshape and flatten agree with it."""
    torch = pytest.importorskip("torch")
    weight = rng.standard_normal((4, 3, 3, 3))

    def head(F_, x, view):
        w = x.new_tensor(weight) if hasattr(x, "new_tensor") else Tensor(weight)
        out = {"max": lambda: F_.max_pool2d(x, 2), "avg": lambda: F_.avg_pool2d(x, 2),
               "conv": lambda: F_.conv2d(x, w, padding=1)}[pool]()
        return view(out)

    x = rng.standard_normal((2, 3, 10, 10))
    for view in (lambda out: out.view(out.size(0), -1), lambda out: out.view(-1),
                 lambda out: out.view(out.size(0), out.size(1), -1),
                 lambda out: out.reshape(out.size(0), -1), lambda out: out.flatten(1)):
        same_as_torch(lambda x: head(F, x, view), lambda x: head(torch.nn.functional, x, view), x)


def test_in_place_writes_through_a_view_reach_the_input_or_are_refused():
    """Where view shares memory, an in-place relu changes the input as in PyTorch; where it had
    to copy (channels-last memory), the write would miss the input, so it raises."""
    image = F.max_pool2d(Tensor(numpy.linspace(-1, 1, 2 * 4 * 4 * 4).reshape(2, 4, 4, 4)), 2)
    copied = image.view(2, -1)
    with pytest.raises(RuntimeError, match=r"view\(2, -1\) of a tensor of shape \(2, 4, 2, 2\)"):
        F.relu(copied, inplace=True)
    with pytest.raises(RuntimeError, match="would not reach the input"):
        F.dropout(copied.detach(), 0.5, inplace=True)
    assert F.relu(copied).shape == (2, 16)       # out of place is fine
    one_channel = F.max_pool2d(Tensor(numpy.linspace(-1, 1, 2 * 4 * 4).reshape(2, 1, 4, 4)), 2)
    shared = one_channel.view(2, -1)            # C = 1: channels-last is row-major too
    assert numpy.shares_memory(shared.data, one_channel.data)
    F.relu(shared, inplace=True)
    assert (one_channel.numpy() >= 0).all() and one_channel._version == 1


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


# --- issue 17: expand, repeat, clone ------------------------------------------------------------

def test_expand_repeat_clone_gradcheck(rng):
    assert minires.gradcheck(lambda x: x.expand(2, 3, 4), [leaf(rng, 3, 1)], **TOL)
    assert minires.gradcheck(lambda x: x.expand(-1, 4) * x, [leaf(rng, 3, 1)], **TOL)
    assert minires.gradcheck(lambda x: x.repeat(2, 1, 3), [leaf(rng, 2, 2)], **TOL)
    assert minires.gradcheck(lambda x: x.clone() * x, [leaf(rng, 2, 3)], **TOL)


def test_expand_repeat_clone_match_torch(rng):
    pytest.importorskip("torch")
    x = rng.standard_normal((3, 1))
    for call in (lambda x: x.expand(2, 3, 5), lambda x: x.expand(-1, 2), lambda x: x.repeat(2, 3),
                 lambda x: x.repeat(2, 1, 2), lambda x: x.expand_as(x.repeat(1, 4)), lambda x: x.clone()):
        same_as_torch(call, call, x)
    with pytest.raises(RuntimeError):
        Tensor(x).repeat(2)
    with pytest.raises(RuntimeError):
        Tensor(x).expand(3)


def test_clone_is_new_memory_that_later_changes_do_not_reach():
    x = Tensor(numpy.zeros(3))
    copy = x.clone()
    x.add_(1.0)
    numpy.testing.assert_array_equal(copy.numpy(), [0, 0, 0])


def test_flip_roll_tril_triu_gradcheck_and_match_torch(rng):
    pytest.importorskip("torch")
    for call in (lambda x: x.flip(0), lambda x: x.flip(0, 2), lambda x: x.roll(1), lambda x: x.roll(-2, 1),
                 lambda x: x.roll((1, 2), (0, 2)), lambda x: x.tril(), lambda x: x.triu(1),
                 lambda x: x.tril(-1)):
        assert minires.gradcheck(call, [leaf(rng, 2, 3, 3)], **TOL)
        same_as_torch(call, call, rng.standard_normal((2, 3, 3)))
