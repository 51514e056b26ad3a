"""The autograd engine: graph shapes, accumulation, freeing, dtypes, no_grad, detach."""
import sys

import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn, optim


def leaf(values, dtype=numpy.float64):
    return Tensor(numpy.asarray(values, dtype=dtype), requires_grad=True)


# --- graph shapes ------------------------------------------------------------------------------

def test_diamond_graph():
    x = leaf([1.0, 2.0, -0.5])
    a = x * 2
    b = a + 1
    c = a * 3
    y = b * c                           # (2x + 1) * 6x = 12x^2 + 6x
    xv = x.numpy()
    numpy.testing.assert_allclose(y.numpy(), 12 * xv ** 2 + 6 * xv)
    y.sum().backward()
    numpy.testing.assert_allclose(x.grad, 24 * xv + 6)


def test_leaf_used_twice():
    x = leaf([1.0, -2.0, 3.0])
    (x + x).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    x.grad = None
    (x * x).sum().backward()
    numpy.testing.assert_array_equal(x.grad, 2 * x.numpy())


def test_intermediate_used_twice_residual_pattern():
    x = leaf([0.5, -1.0, 2.0])
    h = x * 2                           # a non-leaf feeding both the skip and the branch
    out = h + F.relu(h * h * 0.25)      # h + relu(x^2) = 2x + x^2
    xv = x.numpy()
    numpy.testing.assert_allclose(out.numpy(), 2 * xv + xv ** 2)
    out.backward(numpy.array([1.0, 2.0, 3.0]))
    numpy.testing.assert_allclose(x.grad, (2 + 2 * xv) * [1.0, 2.0, 3.0])


def test_chain_of_three_operations():
    x = leaf([1.0, 2.0])
    ((x * 2) * 3).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_linear_relu_linear_matches_manual_backprop(rng):
    x = Tensor(rng.standard_normal((4, 3)))
    w1, w2 = leaf(rng.standard_normal((5, 3))), leaf(rng.standard_normal((2, 5)))
    h = F.relu(F.linear(x, w1))
    y = F.linear(h, w2)
    gy = rng.standard_normal((4, 2))
    y.backward(gy)
    pre = x.numpy() @ w1.numpy().T
    gh = gy @ w2.numpy() * (pre > 0)
    numpy.testing.assert_allclose(w2.grad, gy.T @ numpy.maximum(pre, 0))
    numpy.testing.assert_allclose(w1.grad, gh.T @ x.numpy())


def test_deep_chain_needs_no_recursion():
    limit = sys.getrecursionlimit()
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(10_000):             # 20,000 operations
        y = y * 1.0001
        y = y + 0.5
    y.sum().backward()
    numpy.testing.assert_allclose(x.grad, [1.0001 ** 10_000] * 2, rtol=1e-9)
    assert sys.getrecursionlimit() == limit


def test_unused_branches_do_not_break_backward():
    x = leaf([1.0, 2.0])
    a = x * 2
    unused = a * 3                      # recorded, never reaches the loss
    y = (a + 1).sum()
    y.backward()
    numpy.testing.assert_array_equal(x.grad, [2.0, 2.0])
    assert unused.requires_grad


def test_constants_get_no_gradient():
    x, c = leaf([1.0, 2.0]), Tensor(numpy.array([3.0, 4.0]))
    (x * c).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [3.0, 4.0])
    assert c.grad is None


def test_ndarray_on_the_left_defers_to_tensor():
    x = leaf([1.0, 2.0])
    y = numpy.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad, [3.0, 4.0])


# --- accumulation and freeing ------------------------------------------------------------------

def test_leaf_grad_accumulates_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_intermediate_gradients_do_not_accumulate():
    x = leaf([1.0, 2.0])
    h = x * 2
    loss = (h * 3).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    numpy.testing.assert_array_equal(x.grad, [12.0, 12.0])     # 2 * 6, not 6 + 12
    assert h.grad is None


def test_module_and_optimizer_zero_grad(rng):
    layer = nn.Linear(3, 2)
    x = Tensor(rng.standard_normal((4, 3)).astype(numpy.float32))
    layer(x).sum().backward()
    once = layer.weight.grad.copy()
    layer(x).sum().backward()
    numpy.testing.assert_allclose(layer.weight.grad, 2 * once, rtol=1e-6)
    layer.zero_grad()
    assert all(p.grad is None for p in layer.parameters())

    optimizer = optim.SGD(layer.parameters(), lr=0.1)
    layer(x).sum().backward()
    optimizer.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in layer.parameters())
    layer(x).sum().backward()
    numpy.testing.assert_allclose(layer.weight.grad, once, rtol=1e-6)


def test_second_backward_through_freed_graph_is_refused():
    x = leaf([1.0, 2.0])
    y = ((x * 2) * 3).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already been freed.*retain_graph=True"):
        y.backward()
    numpy.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = ((x * 2) * 3).sum()
    y.backward(retain_graph=True)
    y.backward()
    numpy.testing.assert_array_equal(x.grad, [12.0, 12.0])


def test_backward_frees_the_graph():
    x = leaf([1.0, 2.0])
    h = x * 2
    y = (h * h).sum()
    y.backward()
    assert y.creator.inputs is None and h.creator.inputs is None


def test_leaf_backward_copies_the_gradient():
    x = leaf([1.0, 2.0])
    gradient = numpy.array([5.0, 6.0])
    x.backward(gradient)
    gradient[:] = 0
    numpy.testing.assert_array_equal(x.grad, [5.0, 6.0])


