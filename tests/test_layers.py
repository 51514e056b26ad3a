"""minires.nn.layers: Sequential, and layers composed into small networks against PyTorch.

Each layer's own checks (reference, gradient, parity, errors) live with its function:
test_conv.py, test_norm.py, test_pool.py, test_linear.py, test_activation.py, test_shaping.py,
test_loss.py.
"""
from collections import OrderedDict

from minires import nn
from tests.support.networks import small_net
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
