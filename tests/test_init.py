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
