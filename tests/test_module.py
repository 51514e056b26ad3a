"""Module API against torch.nn.Module: forward hooks that replace the output, apply,
requires_grad_ and zero_grad(set_to_none)."""
import numpy
import pytest

import minires
from minires import Tensor, nn, optim

torch = pytest.importorskip("torch")


def twin_linear(dtype="float64"):
    ours = nn.Linear(4, 3).to(dtype)
    theirs = torch.nn.Linear(4, 3).to(getattr(torch, dtype))
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.numpy()))
        theirs.bias.copy_(torch.from_numpy(ours.bias.numpy()))
    return ours, theirs


# --- issue 10, item 5: a forward hook's return value replaces the output -----------------------

def test_forward_hook_return_replaces_the_output_as_in_torch(rng):
    ours, theirs = twin_linear()
    x = rng.standard_normal((2, 4))
    gy = rng.standard_normal((2, 3))
    for layer in (ours, theirs):
        layer.register_forward_hook(lambda module, inputs, output: output * 2)
        layer.register_forward_hook(lambda module, inputs, output: None)      # keeps the output
        layer.register_forward_hook(lambda module, inputs, output: output + 1)
    y = ours(Tensor(x, requires_grad=True))
    y_torch = theirs(torch.from_numpy(x))
    numpy.testing.assert_allclose(y.numpy(), y_torch.detach().numpy(), rtol=1e-12)
    y.backward(gy)                                     # the replaced output is in the graph
    y_torch.backward(torch.from_numpy(gy))
    numpy.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-12)


def test_forward_hook_gradcheck_float64(rng):
    layer = nn.Linear(4, 3).double()
    layer.register_forward_hook(lambda module, inputs, output: output * output)
    x = Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    assert minires.gradcheck(lambda x, w: layer(x), [x, layer.weight])


def test_removed_hook_no_longer_replaces(rng):
    layer = nn.Linear(4, 3)
    x = Tensor(rng.standard_normal((2, 4)).astype(numpy.float32))
    handle = layer.register_forward_hook(lambda module, inputs, output: output * 0)
    assert not layer(x).numpy().any()
    handle.remove()
    assert layer(x).numpy().any()


# --- Module.apply --------------------------------------------------------------------------------

def test_apply_visits_children_first_then_self_as_torch():
    def build(framework):
        return framework.Sequential(framework.Linear(2, 3),
                                    framework.Sequential(framework.ReLU(), framework.Linear(3, 2)))
    ours, theirs = build(nn), build(torch.nn)
    ours_order, theirs_order = [], []
    assert ours.apply(lambda m: ours_order.append(type(m).__name__)) is ours
    assert theirs.apply(lambda m: theirs_order.append(type(m).__name__)) is theirs
    assert ours_order == theirs_order == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]


def test_apply_initialises_weights(rng):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))

    def init(module):
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
    model.apply(init)
    assert not any(m.bias.numpy().any() for m in model if isinstance(m, nn.Linear))


# --- Module.requires_grad_ -------------------------------------------------------------------------

def test_requires_grad_freezes_and_unfreezes(rng):
    ours, theirs = twin_linear("float32")
    model = nn.Sequential(ours, nn.Linear(3, 2))
    assert model[0].requires_grad_(False) is model[0]
    theirs.requires_grad_(False)
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]
    assert [p.requires_grad for p in theirs.parameters()] == [False, False]
    model(Tensor(rng.standard_normal((2, 4)).astype(numpy.float32))).sum().backward()
    assert model[0].weight.grad is None and model[1].weight.grad is not None
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    assert len(optimizer.params) == 2               # the frozen ones are left out
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())


def test_frozen_after_the_optimizer_is_built_does_not_move(rng):
    """Its gradient stays None after zero_grad(), so step() skips it (torch does the same)."""
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    x = Tensor(rng.standard_normal((2, 4)).astype(numpy.float32))
    model(x).sum().backward()
    optimizer.step()
    model[0].requires_grad_(False)
    before = model[0].weight.numpy()
    for _ in range(2):
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
    numpy.testing.assert_array_equal(model[0].weight.numpy(), before)


# --- Module.zero_grad(set_to_none) ------------------------------------------------------------------

def test_module_zero_grad_as_torch(rng):
    ours, theirs = twin_linear("float32")
    x = rng.standard_normal((2, 4)).astype(numpy.float32)
    for set_to_none in (True, False):
        ours(Tensor(x)).sum().backward()
        theirs(torch.from_numpy(x)).sum().backward()
        ours.zero_grad(set_to_none=set_to_none)
        theirs.zero_grad(set_to_none=set_to_none)
        for p, p_torch in zip(ours.parameters(), theirs.parameters()):
            assert (p.grad is None) == (p_torch.grad is None) == set_to_none
            if not set_to_none:
                assert not p.grad.any()
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_module_zero_grad_without_none_keeps_the_flat_buffer_views(rng):
    model = nn.Linear(4, 3)
    optimizer = optim.Adam(model.parameters())
    x = Tensor(rng.standard_normal((2, 4)).astype(numpy.float32))
    model(x).sum().backward()
    optimizer.step()
    model.zero_grad(set_to_none=False)
    for p in model.parameters():
        assert numpy.shares_memory(p.grad, optimizer.flat.grad) and not p.grad.any()
