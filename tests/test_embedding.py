"""minires.functional.embedding (embedding, one_hot) and nn.Embedding, against PyTorch."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.torch_oracle import same_as_torch

TOKENS = numpy.array([[0, 3, 3], [1, 0, 4]])        # repeated rows collect their gradients


def test_embedding_gradcheck(rng):
    assert minires.gradcheck(lambda w: F.embedding(Tensor(TOKENS), w), [leaf(rng, 5, 2)], **TOL)
    # (padding_idx withholds the true gradient of its row on purpose: checked against PyTorch below)


@pytest.mark.parametrize("padding_idx", [None, 3, -5])
def test_embedding_matches_torch(rng, padding_idx):
    torch = pytest.importorskip("torch")
    same_as_torch(lambda w: F.embedding(Tensor(TOKENS), w, padding_idx),
                  lambda w: torch.nn.functional.embedding(torch.tensor(TOKENS), w, padding_idx),
                  rng.standard_normal((5, 3)))


def test_embedding_module_starts_as_torchs_and_trains_its_rows(rng):
    minires.manual_seed(0)
    layer = nn.Embedding(1000, 4, padding_idx=2)
    values = layer.weight.numpy()
    assert values.shape == (1000, 4) and values.dtype == numpy.float32
    assert abs(values.std() - 1.0) < 0.05 and (values[2] == 0).all()      # N(0, 1), padding row 0
    out = layer(Tensor(numpy.array([2, 5, 5])))
    (out * Tensor(rng.standard_normal((3, 4)))).sum().backward()
    assert (layer.weight.grad[2] == 0).all() and (layer.weight.grad[5] != 0).all()
    with pytest.raises(TypeError, match="integers"):
        layer(Tensor(numpy.array([0.5])))


def test_one_hot_matches_torch():
    torch = pytest.importorskip("torch")
    for labels, classes in ((numpy.array([0, 2, 1]), -1), (numpy.array([[1], [3]]), 5)):
        got = F.one_hot(Tensor(labels), classes)
        expected = torch.nn.functional.one_hot(torch.tensor(labels), classes)
        assert got.dtype == numpy.int64
        numpy.testing.assert_array_equal(got.numpy(), expected.numpy())
