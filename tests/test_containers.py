"""ModuleList, Identity and the activation modules against torch.nn."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.optional_torch import torch
from tests.support.torch_oracle import same_as_torch


def build_list(framework):
    """A ModuleList built by every way of adding modules, inside a model."""
    class Model(framework.Module):
        def __init__(self):
            super().__init__()
            self.blocks = framework.ModuleList([framework.Linear(4, 4)])
            self.blocks.append(framework.Linear(4, 2))
            self.blocks.extend([framework.ReLU(), framework.Linear(2, 2)])
            self.blocks.insert(1, framework.Linear(4, 4))
            self.head = framework.Linear(2, 1)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(x)
    return Model()


def test_module_list_registers_children_with_torch_keys():
    ours, theirs = build_list(nn), build_list(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "blocks.2.weight",
        "blocks.2.bias", "blocks.4.weight", "blocks.4.bias", "head.weight", "head.bias"]
    for (key, value), (_, expected) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert value.shape == tuple(expected.shape), key
    assert len(list(ours.parameters())) == len(list(theirs.parameters())) == 10
    ours.eval()
    assert not any(m.training for m in ours.blocks)


def test_module_list_forward_and_gradients_match_torch(rng):
    ours, theirs = build_list(nn).double(), build_list(torch.nn).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((3, 4))
    y = ours(Tensor(x))
    y_torch = theirs(torch.from_numpy(x))
    numpy.testing.assert_allclose(y.numpy(), y_torch.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    y_torch.sum().backward()
    for (key, p), p_torch in zip(ours.named_parameters(), theirs.parameters()):
        numpy.testing.assert_allclose(p.grad, p_torch.grad.numpy(), rtol=1e-12, err_msg=key)
    weight = ours.blocks[0].weight
    assert minires.gradcheck(lambda x, w: ours(x), [Tensor(x, requires_grad=True), weight])


def test_module_list_indexing_like_a_list():
    layers = [nn.Linear(1, 1) for _ in range(4)]
    modules = nn.ModuleList(layers[:3])
    assert len(modules) == 3 and list(modules) == layers[:3]
    assert modules[-1] is layers[2] and list(modules[1:]) == layers[1:3]
    assert isinstance(modules[1:], nn.ModuleList)
    modules[1] = layers[3]
    assert list(modules) == [layers[0], layers[3], layers[2]]
    del modules[0]
    assert list(modules) == [layers[3], layers[2]]
    assert list(modules.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    modules += [layers[0]]
    assert len(modules) == 3 and modules[2] is layers[0]
    assert modules[0] is getattr(modules, "0")


def test_identity_as_torch(rng):
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    layer = nn.Identity(54, unused_argument=0.1)
    assert layer(x) is x and not list(layer.parameters())
    assert repr(layer) == repr(torch.nn.Identity()) == "Identity()"
    model = nn.Sequential(nn.Linear(3, 2).double(), nn.Identity())
    assert minires.gradcheck(lambda x: model(x), [x])


# --- activation modules: thin wrappers over functions written in parallel --------------------------

def needs(name):
    return pytest.mark.skipif(not hasattr(F, name), reason=f"minires.functional has no {name} yet")


ACTIVATIONS = [
    pytest.param(lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid(), marks=needs("sigmoid"), id="Sigmoid"),
    pytest.param(lambda: nn.Tanh(), lambda: torch.nn.Tanh(), marks=needs("tanh"), id="Tanh"),
    pytest.param(lambda: nn.LeakyReLU(), lambda: torch.nn.LeakyReLU(), marks=needs("leaky_relu"),
                 id="LeakyReLU"),
    pytest.param(lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2),
                 marks=needs("leaky_relu"), id="LeakyReLU(0.2)"),
    pytest.param(lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1), marks=needs("softmax"),
                 id="Softmax(1)"),
    pytest.param(lambda: nn.Softmax(dim=0), lambda: torch.nn.Softmax(dim=0), marks=needs("softmax"),
                 id="Softmax(0)"),
]


@pytest.mark.parametrize("make, make_torch", ACTIVATIONS)
def test_activation_module_matches_torch(make, make_torch, rng):
    layer, torch_layer = make(), make_torch()
    x = rng.standard_normal((4, 5)) * 3
    gy = rng.standard_normal((4, 5))
    x_ours, x_torch = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, y_torch = layer(x_ours), torch_layer(x_torch)
    numpy.testing.assert_allclose(y.numpy(), y_torch.detach().numpy(), rtol=1e-12, atol=1e-15)
    y.backward(gy)
    y_torch.backward(torch.from_numpy(gy))
    numpy.testing.assert_allclose(x_ours.grad, x_torch.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert repr(layer) == repr(torch_layer)
    assert minires.gradcheck(lambda x: layer(x), [Tensor(x, requires_grad=True)])


# --- issue 17: ModuleDict, ParameterList, Unflatten, Upsample ----------------------------------

def test_module_dict_and_parameter_list_register_as_torch():
    built = []
    for nn_, make in ((nn, lambda: numpy.ones(2, numpy.float32)), (torch.nn, lambda: torch.ones(2))):
        class Heads(nn_.Module):
            def __init__(self):
                super().__init__()
                self.heads = nn_.ModuleDict({"cls": nn_.Linear(3, 4), "box": nn_.Linear(3, 2)})
                self.heads["extra"] = nn_.Linear(3, 1)
                self.scales = nn_.ParameterList([nn_.Parameter(make()) for _ in range(2)])
                self.scales.append(nn_.Parameter(make()))
        built.append(Heads())
    ours, theirs = built
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.heads.keys()) == ["cls", "box", "extra"] and "box" in ours.heads
    assert len(ours.scales) == 3 and ours.scales[2] is list(ours.scales)[2]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    del ours.heads["box"]
    assert list(ours.heads) == ["cls", "extra"] and len(list(ours.parameters())) == 7


def test_unflatten_and_upsample_match_torch(rng):
    same_as_torch(nn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3)), rng.standard_normal((4, 6, 5)))
    for scale in (2, 3):
        same_as_torch(nn.Upsample(scale_factor=scale), torch.nn.Upsample(scale_factor=scale),
                      rng.standard_normal((2, 3, 4, 5)))
    same_as_torch(lambda x: F.interpolate(x, size=(8, 10)),
                  lambda x: torch.nn.functional.interpolate(x, size=(8, 10)),
                  rng.standard_normal((1, 2, 4, 5)))


def test_upsample_gradcheck(rng):
    assert minires.gradcheck(lambda x: F.interpolate(x, scale_factor=2), [leaf(rng, 1, 2, 2, 3)], **TOL)
