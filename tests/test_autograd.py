"""minires.autograd: graph shapes (a diamond, a tensor used twice), accumulation, freeing, dtypes,
no_grad, detach, and the errors backward gives."""
import sys

import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn, optim
from tests.support.networks import small_net


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


@pytest.mark.slow
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


# --- errors ------------------------------------------------------------------------------------

def test_backward_twice():
    x = Tensor(numpy.ones(3), requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already been freed"):
        y.backward()


def test_backward_on_a_non_scalar_without_gradient():
    x = Tensor(numpy.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError,
                       match=r"one-element tensor, got shape \(2, 3\); pass gradient="):
        (x * 2).backward()


def test_backward_with_a_wrongly_shaped_gradient():
    x = Tensor(numpy.ones((2, 3)), requires_grad=True)
    w = Tensor(numpy.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2, 3\)"):
        (x * w).backward(numpy.ones(3))     # would broadcast silently to (2, 3)


def test_backward_without_requires_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor(numpy.ones(2)) * 2).sum().backward()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_backward_from_a_non_finite_loss_is_refused(bad):
    w = Tensor(numpy.ones(3, dtype=numpy.float32), requires_grad=True)
    loss = (w * bad).sum()
    with pytest.raises(FloatingPointError, match="non-finite"):
        loss.backward()
    assert w.grad is None


def test_item_of_many_elements():
    with pytest.raises(ValueError, match=r"one element, got shape \(2,\)"):
        Tensor(numpy.ones(2)).item()


class _Frameworks:
    """The same few operations in minires and in PyTorch, so one scenario runs in both."""

    @staticmethod
    def minires():
        return dict(tensor=lambda v, grad=False: Tensor(numpy.array(v), requires_grad=grad),
                    relu=F.relu, relu_=lambda t: F.relu(t, inplace=True),
                    batch_norm=lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True))

    @staticmethod
    def torch():
        torch = pytest.importorskip("torch")
        return dict(tensor=lambda v, grad=False: torch.tensor(numpy.array(v), requires_grad=grad),
                    relu=torch.relu, relu_=torch.relu_,
                    batch_norm=lambda x, w, b: torch.nn.functional.batch_norm(
                        x, None, None, w, b, training=True))


def _saved_by_mul(f):
    x, w = f["tensor"]([-1.0, 2.0], True), f["tensor"]([3.0, 4.0], True)
    h = x * 1.0
    y = h * w                       # Mul saves h for w's gradient
    f["relu_"](h)
    return y


def _output_saved_by_exp(f):
    y = (f["tensor"]([-1.0, 2.0], True) * 1.0).exp()      # Exp saves its output
    f["relu_"](y)
    return y


def _output_saved_by_relu(f):
    y = f["relu"](f["tensor"]([-1.0, 2.0], True) * 1.0)
    f["relu_"](y)
    return y


def _through_a_view(f):
    x, w = f["tensor"]([[-1.0, 2.0], [3.0, -4.0]], True), f["tensor"]([3.0, 4.0], True)
    h = x * 1.0
    y = h * w
    f["relu_"](h.reshape(-1))       # a view: the same memory as h
    return y


def _through_detach(f):
    x, w = f["tensor"]([-1.0, 2.0], True), f["tensor"]([3.0, 4.0], True)
    h = x * 1.0
    y = h * w
    f["relu_"](h.detach())          # detach shares the data
    return y


def _through_a_copy(f):
    x, w = f["tensor"]([[-1.0, 2.0], [3.0, -4.0]], True), f["tensor"]([3.0, 4.0], True)
    h = x * 1.0
    y = h * w
    f["relu_"](h.T.reshape(-1))     # a transposed tensor flattens into a copy: h is untouched
    return y


def _after_batch_norm(f):
    x = f["tensor"](numpy.arange(16.0).reshape(2, 2, 2, 2) % 5, True)
    h = f["batch_norm"](x * 1.0, f["tensor"]([1.0, 2.0], True), f["tensor"]([0.0, 0.5], True))
    return f["relu_"](h)            # the course's unit: batch norm does not save its output


