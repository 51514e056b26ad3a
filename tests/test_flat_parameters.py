"""minires.speed.flat_parameters: an optimizer keeps every parameter and gradient in two flat
arrays; the parameters stay views into them, through loading a state dict too."""
import numpy

import minires
import minires.functional as F
from minires import Tensor, nn, optim
from minires.speed.flat_parameters import FlatParameters
from tests.support.networks import batch, small_net


def test_optimizer_flat_buffers_back_the_parameters(rng):
    model = small_net()
    optimizer = optim.Adam(model.parameters())
    F.cross_entropy(model(batch(rng, 2, 2, 6, 6)), numpy.array([1, 2])).backward()
    optimizer.step()        # binds backward's fresh gradients into the flat buffer
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


def parameters():
    conv = nn.Conv2d(in_channels=2, out_channels=3, kernel_size=3)      # channels-last weight
    return [conv.weight, conv.bias, nn.Parameter(numpy.ones((2, 5), dtype=numpy.float32))]


def test_views_keep_shape_and_memory_order():
    params = parameters()
    values = [p.numpy() for p in params]
    flat = FlatParameters(params)
    assert flat.offsets == [0, 54, 57, 67] and flat.data.shape == (67,)
    for p, value in zip(params, values):
        assert numpy.shares_memory(p.data, flat.data)
        numpy.testing.assert_array_equal(p.numpy(), value)
    assert params[0].data.strides == values[0].strides      # still channels-last


def test_bind_leaves_none_gradients_none_and_copies_fresh_ones_in():
    params = parameters()
    flat = FlatParameters(params)
    assert all(p.grad is None for p in params)              # nothing turned into zeros
    params[0].grad = numpy.full(params[0].shape, 2.0, dtype=numpy.float32)     # as backward gives
    assert flat.bind() == [True, False, False]
    assert numpy.shares_memory(params[0].grad, flat.grad) and params[1].grad is None
    numpy.testing.assert_array_equal(flat.grad[:54], 2.0)


def test_zero_grad_to_none_or_to_zeros_as_torch():
    params = parameters()
    flat = FlatParameters(params)
    params[0].grad = numpy.ones(params[0].shape, dtype=numpy.float32)
    params[2].grad = numpy.ones(params[2].shape, dtype=numpy.float32)
    flat.zero_grad(set_to_none=False)
    assert params[1].grad is None                           # None stays None, as in torch
    for p in (params[0], params[2]):
        assert numpy.shares_memory(p.grad, flat.grad) and not p.grad.any()
    flat.zero_grad()
    assert all(p.grad is None for p in params)


def test_backward_after_zero_grad_writes_into_the_flat_gradients(rng):
    """A parameter's first gradient goes straight into its grad_slot, a view of the flat
    array: bind() then has nothing to copy, and the next backward accumulates in place."""
    layer = nn.Linear(3, 2)
    flat = FlatParameters(list(layer.parameters()))
    flat.zero_grad()
    assert layer.weight.grad is None
    x = Tensor(rng.standard_normal((4, 3)).astype(numpy.float32))
    layer(x).sum().backward()
    assert layer.weight.grad is layer.weight.grad_slot
    assert numpy.shares_memory(layer.weight.grad, flat.grad)
    expected = layer.weight.grad.copy()
    assert flat.bind() == [True, True]
    numpy.testing.assert_array_equal(flat.grad[:6].reshape(2, 3), expected)
    layer(x).sum().backward()                               # now accumulates into the view
    numpy.testing.assert_array_equal(flat.grad[:6].reshape(2, 3), 2 * expected)
