"""minires.functional.loss and nn.CrossEntropyLoss: log_softmax and cross entropy.

Reference values with gradient checks (float64, random upstream gradient), then PyTorch parity,
then the errors bad labels and shapes get.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.optional_torch import requires_torch, torch
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
    loss = minires.nn.CrossEntropyLoss(reduction=reduction)(mine, labels)
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
        F.cross_entropy(Tensor(numpy.zeros((2, 3), dtype=numpy.float32)), numpy.array([0, 1]),
                        reduction="avg")


K = 5
TARGETS = {
    "plain": numpy.array([0, 4, 2, 4, 1, 2]),
    "some ignored": numpy.array([-100, 4, 2, -100, 1, 2]),      # the default ignore_index
    "class 2 ignored": numpy.array([2, 4, 2, 0, 1, 2]),         # with ignore_index=2
}


def both(logits, target, reduction, seed=0, **options):
    """minires's and torch's loss and logits gradient for the same float64 inputs."""
    weight = options.pop("weight", None)
    x_m, x_t = Tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    loss_m = F.cross_entropy(x_m, target, weight, reduction=reduction, **options)
    loss_t = torch.nn.functional.cross_entropy(
        x_t, torch.from_numpy(target), None if weight is None else torch.from_numpy(weight),
        reduction=reduction, **options)
    gy = numpy.random.default_rng(seed).standard_normal(tuple(loss_t.shape))
    loss_m.backward(gy)
    loss_t.backward(torch.from_numpy(gy))
    return (loss_m.numpy(), x_m.grad), (loss_t.detach().numpy(), x_t.grad.numpy())


@requires_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("targets, ignore_index", [("plain", None), ("some ignored", None),
                                                   ("class 2 ignored", 2)])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy_options_match_torch(reduction, weighted, targets, ignore_index,
                                           label_smoothing):
    rng = numpy.random.default_rng(len(targets) * 10 + int(weighted))
    logits = rng.standard_normal((6, K)) * 2
    options = dict(label_smoothing=label_smoothing)
    if weighted:
        options["weight"] = rng.uniform(0.2, 2.0, K)
    if ignore_index is not None:
        options["ignore_index"] = ignore_index
    (loss_m, grad_m), (loss_t, grad_t) = both(logits, TARGETS[targets], reduction, **options)
    assert loss_m.shape == loss_t.shape
    numpy.testing.assert_allclose(loss_m, loss_t, rtol=1e-12, atol=1e-14)
    numpy.testing.assert_allclose(grad_m, grad_t, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [
    dict(weight=numpy.array([0.5, 2.0, 1.0, 0.1, 3.0])),
    dict(ignore_index=1),
    dict(label_smoothing=0.2),
    dict(weight=numpy.array([0.5, 2.0, 1.0, 0.1, 3.0]), ignore_index=4, label_smoothing=0.3),
], ids=["weight", "ignore_index", "label_smoothing", "all three"])
def test_cross_entropy_options_gradcheck(rng, reduction, options):
    x = Tensor(rng.standard_normal((4, K)), requires_grad=True)
    target = numpy.array([0, 4, 1, 4])
    def fn(x):
        return F.cross_entropy(x, target, reduction=reduction, **options)
    assert minires.gradcheck(fn, [x], **TOL)


@requires_torch
def test_every_row_ignored_gives_nan_and_a_zero_gradient_as_torch():
    logits = numpy.random.default_rng(0).standard_normal((3, K))
    target = numpy.full(3, -100)
    with numpy.errstate(invalid="ignore"):                  # 0 / 0, on purpose
        (loss_m, grad_m), (loss_t, grad_t) = both(logits, target, "mean")
    assert numpy.isnan(loss_m) and numpy.isnan(loss_t)
    numpy.testing.assert_array_equal(grad_m, grad_t)
    numpy.testing.assert_array_equal(grad_m, 0.0)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_cross_entropy_options_keep_the_logits_dtype(dtype):
    x = Tensor(numpy.zeros((3, K), dtype=dtype), requires_grad=True)
    loss = F.cross_entropy(x, numpy.array([0, -100, 2]), numpy.arange(1.0, K + 1.0),
                           label_smoothing=0.1)
    loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype


def test_ignored_rows_get_no_loss_and_no_gradient():
    x = Tensor(numpy.random.default_rng(1).standard_normal((3, K)), requires_grad=True)
    losses = F.cross_entropy(x, numpy.array([1, 3, 3]), ignore_index=3, reduction="none",
                             label_smoothing=0.5)
    losses.backward(numpy.ones(3))
    assert losses.numpy()[1:].tolist() == [0.0, 0.0]
    numpy.testing.assert_array_equal(x.grad[1:], 0.0)


# --- the module: PyTorch's argument order ------------------------------------------------------

@requires_torch
def test_cross_entropy_loss_takes_weight_first_and_keeps_it_as_a_buffer():
    weight = numpy.array([1.0, 2.0, 0.5, 1.0, 3.0])
    mine = nn.CrossEntropyLoss(weight, ignore_index=0, label_smoothing=0.1).double()
    theirs = torch.nn.CrossEntropyLoss(torch.from_numpy(weight), ignore_index=0, label_smoothing=0.1)
    assert list(mine.state_dict()) == list(theirs.state_dict()) == ["weight"]
    logits, target = numpy.random.default_rng(2).standard_normal((4, K)), numpy.array([0, 1, 4, 2])
    expected = theirs(torch.from_numpy(logits), torch.from_numpy(target)).item()
    assert mine(Tensor(logits), target).item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_loss_options_after_weight_are_keyword_only():
    with pytest.raises(TypeError):
        nn.CrossEntropyLoss(None, None, -100)       # torch's size_average, ignore_index: not here


# --- errors --------------------------------------------------------------------------------------

def test_cross_entropy_option_errors():
    x = Tensor(numpy.zeros((2, K)))
    with pytest.raises(ValueError, match=r"weight must have one entry per class, shape \(5,\), "
                                         r"got \(3,\)"):
        F.cross_entropy(x, numpy.array([0, 1]), numpy.ones(3))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        F.cross_entropy(x, numpy.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(TypeError, match="the third argument is weight, as in PyTorch, got 'sum'; "
                                        "pass reduction='sum' by keyword"):
        F.cross_entropy(x, numpy.array([0, 1]), "sum")
    with pytest.raises(ValueError, match=r"target 7 is outside \[0, 5\) for 5 classes \(and is not "
                                         r"ignore_index=-100\)"):
        F.cross_entropy(x, numpy.array([0, 7]))
    # a label equal to ignore_index is allowed even outside [0, K)
    assert F.cross_entropy(x, numpy.array([0, -1]), ignore_index=-1).shape == ()


# --- issue 17: probability targets and (N, C, d1, ...) inputs (functional/soft_targets.py) ------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2}, {"weight": True}])
def test_cross_entropy_with_probability_targets_matches_torch(rng, reduction, options):
    from tests.support.torch_oracle import same_as_torch
    weight = rng.random(4) + 0.5
    ours = {**options, "weight": minires.Tensor(weight)} if options.get("weight") else options
    theirs = {**options, "weight": torch.tensor(weight)} if options.get("weight") else options
    for shape in ((5, 4), (2, 4, 3, 2)):
        probabilities = rng.dirichlet(numpy.ones(4), size=int(numpy.prod(shape)) // 4).reshape(
            (shape[0],) + shape[2:] + (4,))
        probabilities = numpy.moveaxis(probabilities, -1, 1)                      # classes in dim 1
        same_as_torch(lambda x: F.cross_entropy(x, Tensor(probabilities), reduction=reduction, **ours),
                      lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(probabilities),
                                                                  reduction=reduction, **theirs),
                      rng.standard_normal(shape))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_per_pixel_matches_torch(rng, reduction):
    from tests.support.torch_oracle import same_as_torch
    target = rng.integers(0, 3, (2, 4, 5))
    target[0, 0, :2] = -100
    weight = rng.random(3) + 0.5
    same_as_torch(lambda x: F.cross_entropy(x, Tensor(target), Tensor(weight), reduction=reduction,
                                            label_smoothing=0.1),
                  lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(target), torch.tensor(weight),
                                                              reduction=reduction, label_smoothing=0.1),
                  rng.standard_normal((2, 3, 4, 5)))


def test_cross_entropy_soft_and_per_pixel_gradcheck(rng):
    soft = Tensor(rng.dirichlet(numpy.ones(3), size=4))
    assert minires.gradcheck(lambda x: F.cross_entropy(x, soft, label_smoothing=0.1), [leaf(rng, 4, 3)],
                             **TOL)
    pixels = Tensor(rng.integers(0, 3, (2, 2, 2)))
    assert minires.gradcheck(lambda x: F.cross_entropy(x, pixels), [leaf(rng, 2, 3, 2, 2)], **TOL)
