"""minires.nn.module: Module and Parameter: registration by attribute, train/eval, hooks,
state dicts (order, round trip, loading errors)."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import nn
from minires.models.resnet import ResidualBlock
from tests.support.networks import batch, small_net


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
