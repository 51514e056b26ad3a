"""minires.speed.flat_parameters: an optimizer keeps every parameter and gradient in two flat
arrays; the parameters stay views into them, through loading a state dict too."""
import numpy

import minires
import minires.functional as F
from minires import optim
from tests.support.networks import batch, small_net


def test_optimizer_flat_buffers_back_the_parameters():
    model = small_net()
    optimizer = optim.Adam(model.parameters())
    for p in model.parameters():
        assert numpy.shares_memory(p.data, optimizer.flat.data)
        assert numpy.shares_memory(p.grad, optimizer.flat.grad)


def test_load_state_dict_after_creating_the_optimizer(rng):
    model = small_net()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    minires.manual_seed(123)
    trained = {key: numpy.array(value) for key, value in small_net().state_dict().items()}
    model.load_state_dict(trained)
    numpy.testing.assert_array_equal(model[0].weight.numpy(), trained["0.weight"])
    # the loaded values live in the optimizer's flat buffer (in the weight's memory order)
    assert numpy.shares_memory(model[0].weight.data, optimizer.flat.data)
    numpy.testing.assert_array_equal(
        numpy.sort(optimizer.flat.data[:model[0].weight.numel()]), numpy.sort(trained["0.weight"].ravel()))
    F.cross_entropy(model(batch(rng, 2, 2, 6, 6)), numpy.array([1, 2])).backward()
    optimizer.step()
    for key, p in model.named_parameters():
        assert numpy.shares_memory(p.data, optimizer.flat.data)
        difference = numpy.abs(p.numpy() - trained[key]).max()
        assert 0 < difference <= 0.0101, key       # one Adam step moves at most ~lr
