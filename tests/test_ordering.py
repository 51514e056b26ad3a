"""minires.functional.ordering: sort, argsort, topk against PyTorch, forward and backward."""
import numpy
import pytest

import minires
from minires import Tensor
from tests.support.gradients import TOL, distinct
from tests.support.torch_oracle import same_as_torch


def test_gradchecks(rng):
    x = distinct(rng, 3, 4)
    assert minires.gradcheck(lambda x: x.sort(1)[0], [x], **TOL)
    assert minires.gradcheck(lambda x: x.sort(0, descending=True).values, [x], **TOL)
    assert minires.gradcheck(lambda x: x.topk(2, dim=1).values, [x], **TOL)
    assert minires.gradcheck(lambda x: minires.topk(x, 2, 0, largest=False)[0], [x], **TOL)


@pytest.mark.parametrize("dim, descending", [(-1, False), (0, True), (1, True)])
def test_sort_and_argsort_match_torch(rng, dim, descending):
    torch = pytest.importorskip("torch")
    x = rng.permutation(24).reshape(2, 3, 4) / 4.0
    same_as_torch(lambda x: x.sort(dim, descending)[0], lambda x: x.sort(dim, descending)[0], x)
    for values in (x, x.astype(numpy.int32), (x > 3).astype(bool)):
        got = Tensor(values).sort(dim, descending=descending, stable=True)
        expected = torch.tensor(values).sort(dim=dim, descending=descending, stable=True)
        numpy.testing.assert_array_equal(got.values.numpy(), expected.values.numpy())
        numpy.testing.assert_array_equal(got.indices.numpy(), expected.indices.numpy())
        numpy.testing.assert_array_equal(
            Tensor(values).argsort(dim, descending).numpy(),
            torch.tensor(values).argsort(dim=dim, descending=descending, stable=True).numpy())


@pytest.mark.parametrize("k, dim, largest", [(2, -1, True), (1, 0, False), (3, 1, True)])
def test_topk_matches_torch(rng, k, dim, largest):
    torch = pytest.importorskip("torch")
    x = rng.permutation(24).reshape(2, 3, 4) / 4.0
    same_as_torch(lambda x: x.topk(k, dim, largest)[0], lambda x: x.topk(k, dim, largest)[0], x)
    numpy.testing.assert_array_equal(Tensor(x).topk(k, dim, largest).indices.numpy(),
                                     torch.tensor(x).topk(k, dim, largest).indices.numpy())
    with pytest.raises(ValueError, match="out of range"):
        Tensor(x).topk(5, 0)
