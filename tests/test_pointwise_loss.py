"""minires.functional.pointwise_loss and minires.nn.losses: mse, l1, smooth l1, binary cross
entropy (with logits), nll. Gradient checks in float64, then PyTorch parity (functions and modules)."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.torch_oracle import same_as_torch

REDUCTIONS = ["mean", "sum", "none"]


def test_gradchecks(rng):
    target = Tensor(rng.standard_normal((3, 4)))
    labels = Tensor(rng.random((3, 4)))
    classes = Tensor(numpy.array([2, 0, -100, 2]))
    weight = Tensor(rng.random(3) + 0.5)
    assert minires.gradcheck(lambda x: F.mse_loss(x, target), [leaf(rng, 3, 4)], **TOL)
    assert minires.gradcheck(lambda x: F.l1_loss(x, target, reduction="sum"), [leaf(rng, 3, 4)], **TOL)
    assert minires.gradcheck(lambda x: F.smooth_l1_loss(x, target, beta=0.5), [leaf(rng, 3, 4)], **TOL)
    probabilities = Tensor(rng.random((3, 4)) * 0.8 + 0.1, requires_grad=True)
    assert minires.gradcheck(lambda x: F.binary_cross_entropy(x, labels), [probabilities], **TOL)
    assert minires.gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, labels, pos_weight=2.0),
                             [leaf(rng, 3, 4)], **TOL)
    assert minires.gradcheck(lambda x: F.nll_loss(F.log_softmax(x, 1), classes, weight),
                             [leaf(rng, 4, 3)], **TOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_match_torch(rng, reduction):
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    for name, kwargs in (("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {"beta": 0.7}),
                         ("smooth_l1_loss", {"beta": 0.0})):
        same_as_torch(lambda x, y: getattr(F, name)(x, y, reduction=reduction, **kwargs),
                      lambda x, y: getattr(torch.nn.functional, name)(x, y, reduction=reduction, **kwargs),
                      x, y)


@pytest.mark.filterwarnings("ignore:divide by zero")     # log(0) of a probability 0 or 1, clamped
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropies_match_torch(rng, reduction):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((3, 4)) * 30            # far into both tails
    targets, weight, pos_weight = rng.random((3, 4)), rng.random(4), rng.random(4) + 0.5
    tF = torch.nn.functional
    same_as_torch(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
                  lambda x, t: tF.binary_cross_entropy_with_logits(x, t, reduction=reduction),
                  logits, targets)
    same_as_torch(lambda x, t: F.binary_cross_entropy_with_logits(x, t, Tensor(weight), reduction,
                                                                  Tensor(pos_weight)),
                  lambda x, t: tF.binary_cross_entropy_with_logits(x, t, torch.tensor(weight),
                                                                   reduction=reduction,
                                                                   pos_weight=torch.tensor(pos_weight)),
                  logits, targets)
    probabilities = numpy.concatenate([1 / (1 + numpy.exp(-logits[:2] / 30)), [[0.0, 1.0, 0.5, 0.2]]])
    same_as_torch(lambda p, t: F.binary_cross_entropy(p, t, reduction=reduction),
                  lambda p, t: tF.binary_cross_entropy(p, t, reduction=reduction),
                  probabilities, targets.round(), grad=False)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_torch(rng, reduction):
    torch = pytest.importorskip("torch")
    target = numpy.array([2, 0, 1, 1, 2])
    weight = rng.random(3) + 0.5
    same_as_torch(lambda x: F.nll_loss(x, Tensor(target), reduction=reduction),
                  lambda x: torch.nn.functional.nll_loss(x, torch.tensor(target), reduction=reduction),
                  rng.standard_normal((5, 3)))
    same_as_torch(lambda x, w: F.nll_loss(x, target, Tensor(w), ignore_index=1, reduction=reduction),
                  lambda x, w: torch.nn.functional.nll_loss(x, torch.tensor(target), w.detach(),
                                                            ignore_index=1, reduction=reduction),
                  rng.standard_normal((5, 3)), weight)


def test_loss_modules_match_torch(rng):
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal((4, 3)), rng.random((4, 3))
    labels = numpy.array([0, 2, 1, 2])
    for ours, theirs, target in (
            (nn.MSELoss(), torch.nn.MSELoss(), y),
            (nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), y),
            (nn.SmoothL1Loss(beta=0.3), torch.nn.SmoothL1Loss(beta=0.3), y),
            (nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), y),
            (nn.NLLLoss(), torch.nn.NLLLoss(), labels)):
        same_as_torch(lambda x: ours(x, Tensor(target)), lambda x: theirs(x, torch.tensor(target)), x)
    same_as_torch(lambda p: nn.BCELoss()(p, Tensor(y.round())),
                  lambda p: torch.nn.BCELoss()(p, torch.tensor(y.round())), y * 0.9 + 0.05)


def test_mismatched_shapes_and_reductions_are_refused():
    x = Tensor(numpy.zeros((2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        F.mse_loss(x, Tensor(numpy.zeros((3, 2))))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.l1_loss(x, x, reduction="average")
    with pytest.raises(ValueError, match=r"expected input \(N, C\)"):
        F.nll_loss(x, Tensor(numpy.zeros(3, numpy.int64)))
