"""minires.functional.selection: where, masked_fill, maximum/minimum, gather, index_select.

Gradient checks (float64, random upstream gradient), then PyTorch parity, forward and backward.
"""
import numpy
import pytest

import minires
from minires import Tensor
from tests.support.gradients import TOL, leaf
from tests.support.torch_oracle import same_as_torch


def test_gradchecks(rng):
    mask = Tensor(rng.random((3, 4)) > 0.5)
    index = Tensor(numpy.array([[0, 2, 2], [1, 1, 0]]))       # repeats add up
    rows = Tensor(numpy.array([2, 0, 2]))
    assert minires.gradcheck(lambda a, b: minires.where(mask, a, b), [leaf(rng, 3, 4), leaf(rng, 4)], **TOL)
    assert minires.gradcheck(lambda a: a.masked_fill(mask, -1.5), [leaf(rng, 3, 4)], **TOL)
    assert minires.gradcheck(lambda a, b: minires.maximum(a, b), [leaf(rng, 3, 4), leaf(rng, 3, 1)], **TOL)
    assert minires.gradcheck(lambda a, b: a.minimum(b), [leaf(rng, 3, 4), leaf(rng, 3, 4)], **TOL)
    assert minires.gradcheck(lambda a: a.gather(1, index), [leaf(rng, 2, 4)], **TOL)
    assert minires.gradcheck(lambda a: a.gather(0, index[:, :2]), [leaf(rng, 3, 5)], **TOL)
    assert minires.gradcheck(lambda a: a.index_select(1, rows), [leaf(rng, 2, 3, 2)], **TOL)


def test_where_and_masked_fill_match_torch(rng):
    torch = pytest.importorskip("torch")
    condition = rng.random((3, 4)) > 0.5
    same_as_torch(lambda a, b: minires.where(Tensor(condition), a, b),
                  lambda a, b: torch.where(torch.tensor(condition), a, b),
                  rng.standard_normal((3, 4)), rng.standard_normal((1, 4)))
    same_as_torch(lambda a: a.where(Tensor(condition), 0.5), lambda a: a.where(torch.tensor(condition), 0.5),
                  rng.standard_normal((3, 4)))
    same_as_torch(lambda a: a.masked_fill(Tensor(condition[0]), -1e9),
                  lambda a: a.masked_fill(torch.tensor(condition[0]), -1e9), rng.standard_normal((3, 4)))


def test_maximum_and_minimum_share_ties_as_torch():
    a, b = numpy.array([1.0, 2.0, 3.0, -1.0]), numpy.array([1.0, 3.0, 2.0, -1.0])
    torch = pytest.importorskip("torch")
    same_as_torch(minires.maximum, torch.maximum, a, b)
    same_as_torch(minires.minimum, torch.minimum, a, b)
    same_as_torch(lambda a: minires.maximum(a, Tensor(numpy.zeros(1))),
                  lambda a: torch.maximum(a, torch.zeros(1, dtype=torch.float64)), a)


@pytest.mark.parametrize("dim, index", [(1, [[0, 2, 2], [1, 1, 0]]), (0, [[2, 0], [2, 2]]),
                                        (-1, [[3], [0]])])
def test_gather_matches_torch(rng, dim, index):
    torch = pytest.importorskip("torch")
    index = numpy.array(index)
    same_as_torch(lambda x: x.gather(dim, Tensor(index)), lambda x: x.gather(dim, torch.tensor(index)),
                  rng.standard_normal((3, 4)))


def test_index_select_matches_torch(rng):
    torch = pytest.importorskip("torch")
    index = numpy.array([2, 0, 2, 1])
    for dim in (0, 1, -1):
        same_as_torch(lambda x: minires.index_select(x, dim, Tensor(index)),
                      lambda x: torch.index_select(x, dim, torch.tensor(index)),
                      rng.standard_normal((3, 3, 3)))


def test_bad_conditions_and_indices_are_refused():
    x = Tensor(numpy.zeros((2, 3)))
    with pytest.raises(TypeError, match="bool"):
        minires.where(Tensor(numpy.ones((2, 3))), x, x)
    with pytest.raises(TypeError, match="bool"):
        x.masked_fill(Tensor(numpy.ones(3)), 1.0)
    with pytest.raises(ValueError, match="as many dimensions"):
        x.gather(1, Tensor(numpy.array([0, 1])))
    with pytest.raises(ValueError, match="1-D"):
        x.index_select(0, Tensor(numpy.zeros((2, 2), numpy.int64)))


def test_scatter_and_scatter_add_gradcheck_and_match_torch(rng):
    torch = pytest.importorskip("torch")
    index = numpy.array([[0, 2, 2], [1, 1, 0]])            # scatter_add: repeats add up
    distinct = numpy.array([[0, 2, 1], [1, 0, 2]])         # scatter: each place written once
    assert minires.gradcheck(lambda x, s: x.scatter_add(1, Tensor(index), s),
                             [leaf(rng, 2, 4), leaf(rng, 2, 3)], **TOL)
    assert minires.gradcheck(lambda x, s: x.scatter(1, Tensor(distinct), s),
                             [leaf(rng, 2, 4), leaf(rng, 2, 3)], **TOL)
    same_as_torch(lambda x, s: x.scatter_add(1, Tensor(index), s),
                  lambda x, s: x.scatter_add(1, torch.tensor(index), s),
                  rng.standard_normal((2, 4)), rng.standard_normal((2, 3)))
    same_as_torch(lambda x, s: x.scatter(0, Tensor(distinct[:, :2]), s),
                  lambda x, s: x.scatter(0, torch.tensor(distinct[:, :2]), s),
                  rng.standard_normal((3, 2)), rng.standard_normal((2, 2)))
    same_as_torch(lambda x: minires.scatter(x, 1, Tensor(distinct), value=-1.0),
                  lambda x: torch.scatter(x, 1, torch.tensor(distinct), value=-1.0),
                  rng.standard_normal((2, 3)))
