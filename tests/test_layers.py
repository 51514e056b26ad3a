"""minires.nn.layers: Sequential, and layers composed into small networks against PyTorch.

Each layer's own checks (reference, gradient, parity, errors) live with its function:
test_conv.py, test_norm.py, test_pool.py, test_linear.py, test_activation.py, test_shaping.py,
test_loss.py.
"""
from collections import OrderedDict

import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn, optim
from tests.support.networks import small_net
from tests.support.optional_torch import requires_torch, torch
from tests.support.parity import check_layer, randn, rng_for


def test_sequential_children_are_named_and_indexable():
    net = small_net()
    assert [name for name, _ in net.named_modules()][:4] == ["", "0", "1", "2"]
    assert len(net) == 6
    assert isinstance(net[0], nn.Conv2d) and isinstance(net[-1], nn.Linear)
    assert [type(m).__name__ for m in net] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                                              "Flatten", "Linear"]
    assert [name for name, _ in net.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias"]


def test_sequential_from_an_ordered_dict_keeps_the_names():
    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(3, 4, 3)), ("act", nn.ReLU())]))
    assert list(model.state_dict()) == ["conv.weight", "conv.bias"]
    assert isinstance(model[1], nn.ReLU) and len(model) == 2


# --- PyTorch parity ----------------------------------------------------------------------------

def small_network(framework):
    """Conv -> BN -> ReLU -> MaxPool -> Flatten -> Linear: a chain whose intermediate
    tensors only the graph holds (the caller keeps none of them)."""
    return framework.Sequential(
        framework.Conv2d(3, 4, kernel_size=3, stride=1, padding=1),
        framework.BatchNorm2d(4),
        framework.ReLU(),
        framework.MaxPool2d(2),
        framework.Flatten(),
        framework.Linear(4 * 3 * 4, 5),
    )


def test_small_network_matches_torch(torch):
    torch.manual_seed(0)
    rng = rng_for("small network")
    check_layer(small_network(nn), small_network(torch.nn), randn(rng, 3, 3, 6, 8))


def two_branch_block(framework):
    """x feeds two chains whose outputs are added: a tensor used twice, as in a residual block."""
    class TwoBranches(framework.Module):
        def __init__(self):
            super().__init__()
            self.a = framework.Sequential(framework.Linear(6, 6), framework.ReLU(),
                                          framework.Linear(6, 6))
            self.b = framework.Sequential(framework.Linear(6, 6), framework.ReLU())

        def forward(self, x):
            return self.a(x) + self.b(x)

    return TwoBranches()


def test_two_branches_match_torch(torch):
    torch.manual_seed(0)
    check_layer(two_branch_block(nn), two_branch_block(torch.nn), randn(rng_for("branches"), 4, 6))


def network(framework):
    """The same architecture built from ``framework`` (minires.nn or torch.nn), positionally
    where PyTorch's order matters."""
    return framework.Sequential(
        framework.Conv2d(3, 6, 3, 1, 2, 2),                  # dilation 2 (the 6th positional)
        framework.BatchNorm2d(6, affine=False, momentum=None),
        framework.ReLU(),
        framework.Conv2d(6, 6, 3, 1, 1, 1, 6),               # depthwise (groups, 7th)
        framework.Conv2d(6, 8, 1, bias=False),               # pointwise
        framework.BatchNorm2d(8, track_running_stats=False),
        framework.MaxPool2d(3, 2, 1, 1, False, True),        # ceil_mode (6th)
        framework.AvgPool2d(2, 1, 1, True, False),           # ceil_mode, count_include_pad=False
        framework.AdaptiveAvgPool2d((2, 1)),
        framework.Flatten(),
        framework.BatchNorm1d(16, momentum=None),
        framework.Linear(16, 5),
    )


@pytest.mark.slow
@requires_torch
def test_small_network_with_every_new_option_trains_as_in_torch():
    torch.manual_seed(0)
    theirs = network(torch.nn).double()
    mine = network(nn).double()
    mine.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    weight = numpy.array([1.0, 0.5, 2.0, 1.0, 0.25])
    rng = numpy.random.default_rng(0)
    torch_sgd = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    minires_sgd = optim.SGD(mine.parameters(), lr=0.1, momentum=0.9)
    for step in range(2):
        x = rng.standard_normal((4, 3, 9, 7))
        labels = numpy.array([0, 3, 4, 3])                   # class 3 is ignored
        loss_t = torch.nn.functional.cross_entropy(
            theirs(torch.from_numpy(x)), torch.from_numpy(labels), torch.from_numpy(weight),
            ignore_index=3, label_smoothing=0.1)
        loss_m = F.cross_entropy(mine(Tensor(x)), labels, weight, ignore_index=3,
                                 label_smoothing=0.1)
        torch_sgd.zero_grad()
        minires_sgd.zero_grad()
        loss_t.backward()
        loss_m.backward()
        assert loss_m.item() == pytest.approx(loss_t.item(), rel=1e-10)
        torch_parameters = dict(theirs.named_parameters())
        for name, parameter in mine.named_parameters():
            numpy.testing.assert_allclose(parameter.grad, torch_parameters[name].grad.numpy(),
                                          rtol=1e-8, atol=1e-12, err_msg=f"step {step}: {name}")
        torch_sgd.step()
        minires_sgd.step()
    torch_state = theirs.state_dict()
    assert list(mine.state_dict()) == list(torch_state)
    for key, value in mine.state_dict().items():
        numpy.testing.assert_allclose(value, torch_state[key].numpy(), rtol=1e-8, atol=1e-12,
                                      err_msg=key)
    mine.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 9, 7))
    numpy.testing.assert_allclose(mine(Tensor(x)).numpy(),
                                  theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-8, atol=1e-12)


def test_summary_of_the_network_shows_dilation_and_same_padding():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 2, 2),
                          nn.Conv2d(4, 4, 4, padding="same", groups=2))
    rows, totals = minires.summary(model, (3, 9, 9), print_fn=lambda line: None)
    assert rows[0]["formula"] == "(9 + 2*2 - 2*(3 - 1) - 1) // 1 + 1 = 9"
    assert rows[1]["formula"] == "(9 + 2*1 + 1 - 4) // 1 + 1 = 9"      # the odd one at the bottom
    assert totals["parameters"] == (4 * 3 * 9 + 4) + (4 * 2 * 16 + 4)
