"""minires.functional.loss and nn.CrossEntropyLoss: log_softmax and cross entropy.

Reference values with gradient checks (float64, random upstream gradient), then PyTorch parity,
then the errors bad labels and shapes get.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor
from tests.support.gradients import TOL, leaf
from tests.support.parity import assert_close, randn, rng_for, to_numpy


def test_cross_entropy_is_stable_for_large_logits():
    x = Tensor(numpy.array([[1000.0, 0.0], [0.0, -1000.0]]), requires_grad=True)
    loss = F.cross_entropy(x, numpy.array([1, 0]))
    loss.backward()
    numpy.testing.assert_allclose(loss.item(), 500.0)
    assert numpy.isfinite(x.grad).all()


# --- gradient checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [-1, 0])
def test_log_softmax(rng, dim):
    x = leaf(rng, 3, 5)
    y = F.log_softmax(x, dim).numpy()
    xv = x.numpy()
    expected = xv - numpy.log(numpy.exp(xv).sum(axis=dim, keepdims=True))
    numpy.testing.assert_allclose(y, expected, rtol=1e-12)
    assert minires.gradcheck(lambda x: F.log_softmax(x, dim), [x], **TOL)


def test_cross_entropy(rng):
    x = leaf(rng, 4, 5)
    target = numpy.array([0, 4, 2, 4])
    xv = x.numpy()
    log_p = xv - numpy.log(numpy.exp(xv).sum(axis=1, keepdims=True))
    loss = F.cross_entropy(x, target)
    assert loss.shape == ()
    numpy.testing.assert_allclose(loss.item(), -log_p[numpy.arange(4), target].mean(), rtol=1e-12)
    assert minires.gradcheck(lambda x: F.cross_entropy(x, target), [x], **TOL)


# --- PyTorch parity ----------------------------------------------------------------------------

@pytest.mark.parametrize("scale, offset", [(1.0, 0.0), (3.0, 0.0), (50.0, 1000.0)])
def test_cross_entropy_matches_torch(torch, scale, offset):
    """Value and logits gradient; the last case needs the max-subtraction to stay finite."""
    rng = rng_for("cross entropy", scale)
    logits = scale * randn(rng, 6, 10) + offset
    target = rng.integers(0, 10, size=6)
    logits_t = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.from_numpy(target))
    loss_t.backward()
    logits_m = minires.Tensor(logits, requires_grad=True)
    loss_m = F.cross_entropy(logits_m, target)
    loss_m.backward()
    assert loss_m.shape == ()
    assert_close(loss_m.numpy(), to_numpy(loss_t), name="loss")
    assert_close(logits_m.grad, logits_t.grad.numpy(), name="logits gradient")


@pytest.mark.parametrize("shape, dim", [((4, 7), 1), ((4, 7), -1), ((4, 7), 0), ((2, 5, 3), 1)])
def test_log_softmax_matches_torch(torch, shape, dim):
    rng = rng_for("log softmax", shape, dim)
    x = 4.0 * randn(rng, *shape)
    gy = randn(rng, *shape)
    x_t = torch.tensor(x, requires_grad=True)
    y_t = torch.nn.functional.log_softmax(x_t, dim=dim)
    y_t.backward(torch.from_numpy(gy))
    x_m = minires.Tensor(x, requires_grad=True)
    y_m = F.log_softmax(x_m, dim=dim)
    y_m.backward(gy)
    assert_close(y_m.numpy(), to_numpy(y_t), name="output")
    assert_close(x_m.grad, x_t.grad.numpy(), name="input gradient")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_reductions_and_module(torch, reduction):
    rng = numpy.random.default_rng(3)
    logits, labels = rng.standard_normal((5, 7)), numpy.array([0, 6, 3, 3, 1])
    upstream = rng.standard_normal(5) if reduction == "none" else None
    mine = minires.Tensor(logits, requires_grad=True)
    loss = minires.nn.CrossEntropyLoss(reduction)(mine, labels)
    loss.backward(upstream)
    theirs = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.CrossEntropyLoss(reduction=reduction)(theirs, torch.tensor(labels))
    expected.backward(None if upstream is None else torch.tensor(upstream))
    assert loss.dtype == numpy.float64          # float64 logits keep a float64 loss
    numpy.testing.assert_allclose(loss.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    numpy.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-12, atol=1e-14)


# --- errors ------------------------------------------------------------------------------------

def logits(N=4, K=10):
    return Tensor(numpy.zeros((N, K), dtype=numpy.float32), requires_grad=True)


def test_cross_entropy_float_labels():
    with pytest.raises(TypeError, match="integer class indices.*float"):
        F.cross_entropy(logits(), numpy.array([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(logits(), Tensor([0, 1, 2, 3]))     # a list becomes float32


@pytest.mark.parametrize("bad", [10, -1])
def test_cross_entropy_label_out_of_range(bad):
    with pytest.raises(ValueError, match=rf"target {bad} is outside \[0, 10\) for 10 classes"):
        F.cross_entropy(logits(), numpy.array([0, bad, 2, 3]))


@pytest.mark.parametrize("target_shape", [(4, 1), (3,), (1, 4)])
def test_cross_entropy_wrong_target_shape(target_shape):
    with pytest.raises(ValueError, match=r"expected target of shape \(4,\)"):
        F.cross_entropy(logits(), numpy.zeros(target_shape, dtype=numpy.int64))


def test_cross_entropy_wrong_logits_shape():
    with pytest.raises(ValueError, match=r"expected input \(N, K\) logits, got \(10,\)"):
        F.cross_entropy(Tensor(numpy.zeros(10, dtype=numpy.float32)), numpy.array([1]))


def test_cross_entropy_unknown_reduction():
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(Tensor(numpy.zeros((2, 3), dtype=numpy.float32)), numpy.array([0, 1]), "avg")