def test_upstream_gradient_is_not_modified():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    gradient = numpy.array([[1.0, -1.0], [2.0, 0.5]])
    y = (x * 2 + x).reshape(4)
    y.backward(gradient.reshape(4))
    numpy.testing.assert_array_equal(gradient, [[1.0, -1.0], [2.0, 0.5]])
    numpy.testing.assert_array_equal(x.grad, 3 * gradient)


# --- dtypes ------------------------------------------------------------------------------------

def test_float32_gradients_stay_float32_with_float64_upstream_and_scalars():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=numpy.float32)
    w = leaf([0.5, -1.0, 2.0], dtype=numpy.float32)
    y = (x * numpy.float64(2.0) + w / 3.0 - 1.5) * w
    assert y.dtype == numpy.float32
    y.backward(numpy.ones((2, 3), dtype=numpy.float64))
    assert x.grad.dtype == numpy.float32 and w.grad.dtype == numpy.float32


def test_float64_scalar_exponent_keeps_float32():
    x = leaf([1.0, 2.0], dtype=numpy.float32)
    assert (x * numpy.float64(2.0)).dtype == numpy.float32
    assert (x ** numpy.float64(2.0)).dtype == numpy.float32


def test_reduction_to_a_scalar_keeps_the_dtype():
    for dtype in (numpy.float32, numpy.float64):
        x = leaf([[1.0, 2.0], [3.0, 4.0]], dtype=dtype)
        assert x.sum().dtype == dtype
        assert x.mean().dtype == dtype
        assert x.max().dtype == dtype
        assert F.cross_entropy(x, numpy.array([0, 1])).dtype == dtype


def small_net(in_channels=2, classes=3):
    return nn.Sequential(
        nn.Conv2d(in_channels=in_channels, out_channels=4, kernel_size=3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(in_features=4 * 3 * 3, out_features=classes),
    )


def test_float32_network_gradients_stay_float32(rng):
    net = small_net()
    x = Tensor(rng.standard_normal((2, 2, 6, 6)).astype(numpy.float32))
    labels = numpy.array([0, 2], dtype=numpy.int64)
    loss = F.cross_entropy(net(x), labels)
    assert loss.dtype == numpy.float32
    loss.backward(numpy.float64(1.0))
    assert {p.grad.dtype for p in net.parameters()} == {numpy.dtype(numpy.float32)}


def test_float64_end_to_end(rng):
    net = small_net()
    x32 = rng.standard_normal((2, 2, 6, 6)).astype(numpy.float32)
    logits32 = net(Tensor(x32)).numpy()
    net.double()
    assert {p.dtype for p in net.parameters()} == {numpy.dtype(numpy.float64)}
    assert net[1].running_mean.dtype == numpy.float64
    assert net[1].num_batches_tracked.dtype == numpy.int64
    logits = net(Tensor(x32.astype(numpy.float64)))
    assert logits.dtype == numpy.float64
    numpy.testing.assert_allclose(logits.numpy(), logits32, rtol=1e-4, atol=1e-5)
    loss = F.cross_entropy(logits, numpy.array([1, 0]))
    assert loss.dtype == numpy.float64
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == numpy.float64 for p in net.parameters())
    assert all(numpy.abs(p.grad).sum() > 0 for p in net.parameters() if p.ndim > 1)


# --- no_grad, detach, numpy --------------------------------------------------------------------

def test_no_grad_records_no_graph():
    x = leaf([1.0, 2.0])
    with minires.no_grad():
        assert not minires.is_grad_enabled()
        y = (x * 2).sum()
    assert minires.is_grad_enabled()
    assert not y.requires_grad and y.creator is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with minires.no_grad():
            1 / 0
    assert minires.is_grad_enabled()
    with minires.no_grad():
        with minires.no_grad():
            pass
        assert not minires.is_grad_enabled()
    assert minires.is_grad_enabled()


def test_detach_shares_data_and_cuts_the_graph():
    x = leaf([1.0, 2.0, 3.0])
    d = x.detach()
    assert d.data is x.data
    assert not d.requires_grad and d.creator is None
    (x * x.detach()).sum().backward()
    numpy.testing.assert_array_equal(x.grad, x.numpy())      # x, not 2x


def test_numpy_is_a_host_copy():
    x = leaf([1.0, 2.0])
    copy = x.numpy()
    copy[0] = 100.0
    numpy.testing.assert_array_equal(x.numpy(), [1.0, 2.0])
    assert isinstance(copy, numpy.ndarray) and not numpy.shares_memory(copy, x.data)


def test_max_shares_the_gradient_between_ties():
    """As PyTorch's amax: tied maxima split the gradient, which still sums to the upstream one."""
    x = Tensor(numpy.array([[1.0, 1.0, 0.0], [2.0, 0.0, 2.0], [0.0, 3.0, 1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    y = Tensor(numpy.ones((2, 2), dtype=numpy.float32), requires_grad=True)
    y.max().backward()
    assert y.grad.dtype == numpy.float32
    numpy.testing.assert_array_equal(y.grad, numpy.full((2, 2), 0.25))


def test_inplace_relu_on_a_leaf_that_requires_grad_is_refused():
    x = Tensor(numpy.array([-1.0, 2.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="inplace"):
        F.relu(x, inplace=True)
    numpy.testing.assert_array_equal(x.numpy(), [-1.0, 2.0])
    y = x * 1.0
    F.relu(y, inplace=True).sum().backward()     # a non-leaf may be overwritten
    numpy.testing.assert_array_equal(x.grad, [0.0, 1.0])
