"""cross_entropy's options (issue 10): class ``weight``, ``ignore_index``, ``label_smoothing``,
each with every reduction; ``CrossEntropyLoss`` in PyTorch's argument order.

Against PyTorch in float64 over every combination (loss and logits gradient with a random
upstream gradient) and against central differences (``minires.gradcheck``).
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn

torch = pytest.importorskip("torch")

TOL = dict(eps=1e-6, atol=1e-6, rtol=1e-4)
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
    fn = lambda x: F.cross_entropy(x, target, reduction=reduction, **options)  # noqa: E731
    assert minires.gradcheck(fn, [x], **TOL)


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