def _twice_in_place(f):
    h = f["tensor"]([-1.0, 2.0], True) * 1.0
    return f["relu_"](f["relu_"](h))    # the first ReLU saved the values the second overwrites


@pytest.mark.parametrize("scenario, raises", [
    (_saved_by_mul, True), (_output_saved_by_exp, True), (_output_saved_by_relu, True),
    (_through_a_view, True), (_through_detach, True), (_twice_in_place, True),
    (_through_a_copy, False), (_after_batch_norm, False)], ids=lambda v: getattr(v, "__name__", ""))
def test_in_place_change_of_a_saved_value_raises_where_torch_raises(scenario, raises):
    for framework in (_Frameworks.torch, _Frameworks.minires):
        y = scenario(framework())
        if raises:
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                y.sum().backward()
        else:
            y.sum().backward()


def test_the_error_names_the_function_and_the_versions():
    h = leaf([-1.0, 2.0]) * 1.0
    y = h * leaf([3.0, 4.0])
    F.relu(h, inplace=True)
    with pytest.raises(RuntimeError, match=r"the input 0 of Mul is at version 1; expected version 0"):
        y.sum().backward()
    z = F.relu(leaf([-1.0, 2.0]) * 1.0)
    F.relu(z, inplace=True)
    with pytest.raises(RuntimeError, match=r"the output of ReLU is at version 1; expected version 0"):
        z.sum().backward()


def test_version_counts_in_place_changes_also_under_no_grad():
    h = leaf([-1.0, 2.0]) * 1.0
    assert h._version == 0
    F.relu(h, inplace=True)
    with minires.no_grad():
        F.relu(h, inplace=True)
    assert h._version == 2 and h.detach()._version == 2 and h.reshape(2, 1)._version == 2
    assert Tensor(numpy.zeros(2))._version == 0


@pytest.mark.parametrize("layer", ["pointwise conv", "batch norm", "log_softmax"])
def test_in_place_change_of_what_a_layer_saved_is_refused(layer):
    """A 1x1 convolution and batch norm keep a view of their input, log_softmax its output:
    an in-place ReLU on it after the forward would corrupt their backward, so backward refuses."""
    rng = numpy.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True) * 1.0
    if layer == "pointwise conv":
        y = minires.nn.Conv2d(3, 2, kernel_size=1).double()(x)
        F.relu(x, inplace=True)
    elif layer == "batch norm":
        y = minires.nn.BatchNorm2d(3).double()(x)
        F.relu(x, inplace=True)
    else:
        y = F.log_softmax(x.reshape(2, 48), dim=1)
        F.relu(y, inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


class _AddWithoutSumTo(minires.autograd.Function):
    """An op that broadcasts its second input and forgets to sum its gradient back."""

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy, gy


@pytest.mark.parametrize("leaf", [True, False], ids=["leaf", "made by an op"])
def test_a_gradient_of_another_shape_than_its_input_is_refused_naming_the_op(rng, leaf):
    """Not only for leaves: a (2, 3) gradient for a (1, 3) input made by an op once flowed on
    into that op's backward without a word."""
    a = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal((1, 3)), requires_grad=True)
    b_used = b if leaf else b * 2.0
    with pytest.raises(RuntimeError, match=r"_AddWithoutSumTo.backward gave input 1 a gradient of "
                                           r"shape \(2, 3\) for its shape \(1, 3\)"):
        _AddWithoutSumTo()(a, b_used).backward(rng.standard_normal((2, 3)))
    assert b.grad is None


@pytest.mark.parametrize("data, kind", [
    (None, "NoneType"), ("3", "str"), ([[1.0, 2.0], [3.0]], "list"), ([1.0, None], "list"),
    ({"a": 1}, "dict"), (numpy.array(["x"]), "<U1 data"), (numpy.array([None]), "object data"),
])
def test_tensor_refuses_data_that_is_not_numbers(data, kind):
    """PyTorch refuses Tensor(None); NumPy would give a float32 nan (or a string array)."""
    with pytest.raises(TypeError, match=f"Tensor: data must be an array, a number or a .* got {kind}"):
        Tensor(data)
