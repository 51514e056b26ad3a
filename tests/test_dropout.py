"""F.dropout and nn.Dropout: the mask's statistics, train/eval, the edge cases p = 0 and 1
against torch, and the gradient with a fixed mask in float64."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from minires.functional.dropout import Dropout
from tests.support.optional_torch import torch


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_mask_statistics_match_torch_and_theory(p):
    """Each element is zeroed with probability p, the rest scaled by 1 / (1 - p):
    mean x and variance x^2 p / (1 - p), as torch's outputs have."""
    n = 1_000_000
    x = numpy.full(n, 2.0, dtype=numpy.float32)
    ours = F.dropout(Tensor(x), p).numpy()
    theirs = torch.nn.functional.dropout(torch.from_numpy(x), p).numpy()
    assert set(numpy.unique(ours)) == set(numpy.unique(theirs)) == {0.0, numpy.float32(2.0 / (1 - p))}
    sigma = (p * (1 - p) / n) ** 0.5                   # of the fraction of zeros
    for y in (ours, theirs):
        assert abs((y == 0).mean() - p) < 5 * sigma
        assert abs(y.mean() - 2.0) < 5 * 2.0 * (p / (1 - p) / n) ** 0.5
        assert y.var() == pytest.approx(4.0 * p / (1 - p), rel=0.02)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_edge_probabilities_match_torch(p, rng):
    x = rng.standard_normal((3, 4))
    gy = rng.standard_normal((3, 4))
    ours_x, theirs_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours = F.dropout(ours_x, p) * 1.0
    theirs = torch.nn.functional.dropout(theirs_x, p) * 1.0
    numpy.testing.assert_array_equal(ours.numpy(), theirs.detach().numpy())
    ours.backward(gy)
    theirs.backward(torch.from_numpy(gy))
    numpy.testing.assert_array_equal(ours_x.grad, theirs_x.grad.numpy())


def test_gradcheck_float64_with_a_fixed_mask(rng):
    mask = (rng.random((4, 5)) >= 0.3) / 0.7           # 0 or 1 / (1 - p)
    x = Tensor(rng.standard_normal((4, 5)), requires_grad=True)
    assert minires.gradcheck(lambda x: Dropout(mask)(x), [x])


def test_backward_uses_the_forward_mask(rng):
    x = Tensor(rng.standard_normal((50, 40)), requires_grad=True)
    y = F.dropout(x, 0.4)
    gy = rng.standard_normal((50, 40))
    y.backward(gy)
    kept = y.numpy() != 0
    numpy.testing.assert_allclose(x.grad, gy * kept / 0.6, rtol=1e-15)
    numpy.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / 0.6, rtol=1e-15)


def test_module_is_the_identity_in_eval_mode(rng):
    layer = nn.Dropout(p=0.5)
    x = Tensor(rng.standard_normal((20, 30)).astype(numpy.float32))
    assert (layer(x).numpy() == 0).any()
    model = nn.Sequential(nn.Linear(30, 30), layer)
    model.eval()
    assert layer(x) is x
    assert F.dropout(x, 0.5, training=False) is x
    assert repr(layer) == repr(torch.nn.Dropout(p=0.5)) == "Dropout(p=0.5, inplace=False)"


def test_manual_seed_repeats_the_masks(rng):
    x = Tensor(numpy.ones((100,), dtype=numpy.float32))
    minires.manual_seed(3)
    first = [F.dropout(x, 0.5).numpy() for _ in range(2)]
    minires.manual_seed(3)
    again = [F.dropout(x, 0.5).numpy() for _ in range(2)]
    numpy.testing.assert_array_equal(first, again)
    assert not numpy.array_equal(first[0], first[1])


def test_inplace_overwrites_the_input_array(rng):
    data = rng.standard_normal((10, 10)).astype(numpy.float32)
    x = Tensor(data)
    y = F.dropout(x, 0.5, inplace=True)
    assert numpy.shares_memory(y.data, data) and (data == 0).any()
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        F.dropout(Tensor(data, requires_grad=True), 0.5, inplace=True)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_probability_outside_0_1_is_refused_as_torch(p):
    with pytest.raises(ValueError, match=rf"Dropout: p must be in \[0, 1\], got {p}"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match=rf"dropout: p must be in \[0, 1\], got {p}"):
        F.dropout(Tensor(numpy.ones(2)), p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        torch.nn.Dropout(p)
