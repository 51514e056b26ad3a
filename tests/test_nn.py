"""Modules, state dicts, the course model's structure, optimizers and the lr schedule (no torch)."""
import math

import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn, optim
from minires.models.resnet import ResidualBlock, ResNet50_layer4


@pytest.fixture(scope="module")
def resnet():
    minires.manual_seed(0)
    return ResNet50_layer4()


def small_net():
    return nn.Sequential(
        nn.Conv2d(in_channels=2, out_channels=4, kernel_size=3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(in_features=4 * 3 * 3, out_features=3),
    )


def batch(rng, *shape):
    return Tensor(rng.standard_normal(shape).astype(numpy.float32))


# --- Module and Sequential ---------------------------------------------------------------------

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


def test_sequential_children_are_named_and_indexable():
    net = small_net()
    assert [name for name, _ in net.named_modules()][:4] == ["", "0", "1", "2"]
    assert len(net) == 6
    assert isinstance(net[0], nn.Conv2d) and isinstance(net[-1], nn.Linear)
    assert [type(m).__name__ for m in net] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                                              "Flatten", "Linear"]
    assert [name for name, _ in net.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias"]


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


def test_batchnorm_running_statistics_update_only_in_training(rng):
    bn = nn.BatchNorm2d(3)
    x = batch(rng, 4, 3, 2, 5) * 2.0 + 1.0
    bn(x)
    values = x.numpy().transpose(1, 0, 2, 3).reshape(3, -1)
    numpy.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * values.mean(axis=1), rtol=1e-5)
    numpy.testing.assert_allclose(bn.running_var.numpy(),
                                  0.9 + 0.1 * values.var(axis=1, ddof=1), rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    stats = bn.running_mean.numpy(), bn.running_var.numpy()
    y = bn(x)
    numpy.testing.assert_array_equal(bn.running_mean.numpy(), stats[0])
    numpy.testing.assert_array_equal(bn.running_var.numpy(), stats[1])
    assert bn.num_batches_tracked.item() == 1
    expected = (x.numpy() - stats[0][:, None, None]) / numpy.sqrt(stats[1][:, None, None] + 1e-5)
    numpy.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)


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


# --- the course model --------------------------------------------------------------------------

def test_resnet_parameter_and_state_dict_counts(resnet):
    assert resnet.num_parameters() == 14_750_730
    assert len(list(resnet.parameters())) == 214
    state = resnet.state_dict()
    assert len(state) == 373
    assert sum(1 for k in state if k.endswith("num_batches_tracked")) == 53


@pytest.mark.parametrize("key, shape", [
    ("layer1.0.weight", (64, 3, 7, 7)),
    ("layer1.0.bias", (64,)),
    ("layer1.1.num_batches_tracked", ()),
    ("layer2.0.layer.0.0.weight", (64, 64, 1, 1)),
    ("layer2.0.layer.1.0.weight", (64, 64, 3, 3)),
    ("layer2.0.make_equal_channel.0.weight", (256, 64, 1, 1)),
    ("layer2.1.make_equal_channel.1.running_mean", (256,)),
    ("layer2.2.downsize.0.weight", (256, 256, 1, 1)),
    ("layer3.3.downsize.1.bias", (512,)),
    ("layer4.0.layer.2.0.weight", (1024, 256, 1, 1)),
    ("layer4.5.layer.2.1.running_var", (1024,)),
    ("fc.weight", (10, 1024)),
    ("fc.bias", (10,)),
])
def test_resnet_state_dict_keys(resnet, key, shape):
    assert tuple(resnet.state_dict()[key].shape) == shape


