"""The flat buffers behind the optimizers: their contract, None gradients included."""
import numpy

from minires import Tensor, nn
from minires.speed.flat_parameters import FlatParameters


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


def test_backward_after_zero_grad_gives_fresh_gradients_that_bind_copies(rng):
    layer = nn.Linear(3, 2)
    flat = FlatParameters(list(layer.parameters()))
    x = Tensor(rng.standard_normal((4, 3)).astype(numpy.float32))
    layer(x).sum().backward()
    assert not numpy.shares_memory(layer.weight.grad, flat.grad)
    expected = layer.weight.grad.copy()
    assert flat.bind() == [True, True]
    numpy.testing.assert_array_equal(flat.grad[:6].reshape(2, 3), expected)
    layer(x).sum().backward()                               # now accumulates into the view
    numpy.testing.assert_array_equal(flat.grad[:6].reshape(2, 3), 2 * expected)
