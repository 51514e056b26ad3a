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
