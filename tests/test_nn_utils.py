"""minires.nn.utils: clip_grad_norm_ and clip_grad_value_, against PyTorch."""
import numpy
import pytest

import minires
from minires import Tensor, nn


def _twins(torch, rng):
    grads = [rng.standard_normal((3, 4)) * 5, rng.standard_normal(4), None]
    ours = [Tensor(rng.standard_normal(g.shape if g is not None else (2,)), requires_grad=True)
            for g in grads]
    theirs = [torch.tensor(p.numpy(), requires_grad=True) for p in ours]
    for p, q, g in zip(ours, theirs, grads):
        if g is not None:
            p.grad, q.grad = g.copy(), torch.tensor(g)
    return ours, theirs


@pytest.mark.parametrize("max_norm, norm_type", [(1.0, 2.0), (100.0, 2), (0.5, 1), (2.0, float("inf"))])
def test_clip_grad_norm_matches_torch(rng, max_norm, norm_type):
    torch = pytest.importorskip("torch")
    ours, theirs = _twins(torch, rng)
    norm = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    numpy.testing.assert_allclose(norm.item(), expected.item(), rtol=1e-12)
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            numpy.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12)


def test_clip_grad_value_matches_torch_and_both_work_in_place(rng):
    torch = pytest.importorskip("torch")
    ours, theirs = _twins(torch, rng)
    kept = ours[0].grad
    nn.utils.clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    assert ours[0].grad is kept                     # in place: a flat buffer's view stays one
    for p, q in zip(ours[:2], theirs[:2]):
        numpy.testing.assert_array_equal(p.grad, q.grad.numpy())
    nn.utils.clip_grad_norm_(ours[0], 0.1)
    assert ours[0].grad is kept and abs(numpy.linalg.norm(kept) - 0.1) < 1e-6


def test_a_non_finite_norm_is_an_error_when_asked():
    p = Tensor(numpy.zeros(2), requires_grad=True)
    p.grad = numpy.array([numpy.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert nn.utils.clip_grad_norm_([], 1.0).item() == 0.0
    assert minires.nn.utils is nn.utils


# --- issue 17: one pass over an optimizer's flat gradient array -----------------------------------

def _trained_twins(torch, drop_bias=False):
    """A model and its PyTorch twin after one backward, the minires one with an optimizer (so its
    gradients lie in the optimizer's flat array); with drop_bias one gradient is None."""
    minires.manual_seed(0)
    ours = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2)).double()
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                                 torch.nn.Linear(12, 2)).double()
    theirs.load_state_dict({k: torch.from_numpy(numpy.array(v)) for k, v in ours.state_dict().items()})
    optimizer = minires.optim.SGD(ours.parameters(), lr=0.1)
    x = numpy.random.default_rng(1).standard_normal((2, 2, 4, 4)) * 10
    for model, inputs in ((ours, Tensor(x)), (theirs, torch.from_numpy(x))):
        y = model(inputs)
        (y * y).sum().backward()
    if drop_bias:
        ours[3].bias.grad = theirs[3].bias.grad = None
    return ours, theirs, optimizer


@pytest.mark.parametrize("drop_bias", [False, True], ids=["flat", "per parameter"])
@pytest.mark.parametrize("max_norm, norm_type", [(1.0, 2.0), (3.0, 1), (0.5, float("inf")), (1e9, 2.0)])
def test_clip_grad_norm_of_an_optimizers_flat_gradients_matches_torch(max_norm, norm_type, drop_bias):
    torch = pytest.importorskip("torch")
    ours, theirs, optimizer = _trained_twins(torch, drop_bias)
    flat = nn.utils._flat_gradient(list(ours.parameters()))
    assert (flat is None) == drop_bias and (flat is None or flat is not optimizer.flat.grad)
    norm = nn.utils.clip_grad_norm_(ours.parameters(), max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm, norm_type)
    numpy.testing.assert_allclose(norm.item(), expected.item(), rtol=1e-12)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert (p.grad is None) == (q.grad is None)
        if q.grad is not None:
            numpy.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("drop_bias", [False, True], ids=["flat", "per parameter"])
def test_clip_grad_value_of_an_optimizers_flat_gradients_matches_torch(drop_bias):
    torch = pytest.importorskip("torch")
    ours, theirs, _ = _trained_twins(torch, drop_bias)
    nn.utils.clip_grad_value_(ours.parameters(), 0.3)
    torch.nn.utils.clip_grad_value_(theirs.parameters(), 0.3)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        if q.grad is not None:      # the backward passes round differently, the clip does not
            numpy.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert any((numpy.abs(p.grad) == 0.3).any() for p in ours.parameters() if p.grad is not None)


def test_clipping_a_flat_gradient_is_a_few_launches_whatever_the_parameter_count():
    from minires import backend
    from minires.testing import strict_device
    launches = {}
    with strict_device.installed():
        for layers in (2, 8):
            model = nn.Sequential(*[nn.Linear(3, 3) for _ in range(layers)])
            optimizer = minires.optim.SGD(model.parameters(), lr=0.1)   # kept: its flat array
            model(Tensor(backend.to_device(numpy.ones((2, 3), dtype=numpy.float32)))).sum().backward()
            with strict_device.counting() as counts:
                nn.utils.clip_grad_norm_(model.parameters(), 0.1)
                nn.utils.clip_grad_value_(model.parameters(), 0.01)
            launches[layers] = counts.launches
            assert optimizer.flat.grad is not None
    # on the one flat run: the norm (abs, power, sum, then stack, sum and root of that one
    # partial sum, as the per-parameter path does), the factor (+, /, minimum), the scaling
    # (astype, *=), the clamp: 12, as many for 16 parameters as for 4
    assert launches[2] == launches[8] == 12, launches
