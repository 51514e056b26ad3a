"""cat and stack (float64 gradchecks, parity with PyTorch, errors)."""
import numpy
import pytest

import minires
from minires import Tensor
from tests.support.gradients import leaf
from tests.support.torch_oracle import same_as_torch

TOL = dict(eps=1e-6, atol=1e-6, rtol=1e-4)


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_matches_torch(rng, dim):
    shapes = {0: [(1, 3), (2, 3), (3, 3)], 1: [(2, 1), (2, 4), (2, 2)], -1: [(2, 1), (2, 4), (2, 2)]}
    arrays = [rng.standard_normal(s) for s in shapes[dim]]
    same_as_torch(lambda *xs: minires.cat(xs, dim), lambda *xs: _torch().cat(xs, dim), *arrays)


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_stack_matches_torch(rng, dim):
    arrays = [rng.standard_normal((2, 3)) for _ in range(4)]
    same_as_torch(lambda *xs: minires.stack(xs, dim), lambda *xs: _torch().stack(xs, dim), *arrays)


def test_cat_and_stack_gradcheck_with_an_input_used_twice(rng):
    a = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal((1, 3)), requires_grad=True)
    fixed = Tensor(rng.standard_normal((2, 3)))
    assert minires.gradcheck(lambda a, b: minires.cat([a, b, a, fixed], dim=0), [a, b], **TOL)
    assert minires.gradcheck(lambda a: minires.stack([a, fixed, a], dim=1), [a], **TOL)


def test_cat_promotes_dtypes_as_torch():
    torch = _torch()
    ints, floats = numpy.array([1, 2]), numpy.array([0.5], dtype=numpy.float32)
    got = minires.cat([Tensor(ints), Tensor(floats)])
    expected = torch.cat([torch.tensor(ints), torch.tensor(floats)])
    assert got.dtype == numpy.float32
    numpy.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_cat_and_stack_argument_errors():
    a, b = Tensor(numpy.zeros((2, 3))), Tensor(numpy.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"same shape except in dimension 0, got \[\(2, 3\), \(2, 4\)\]"):
        minires.cat([a, b])
    assert minires.cat([a, b], dim=1).shape == (2, 7)
    with pytest.raises(ValueError, match="same shape"):
        minires.stack([a, b])
    with pytest.raises(TypeError, match="non-empty list"):
        minires.cat([])
    with pytest.raises(TypeError, match="non-empty list"):
        minires.stack(a)
    with pytest.raises(ValueError, match="use stack"):
        minires.cat([Tensor(numpy.array(1.0))])
    with pytest.raises(IndexError):
        minires.cat([a, a], dim=2)
    with pytest.raises(IndexError):
        minires.stack([a, a], dim=3)


# --- issue 17: split and chunk ------------------------------------------------------------------

def test_split_and_chunk_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((7, 4))
    for call in (lambda x: x.split(3), lambda x: x.split([1, 2, 1], dim=1), lambda x: x.chunk(3),
                 lambda x: x.chunk(4, dim=-1), lambda x: x.chunk(2, 1)):
        for part in range(len(call(torch.tensor(x)))):
            same_as_torch(lambda x: call(x)[part] * 2, lambda x: call(x)[part] * 2, x)
        assert len(call(minires.Tensor(x))) == len(call(torch.tensor(x)))


def test_split_parts_add_their_gradients_up(rng):
    assert minires.gradcheck(lambda x: sum(p.sum(0) * (i + 1) for i, p in enumerate(x.split(2))),
                             [leaf(rng, 5, 2)], **TOL)
    with pytest.raises(ValueError, match="add up"):
        minires.split(minires.Tensor(numpy.zeros(4)), [1, 2])
