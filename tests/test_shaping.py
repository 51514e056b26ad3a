"""view, flatten, squeeze and unsqueeze (float64 gradchecks, parity with PyTorch, errors)."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor
from torch_oracle import same_as_torch

TOL = dict(eps=1e-6, atol=1e-6, rtol=1e-4)


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
