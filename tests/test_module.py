"""minires.nn.module: Module and Parameter: registration by attribute, train/eval, hooks,
state dicts (order, round trip, loading errors)."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn, optim
from minires.models.resnet import ResidualBlock
from tests.support.networks import batch, small_net
from tests.support.optional_torch import torch


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(numpy.ones(3, dtype=numpy.float32))
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 2, bias=False)
        self.note = "not a parameter"
        self.table = numpy.zeros(5)

    def forward(self, x):
        return self.out(F.relu(self.hidden(x * self.scale)))


def test_parameters_are_registered_by_attribute():
    model = TwoLayers()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "hidden.weight", "hidden.bias", "out.weight"]
    assert [p.shape for p in model.parameters()] == [(3,), (4, 3), (4,), (2, 4)]
    assert model.out.bias is None
    assert all(p.requires_grad for p in model.parameters())
    assert model.num_parameters() == 3 + 12 + 4 + 8
    assert model.note == "not a parameter" and model.table.shape == (5,)
    model.hidden = None                 # replacing an attribute unregisters the child
    assert [name for name, _ in model.named_parameters()] == ["scale", "out.weight"]


def test_every_parameter_gets_a_gradient(rng):
    model = TwoLayers()
    model(batch(rng, 5, 3)).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_train_and_eval_propagate():
    net = small_net()
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    block = ResidualBlock(4, 2, 6)
    block.eval()
    assert not block.layer[1][1].training and not block.make_equal_channel[1].training


def test_forward_hooks_see_inputs_and_outputs_and_can_be_removed(rng):
    net = small_net()
    seen = []
    handle = net[3].register_forward_hook(lambda m, i, o: seen.append((i[0].shape, o.shape)))
    net(batch(rng, 2, 2, 6, 6))
    handle.remove()
    net(batch(rng, 2, 2, 6, 6))
    assert seen == [((2, 4, 6, 6), (2, 4, 3, 3))]


# --- state dict --------------------------------------------------------------------------------

def test_state_dict_order_and_contents():
    net = small_net()
    state = net.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                           "1.running_var", "1.num_batches_tracked", "5.weight", "5.bias"]
    counter = state["1.num_batches_tracked"]
    assert counter.shape == () and counter.dtype == numpy.int64
    assert state["5.weight"].shape == (3, 36)


def test_state_dict_round_trip_gives_identical_outputs(rng):
    source = small_net()
    for _ in range(3):                      # move the running statistics away from 0 and 1
        source(batch(rng, 4, 2, 6, 6) + 0.5)
    saved = {key: numpy.array(value) for key, value in source.state_dict().items()}
    minires.manual_seed(99)
    target = small_net()
    x = batch(rng, 2, 2, 6, 6)
    assert not numpy.allclose(target.eval()(x).numpy(), source.eval()(x).numpy())
    target.load_state_dict(saved)
    assert target[1].num_batches_tracked.item() == 3
    for mode in ("eval", "train"):
        getattr(source, mode)(), getattr(target, mode)()
        numpy.testing.assert_array_equal(target(x).numpy(), source(x).numpy())
    numpy.testing.assert_array_equal(target[1].running_var.numpy(), source[1].running_var.numpy())


# --- errors ------------------------------------------------------------------------------------

def small_model():
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3, 2))


def test_load_state_dict_names_every_problem_and_copies_nothing():
    model = small_model()
    before = {key: value.copy() for key, value in model.state_dict().items()}
    state = {key: numpy.ones_like(value) for key, value in model.state_dict().items()}
    del state["1.running_var"]
    state["1.extra"] = numpy.zeros(3)
    state["3.weight"] = numpy.zeros((3, 2))
    with pytest.raises(RuntimeError) as caught:
        model.load_state_dict(state)
    message = str(caught.value)
    assert "missing keys: ['1.running_var']" in message
    assert "unexpected keys: ['1.extra']" in message
    assert "3.weight: expected (2, 3), got (3, 2)" in message
    for key, value in model.state_dict().items():
        numpy.testing.assert_array_equal(value, before[key])


def test_load_state_dict_not_strict_reports_missing_and_unexpected():
    model = small_model()
    state = dict(model.state_dict())
    del state["0.bias"]
    state["unknown"] = numpy.zeros(1)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["0.bias"] and unexpected == ["unknown"]
    state["3.bias"] = numpy.zeros(5)
    with pytest.raises(RuntimeError, match=r"3.bias: expected \(2,\), got \(5,\)"):
        model.load_state_dict(state, strict=False)


def test_module_without_super_init():
    class Forgetful(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(numpy.ones(2))

    with pytest.raises(RuntimeError, match=r"Forgetful.__init__ must call super\(\).__init__\(\)"):
        Forgetful()


def test_missing_attribute_names_the_module():
    with pytest.raises(AttributeError, match="'Linear' has no attribute 'weights'"):
        nn.Linear(2, 3).weights


def test_module_to_a_device_points_to_set_backend():
    with pytest.raises(ValueError, match="set_backend"):
        nn.Linear(2, 3).to("cuda")




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


def test_load_state_dict_takes_tensors_and_refuses_other_values_by_key():
    """PyTorch's and minires's state dicts hold Tensors; a list once gave "setting an array
    element with a sequence" after some keys were copied."""
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    target.load_state_dict({key: Tensor(value) for key, value in source.state_dict().items()})
    numpy.testing.assert_array_equal(target.weight.numpy(), source.weight.numpy())
    before = target.weight.numpy()
    with pytest.raises(TypeError, match=r"load_state_dict into Linear: the value of 'bias' must be "
                                         r"an array of numbers, got list"):
        target.load_state_dict({"weight": numpy.zeros((2, 3)), "bias": [0.0, 0.0]})
    numpy.testing.assert_array_equal(target.weight.numpy(), before)


