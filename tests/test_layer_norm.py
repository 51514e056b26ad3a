"""minires.functional.layer_norm and nn.LayerNorm: gradient checks in float64, PyTorch parity."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import nn
from tests.support.gradients import TOL, leaf
from tests.support.parity import check_layer
from tests.support.torch_oracle import same_as_torch


def test_layer_norm_gradcheck(rng):
    x, w, b = leaf(rng, 2, 3, 4), leaf(rng, 3, 4), leaf(rng, 3, 4)
    assert minires.gradcheck(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [x, w, b], **TOL)
    assert minires.gradcheck(lambda x, w: F.layer_norm(x, 4, w), [leaf(rng, 5, 4), leaf(rng, 4)], **TOL)
    assert minires.gradcheck(lambda x: F.layer_norm(x, [4], eps=1e-3), [leaf(rng, 2, 4)], **TOL)


def test_layer_norm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    same_as_torch(lambda x, w, b: F.layer_norm(x, (3, 4), w, b),
                  lambda x, w, b: torch.nn.functional.layer_norm(x, (3, 4), w, b),
                  rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))
    same_as_torch(lambda x: F.layer_norm(x, (4,)), lambda x: torch.nn.functional.layer_norm(x, (4,)),
                  rng.standard_normal((5, 4)) * 100 + 3)


def test_layer_norm_module_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 2, 6)).astype(numpy.float32)
    check_layer(nn.LayerNorm(6), torch.nn.LayerNorm(6), x)
    check_layer(nn.LayerNorm((2, 6), elementwise_affine=False),
                torch.nn.LayerNorm((2, 6), elementwise_affine=False), x)
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(5)(minires.Tensor(x))
