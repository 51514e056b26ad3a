"""minires.functional.layer_norm and group_norm, nn.LayerNorm and nn.GroupNorm: gradient checks in
float64, PyTorch parity."""
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


# --- group norm (functional/group_norm.py), layer norm on groups of channels -------------------

def test_group_norm_gradcheck(rng):
    x, w, b = leaf(rng, 2, 4, 3, 2), leaf(rng, 4), leaf(rng, 4)
    assert minires.gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b), [x, w, b], **TOL)
    assert minires.gradcheck(lambda x: F.group_norm(x, 4), [leaf(rng, 2, 4, 3)], **TOL)


def test_group_norm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    same_as_torch(lambda x, w, b: F.group_norm(x, 3, w, b),
                  lambda x, w, b: torch.nn.functional.group_norm(x, 3, w, b),
                  rng.standard_normal((2, 6, 4, 5)), rng.standard_normal(6), rng.standard_normal(6))
    image = rng.standard_normal((3, 8, 5, 5)).astype(numpy.float32)
    channels_last = F.max_pool2d(minires.Tensor(image), 1)                 # minires's image memory
    numpy.testing.assert_allclose(nn.GroupNorm(4, 8)(channels_last).numpy(),
                                  torch.nn.GroupNorm(4, 8)(torch.tensor(image)).detach().numpy(),
                                  rtol=1e-5, atol=1e-5)
    check_layer(nn.GroupNorm(2, 8), torch.nn.GroupNorm(2, 8), image)
    check_layer(nn.GroupNorm(8, 8, affine=False), torch.nn.GroupNorm(8, 8, affine=False), image)
    with pytest.raises(ValueError, match="multiple"):
        nn.GroupNorm(3, 8)