# --- issue 17: PyTorch code that people already have --------------------------------------------

def levels(nn_):
    """A model that registers its blocks under computed names and fetches them back, as DLA does."""
    class Levels(nn_.Module):
        def __init__(self):
            super().__init__()
            for i in range(3):
                self.__setattr__("level_%d" % i, nn_.Linear(2, 2))
            self.register_buffer("steps", nn_.Parameter(torch.zeros(1)).data if nn_ is torch.nn
                                 else Tensor(numpy.zeros(1)))

        def forward(self, x):
            for i in range(3):
                x = self.__getattr__("level_%d" % i)(x)
            return x
    return Levels()


def test_getattr_called_directly_finds_parameters_buffers_and_submodules():
    """Idiom 2: ``self.__getattr__('level_%d' % i)`` after ``self.__setattr__(name, module)``."""
    for model in (levels(nn), levels(torch.nn)):
        assert model.__getattr__("level_1") is model.level_1
        assert model.__getattr__("level_1").__getattr__("weight") is model.level_1.weight
        assert model.__getattr__("steps") is model.steps
        with pytest.raises(AttributeError):
            model.__getattr__("level_3")
    model = levels(nn)
    assert model(Tensor(numpy.ones((1, 2), numpy.float32))).shape == (1, 2)


def shared_model(nn_):
    """A block shared by two paths and a weight tied between two layers."""
    class Shared(nn_.Module):
        def __init__(self):
            super().__init__()
            self.block = nn_.Sequential(nn_.Linear(3, 3), nn_.BatchNorm1d(3))
            self.again = self.block                     # the same block under a second name
            self.encode = nn_.Linear(3, 4, bias=False)
            self.decode = nn_.Linear(4, 3, bias=False)
            self.decode.weight = self.encode.weight     # tied: (4, 3) in both

        def forward(self, x):
            x = self.again(self.block(x))
            return self.encode(x) @ self.decode.weight     # (N, 4) @ (4, 3)
    return Shared()


def test_shared_modules_and_tied_parameters_are_listed_once_as_in_torch():
    """Idiom 4: each object once, under the first name it is reached by; state_dict lists all."""
    ours, theirs = shared_model(nn), shared_model(torch.nn)
    for walk in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert [name for name, _ in getattr(ours, walk)()] == \
               [name for name, _ in getattr(theirs, walk)()], walk
    for walk in ("parameters", "buffers", "modules", "children"):
        assert len(list(getattr(ours, walk)())) == len(list(getattr(theirs, walk)())), walk
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters(prefix="net", recurse=True)] == \
           [n for n, _ in theirs.named_parameters(prefix="net", recurse=True)]
    assert list(ours.block.parameters(recurse=False)) == []
    optimizer = optim.SGD(ours.parameters(), lr=0.1)       # refused before: "more than one group"
    assert len(optimizer.param_groups[0]["params"]) == len(list(theirs.parameters()))


def test_a_tied_model_trains_as_in_torch(rng):
    ours, theirs = shared_model(nn).double(), shared_model(torch.nn).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    optimizer, torch_optimizer = (optim.SGD(ours.parameters(), lr=0.1, momentum=0.9),
                                  torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9))
    x = rng.standard_normal((5, 3))
    for _ in range(2):
        for model, opt, tensor in ((ours, optimizer, Tensor), (theirs, torch_optimizer, torch.tensor)):
            opt.zero_grad()
            (model(tensor(x)) ** 2).mean().backward()
            opt.step()
    for key, value in theirs.state_dict().items():
        numpy.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-10, atol=1e-12,
                                      err_msg=key)


def test_reassigning_a_parameter_or_buffer_keeps_its_place_in_the_state_dict():
    for nn_, make in ((nn, lambda: Tensor(numpy.zeros(3, numpy.float32))),
                      (torch.nn, lambda: torch.zeros(3))):
        layer = nn_.BatchNorm1d(3)
        layer.weight = nn_.Parameter(make())
        layer.running_mean = make()
        keys = list(layer.state_dict())
        assert keys.index("weight") == 0 and keys.index("running_mean") == 2, (nn_, keys)


def test_module_to_the_active_device_is_a_no_op_and_takes_a_dtype_too():
    """Idiom 3: ``net.to(device)`` with device 'cpu' on NumPy; ``.to(device, dtype)`` casts."""
    model = TwoLayers()
    for device in ("cpu", torch.device("cpu"), minires.device("cpu")):
        assert model.to(device) is model and model.cpu() is model
    assert model.hidden.weight.dtype == numpy.float32
    assert model.to("cpu", "float64") is model and model.hidden.weight.dtype == numpy.float64
    assert model.to(device="cpu", dtype=minires.float32).hidden.weight.dtype == numpy.float32
    with pytest.raises(ValueError, match="set_backend"):
        model.cuda()
    with pytest.raises(ValueError, match="set_backend"):
        model.to("cuda:0", minires.float64)


def test_load_state_dict_not_strict_loads_what_fits_and_reports_the_rest_as_torch():
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    state = {"weight": numpy.ones((2, 3), numpy.float32), "extra": numpy.zeros(1, numpy.float32)}
    got = ours.load_state_dict(state, strict=False)
    expected = theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=False)
    assert got.missing_keys == expected.missing_keys == ["bias"]
    assert got.unexpected_keys == expected.unexpected_keys == ["extra"]
    assert tuple(got) == (["bias"], ["extra"]) and (ours.weight.numpy() == 1).all()
