"""minires.nn.init and minires.seeding: the layers' initial values and their seeding."""
import math

import numpy

import minires
from minires import nn
from tests.support.networks import small_net


def test_layer_initialisation_ranges():
    conv, linear = nn.Conv2d(3, 8, 3), nn.Linear(20, 5)
    assert numpy.abs(conv.weight.numpy()).max() <= 1 / math.sqrt(27)
    assert numpy.abs(linear.bias.numpy()).max() <= 1 / math.sqrt(20)
    assert conv.weight.numpy().std() > 0.05          # really filled, not left at zero


def test_manual_seed_gives_the_same_model():
    minires.manual_seed(7)
    a = small_net().state_dict()
    minires.manual_seed(7)
    b = small_net().state_dict()
    minires.manual_seed(8)
    c = small_net().state_dict()
    assert all(numpy.array_equal(a[k], b[k]) for k in a)
    assert not numpy.array_equal(a["0.weight"], c["0.weight"])


# --- issue 17: the rest of torch.nn.init, with PyTorch's fan and gain rules --------------------

def test_calculate_gain_matches_torch():
    import pytest
    torch = pytest.importorskip("torch")
    for name, param in (("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)):
        assert nn.init.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param), name


def test_initialisers_draw_with_torchs_spread():
    """Each initialiser's sample standard deviation and range against the formula PyTorch uses."""
    minires.manual_seed(0)
    weight = minires.Tensor(numpy.zeros((256, 64, 3, 3), numpy.float32))      # fan_in 576, fan_out 2304
    fan_in, fan_out = 64 * 9, 256 * 9
    cases = [
        (lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / fan_out)),
        (lambda w: nn.init.kaiming_normal_(w), math.sqrt(2 / fan_in)),
        (lambda w: nn.init.kaiming_uniform_(w, a=0.1, nonlinearity="leaky_relu"),
         math.sqrt(2 / 1.01 / fan_in)),
        (lambda w: nn.init.xavier_normal_(w, gain=2.0), 2 * math.sqrt(2 / (fan_in + fan_out))),
        (lambda w: nn.init.xavier_uniform_(w), math.sqrt(2 / (fan_in + fan_out))),
        (lambda w: nn.init.normal_(w, 0.5, 0.02), 0.02),
        (lambda w: nn.init.uniform_(w, -1, 1), 1 / math.sqrt(3)),
    ]
    for initialise, std in cases:
        assert initialise(weight) is weight
        assert abs(weight.numpy().std() / std - 1) < 0.01, std
    nn.init.trunc_normal_(weight, mean=0.0, std=1.0, a=-0.5, b=1.0)
    assert weight.numpy().min() >= -0.5 and weight.numpy().max() <= 1.0
    # the mean of N(0, 1) truncated to [a, b] is (phi(a) - phi(b)) / (Phi(b) - Phi(a)) = 0.2066 here
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)     # noqa: E731
    Phi = lambda x: (1 + math.erf(x / math.sqrt(2))) / 2              # noqa: E731
    assert abs(weight.numpy().mean() - (phi(-0.5) - phi(1.0)) / (Phi(1.0) - Phi(-0.5))) < 0.005
    assert nn.init.zeros_(weight).numpy().max() == 0 and nn.init.ones_(weight).numpy().min() == 1
    assert nn.init.constant_(weight, 0.25).numpy().mean() == 0.25