def test_resnet_state_dict_layout(resnet):
    keys = list(resnet.state_dict())
    assert keys[:7] == ["layer1.0.weight", "layer1.0.bias", "layer1.1.weight", "layer1.1.bias",
                        "layer1.1.running_mean", "layer1.1.running_var",
                        "layer1.1.num_batches_tracked"]
    assert keys[-2:] == ["fc.weight", "fc.bias"]
    assert not any(".downsize." in k for k in keys if not k.startswith(("layer2.2", "layer3.3")))
    assert not any(k.startswith(("layer2.2.make_equal", "layer3.3.make_equal")) for k in keys)
    bound = math.sqrt(6 / (1024 + 10))                 # Xavier-uniform
    fc = resnet.state_dict()["fc.weight"]
    assert numpy.abs(fc).max() <= bound and numpy.abs(fc).max() > 0.9 * bound


def test_identity_shortcut_removes_matching_projections():
    model = ResNet50_layer4(identity_shortcut=True)
    state = model.state_dict()
    removed = 66_304 + 2 * 263_680 + 5 * 1_051_648     # 1x1 conv + BN of 256, 2x512, 5x1024
    assert model.num_parameters() == 14_750_730 - removed
    assert len(state) == 373 - 8 * 7
    assert "layer2.0.make_equal_channel.0.weight" in state      # 64 -> 256 still projects
    assert "layer4.0.make_equal_channel.0.weight" in state      # 512 -> 1024 still projects
    assert "layer2.2.downsize.0.weight" in state
    for key in ("layer2.1", "layer3.1", "layer3.2", "layer4.1", "layer4.5"):
        assert not any(k.startswith(f"{key}.make_equal_channel") for k in state)


def test_identity_block_adds_its_input(rng):
    block = ResidualBlock(4, 2, 4, identity_shortcut=True)
    x = batch(rng, 2, 4, 5, 5)
    numpy.testing.assert_allclose(block(x).numpy(), block.layer(x).numpy() + x.numpy(), rtol=1e-6)
    projected = ResidualBlock(4, 2, 4)
    assert "make_equal_channel" in dict(projected.named_modules())


def test_summary_matches_the_course_table(resnet):
    lines = []
    rows, totals = minires.summary(resnet, (3, 32, 32), depth=1, print_fn=lines.append)
    shapes = {row["name"]: row["output_shape"][1:] for row in rows}
    assert shapes == {"layer1": (64, 8, 8), "layer2": (256, 4, 4), "layer3": (512, 2, 2),
                      "layer4": (1024, 2, 2), "avgpool": (1024, 1, 1), "flatten": (1024,),
                      "fc": (10,)}
    assert totals == {"parameters": 14_750_730, "state_dict_entries": 373}
    text = "\n".join(lines)
    for shape in ("(1, 64, 8, 8)", "(1, 256, 4, 4)", "(1, 512, 2, 2)", "(1, 1024, 2, 2)",
                  "(1, 1024, 1, 1)", "(1, 10)"):
        assert shape in text
    assert "14,750,730" in text and "(2 + 2*0 - 2) // 2 + 1 = 1" in text
    assert resnet.training                              # summary restores the mode


# --- optimizers --------------------------------------------------------------------------------

def regression_loss(model, x, target):
    diff = model(x) - target
    return (diff * diff).mean()


