"""Comparisons give bool tensors without a gradient; masks combine with ~, & and |."""
import operator

import numpy
import pytest

import minires
from minires import Tensor

OPERATORS = [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]


@pytest.mark.parametrize("op", OPERATORS, ids=lambda op: op.__name__)
def test_comparisons_match_torch(op, rng):
    torch = pytest.importorskip("torch")
    a = rng.integers(-2, 3, (3, 4)).astype(numpy.float32)
    b = rng.integers(-2, 3, (4,)).astype(numpy.float32)
    ints = rng.integers(-2, 3, (3, 4))
    cases = [(a, b), (a, 0.0), (ints, 0.5), (ints, b), (0.5, a), (ints, numpy.array(1))]
    for left, right in cases:
        mine = op(*[Tensor(v) if isinstance(v, numpy.ndarray) else v for v in (left, right)])
        theirs = op(*[torch.tensor(v) if isinstance(v, numpy.ndarray) else v for v in (left, right)])
        assert mine.dtype == numpy.bool_
        numpy.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_comparison_methods_and_no_gradient():
    x = Tensor(numpy.array([1.0, 2.0, 3.0]), requires_grad=True)
    for name, expected in [("eq", [0, 1, 0]), ("ne", [1, 0, 1]), ("lt", [1, 0, 0]),
                           ("le", [1, 1, 0]), ("gt", [0, 0, 1]), ("ge", [0, 1, 1])]:
        mask = getattr(x, name)(2.0)
        numpy.testing.assert_array_equal(mask.numpy(), numpy.array(expected, dtype=bool))
        assert not mask.requires_grad and mask.creator is None


def test_a_host_array_of_labels_is_compared_on_the_device():
    predicted = Tensor(numpy.array([1, 0, 2]))
    assert (predicted == numpy.array([1, 1, 2])).sum().item() == 2
    assert (numpy.array([1, 1, 2]) == predicted).sum().item() == 2        # reflected
    assert (predicted == [1, 0, 0]).sum().item() == 2


def test_none_tensors_in_sets_and_truth_values_as_torch():
    x = Tensor(numpy.array([1.0, 2.0]))
    assert (x == None) is False and (x != None) is True      # noqa: E711
    assert x in {x} and len({x, Tensor(x.data)}) == 2          # hashed by identity
    assert bool(Tensor(numpy.array([3.0])) > 2)
    assert (x > 0).all() and not (x > 1).all() and (x > 1).any() and not (x > 2).any()
    numpy.testing.assert_array_equal((x.reshape(1, 2) > 1).any(dim=0).numpy(), [False, True])
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x > 0)


def test_masks_combine_with_invert_and_or():
    torch = pytest.importorskip("torch")
    v = numpy.array([-2.0, -0.5, 0.5, 2.0])
    x, t = Tensor(v), torch.tensor(v)
    for mine, theirs in [((x > -1) & (x < 1), (t > -1) & (t < 1)), (~(x > 0), ~(t > 0)),
                         ((x < -1) | (x > 1), (t < -1) | (t > 1))]:
        assert mine.dtype == numpy.bool_
        numpy.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    numpy.testing.assert_array_equal((Tensor(numpy.array([6])) & 3).numpy(), [2])   # bitwise


def test_the_accuracy_idiom_runs_on_the_strict_device_without_host_reads():
    from minires.testing import strict_device
    with strict_device.installed():
        x = Tensor(numpy.array([[0.1, 0.9], [0.8, 0.2]], dtype=numpy.float32))
        labels = minires.to_device(numpy.array([1, 1]))
        with strict_device.counting() as counts:
            correct = (x.argmax(1) == labels).sum()
            fraction = ((x > 0.5) & (x < 0.85)).float().mean()
        assert counts.implicit == 0 and counts.d2h == 0
        assert correct.item() == 1 and fraction.item() == pytest.approx(0.25)