def test_sgd_step_matches_the_rule(rng):
    model = nn.Linear(3, 2)
    x, target = batch(rng, 4, 3), batch(rng, 4, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = [p.numpy() for p in model.parameters()]
    buffers = [numpy.zeros_like(b) for b in before]
    for step in range(2):
        optimizer.zero_grad()
        regression_loss(model, x, target).backward()
        grads = [p.grad.copy() for p in model.parameters()]
        optimizer.step()
        for i, g in enumerate(grads):
            buffers[i] = g if step == 0 else 0.9 * buffers[i] + g
            before[i] = before[i] - 0.1 * buffers[i]
    for p, expected in zip(model.parameters(), before):
        numpy.testing.assert_allclose(p.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_adam_uses_new_gradients_after_module_zero_grad(rng):
    """module.zero_grad() sets the flat-buffer grads to None; step() must still use backward's."""
    model = small_net()
    x, labels = batch(rng, 2, 2, 6, 6), numpy.array([0, 2])
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    params = [p.numpy().astype(numpy.float64) for p in model.parameters()]
    m = [numpy.zeros_like(p) for p in params]
    v = [numpy.zeros_like(p) for p in params]
    for t in (1, 2, 3):
        if t == 2:
            optimizer.zero_grad()
        else:
            model.zero_grad()
            assert all(p.grad is None for p in model.parameters())
        F.cross_entropy(model(x), labels).backward()
        grads = [p.grad.astype(numpy.float64) for p in model.parameters()]
        assert all(numpy.abs(g).sum() > 0 for g in grads if g.ndim > 1)
        optimizer.step()
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            denom = numpy.sqrt(v[i]) / math.sqrt(1 - 0.999 ** t) + 1e-8
            params[i] = params[i] - 0.01 / (1 - 0.9 ** t) * m[i] / denom
        for p, expected in zip(model.parameters(), params):
            numpy.testing.assert_allclose(p.numpy(), expected, rtol=1e-4, atol=1e-6)


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


def test_step_lr_divides_by_three_every_twenty_epochs():
    optimizer = optim.Adam(nn.Linear(2, 2).parameters(), lr=1e-3)
    scheduler = optim.StepLR(optimizer, step_size=20, gamma=1 / 3)
    rates = []
    for epoch in range(45):
        rates.append(optimizer.lr)          # the rate used during this epoch
        scheduler.step()
    assert rates[:20] == [1e-3] * 20
    assert rates[20] == pytest.approx(1e-3 / 3)
    assert rates[39] == pytest.approx(1e-3 / 3)
    assert rates[40] == pytest.approx(1e-3 / 9)
    resumed = optim.StepLR(optim.Adam(nn.Linear(2, 2).parameters(), lr=1e-3), 20, 1 / 3)
    resumed.load_state_dict(scheduler.state_dict())
    assert resumed.optimizer.lr == pytest.approx(optimizer.lr)


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
                                  lambda ps: optim.SGD(ps, lr=1e-2, momentum=0.9, nesterov=True)])
def test_blockwise_update_equals_whole_array_update(make, monkeypatch):
    """The optimizers update 1M+ parameters in cache-sized blocks on several threads;
    element-wise arithmetic must give bit-identical results either way."""
    from minires.speed import blockwise
    rng = numpy.random.default_rng(0)
    values = rng.standard_normal((1100, 1000)).astype(numpy.float32)    # 1.1 M elements
    grads = [rng.standard_normal(values.shape).astype(numpy.float32) for _ in range(3)]

    def run():
        parameter = minires.nn.Parameter(values.copy())
        optimizer = make([parameter])
        for g in grads:
            optimizer.zero_grad()
            parameter.grad = g.copy()
            optimizer.step()
        return parameter.numpy()

    blocked = run()
    monkeypatch.setattr(blockwise, "MIN_ELEMENTS", 1 << 40)
    whole = run()
    numpy.testing.assert_array_equal(blocked, whole)
    assert not numpy.array_equal(blocked, values)


def test_frozen_parameters_never_move_and_param_groups_hold_the_lr(rng):
    model = small_net()
    frozen = model[0].bias
    frozen.requires_grad = False
    before = frozen.numpy()
    optimizer = optim.Adam(model.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(model(batch(rng, 2, 2, 6, 6)), numpy.array([1, 2])).backward()
        optimizer.step()
    numpy.testing.assert_array_equal(frozen.numpy(), before)
    for group in optimizer.param_groups:        # the course's update_lr
        group["lr"] = 0.01
    assert optimizer.lr == 0.01
    scheduler = optim.StepLR(optimizer, step_size=1, gamma=0.5)
    scheduler.step()
    assert scheduler.get_last_lr() == [0.005] and optimizer.param_groups[0]["lr"] == 0.005


def test_sequential_from_an_ordered_dict_keeps_the_names():
    from collections import OrderedDict
    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(3, 4, 3)), ("act", nn.ReLU())]))
    assert list(model.state_dict()) == ["conv.weight", "conv.bias"]
    assert isinstance(model[1], nn.ReLU) and len(model) == 2
