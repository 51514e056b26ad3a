"""minires.optim: SGD and Adam against their update rules written out, then against PyTorch,
then the errors bad arguments and foreign state get. The schedule is in test_lr_scheduler.py;
the flat buffers and blockwise updates in test_flat_parameters.py and test_blockwise.py."""
import math

import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn, optim
from tests.support.networks import batch, small_net
from tests.support.optional_torch import torch
from tests.support.parity import randn, rng_for, to_numpy


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


# --- PyTorch parity ----------------------------------------------------------------------------

PARAMETER_SHAPES = [(3, 4), (5,), (2, 3, 2)]


def run_optimizer(torch, make_torch, make_minires, steps=5):
    """Steps of both optimizers on the same raw parameters with the same fixed gradients."""
    rng = rng_for("optimizer")
    initial = [randn(rng, *shape) for shape in PARAMETER_SHAPES]
    gradients = [[randn(rng, *shape) for shape in PARAMETER_SHAPES] for _ in range(steps)]
    torch_parameters = [torch.tensor(p, requires_grad=True) for p in initial]
    minires_parameters = [nn.Parameter(p.copy()) for p in initial]
    torch_optimizer = make_torch(torch_parameters)
    minires_optimizer = make_minires(minires_parameters)
    for step_gradients in gradients:
        for p_t, p_m, g in zip(torch_parameters, minires_parameters, step_gradients):
            p_t.grad = torch.from_numpy(g.copy())
            p_m.grad = g.copy()
        torch_optimizer.step()
        minires_optimizer.step()
    for index, (p_t, p_m) in enumerate(zip(torch_parameters, minires_parameters)):
        numpy.testing.assert_allclose(p_m.numpy(), to_numpy(p_t), rtol=0, atol=1e-6,
                                      err_msg=f"parameter {index}")
        # the run must have moved the parameters, or the comparison says nothing
        assert numpy.abs(p_m.numpy() - initial[index]).max() > 1e-4


ADAM_CASES = [{}, {"weight_decay": 0.1}, {"lr": 0.01, "weight_decay": 0.1},
              {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}]


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=str)
def test_adam_matches_torch(torch, kwargs):
    run_optimizer(torch, lambda ps: torch.optim.Adam(ps, **kwargs),
                  lambda ps: optim.Adam(ps, **kwargs))


SGD_CASES = [{"lr": 0.1}, {"lr": 0.1, "momentum": 0.9}, {"lr": 0.1, "momentum": 0.9, "nesterov": True},
             {"lr": 0.1, "weight_decay": 0.01},
             {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
             {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=str)
def test_sgd_matches_torch(torch, kwargs):
    run_optimizer(torch, lambda ps: torch.optim.SGD(ps, **kwargs),
                  lambda ps: optim.SGD(ps, **kwargs))


# --- errors ------------------------------------------------------------------------------------

def test_optimizer_arguments():
    with pytest.raises(ValueError, match="no parameter that requires a gradient"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match=r"Adam: lr must be in \[0, inf\), got -1"):
        optim.Adam(nn.Linear(2, 2).parameters(), lr=-1)
    mixed = [nn.Parameter(numpy.ones(2, dtype=numpy.float32)), nn.Parameter(numpy.ones(2))]
    mixed[1].data = mixed[1].data.astype(numpy.float64)
    with pytest.raises(ValueError, match="share one dtype"):
        optim.Adam(mixed)


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam, optim.AdamW])
def test_a_model_cast_after_the_optimizer_was_built_is_refused_not_cast_back(make):
    """model.double() after the optimizer: step() says so, and the model stays float64."""
    model = nn.Linear(3, 2)
    optimizer = make(model.parameters(), lr=0.1)
    model.double()
    F.linear(Tensor(numpy.ones((4, 3))), model.weight, model.bias).sum().backward()
    before = {key: value.copy() for key, value in model.state_dict().items()}
    with pytest.raises(TypeError, match="optimizer: its parameters were float32 when it was built "
                                        "and one is now float64; change the model's dtype"):
        optimizer.step()
    for key, value in model.state_dict().items():
        assert value.dtype == numpy.float64, key
        numpy.testing.assert_array_equal(value, before[key], err_msg=key)


def test_optimizer_state_of_another_model():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3, 2))
    optimizer = optim.Adam(model.parameters())
    state = optimizer.flat_state_dict()          # the layout of minires's checkpoints
    state["exp_avg"] = numpy.zeros(3)
    with pytest.raises(ValueError, match="optimizer state 'exp_avg': expected shape"):
        optimizer.load_state_dict(state)



TOLERANCE = {"float32": 1e-6, "float64": 1e-12}


def twin_layers(dtype, count=3):
    """``count`` Linear(4, 3) layers in minires and in torch with the same weights."""
    ours = [nn.Linear(4, 3).to(dtype) for _ in range(count)]
    theirs = [torch.nn.Linear(4, 3).to(getattr(torch, dtype)) for _ in range(count)]
    with torch.no_grad():
        for mine, torch_layer in zip(ours, theirs):
            torch_layer.weight.copy_(torch.from_numpy(mine.weight.numpy()))
            torch_layer.bias.copy_(torch.from_numpy(mine.bias.numpy()))
    return ours, theirs


def parameters_of(layers):
    return [p for layer in layers for p in layer.parameters()]


def train_both(make_ours, make_theirs, plan, dtype, set_to_none=True, groups=None):
    """Steps of both optimizers on twin layers; step k's loss uses only the layers in plan[k].

    groups: None (one group), or a function (layers) -> list of group dicts for both frameworks.
    Returns the parameters of both after the steps, as lists of float64 arrays.
    """
    ours, theirs = twin_layers(dtype)
    ours_params = groups(ours) if groups else parameters_of(ours)
    theirs_params = groups(theirs) if groups else parameters_of(theirs)
    ours_optimizer, theirs_optimizer = make_ours(ours_params), make_theirs(theirs_params)
    x = numpy.random.default_rng(0).standard_normal((5, 4)).astype(dtype)
    for used in plan:
        ours_optimizer.zero_grad(set_to_none=set_to_none)
        theirs_optimizer.zero_grad(set_to_none=set_to_none)
        y = sum(ours[i](minires.Tensor(x)) for i in used)
        (y * y).mean().backward()
        y_torch = sum(theirs[i](torch.from_numpy(x)) for i in used)
        (y_torch * y_torch).mean().backward()
        ours_optimizer.step()
        theirs_optimizer.step()
    return ([p.numpy().astype(numpy.float64) for p in parameters_of(ours)],
            [p.detach().numpy().astype(numpy.float64) for p in parameters_of(theirs)])


def assert_same(ours, theirs, dtype):
    for index, (mine, expected) in enumerate(zip(ours, theirs)):
        numpy.testing.assert_allclose(mine, expected, rtol=0, atol=TOLERANCE[dtype],
                                      err_msg=f"parameter {index}")


OPTIMIZERS = {
    "SGD momentum, weight decay": ({"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}, "SGD"),
    "SGD dampening": ({"lr": 0.1, "momentum": 0.9, "dampening": 0.5, "weight_decay": 0.1}, "SGD"),
    "SGD nesterov": ({"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, "SGD"),
    "Adam": ({"lr": 0.01}, "Adam"),
    "Adam weight decay": ({"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1}, "Adam"),
    "AdamW": ({"lr": 0.01, "weight_decay": 0.1}, "AdamW"),
    # issue 17
    "RMSprop": ({"lr": 0.01}, "RMSprop"),
    "RMSprop centered, momentum": ({"lr": 0.01, "alpha": 0.9, "momentum": 0.8, "centered": True,
                                    "weight_decay": 0.1}, "RMSprop"),
    "RMSprop maximize": ({"lr": 0.01, "momentum": 0.5, "maximize": True}, "RMSprop"),
    "Adagrad": ({"lr": 0.1}, "Adagrad"),
    "Adagrad decays": ({"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.5,
                        "eps": 1e-6}, "Adagrad"),
    "Adagrad maximize": ({"lr": 0.1, "maximize": True}, "Adagrad"),
}
# layer 2 unused in step 2; layer 1 unused in step 1 (its first step comes later); layer 0 always
PLAN = [(0, 2), (0, 1), (0, 1, 2)]


# --- issue 10, item 7: zero_grad() sets gradients to None and step() skips those parameters ------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_parameter_unused_in_a_step_moves_as_in_torch(name, set_to_none, dtype):
    """With set_to_none=True (the default) a parameter unused in a step keeps its value and its
    state (no momentum, weight decay or moment update); with False it gets a zero gradient."""
    kwargs, rule = OPTIMIZERS[name]
    ours, theirs = train_both(lambda ps: getattr(optim, rule)(ps, **kwargs),
                              lambda ps: getattr(torch.optim, rule)(ps, **kwargs),
                              PLAN, dtype, set_to_none)
    assert_same(ours, theirs, dtype)


def test_a_skipped_parameter_does_not_move_and_keeps_its_state():
    layers, _ = twin_layers("float64")
    optimizer = optim.Adam(parameters_of(layers), lr=0.1, weight_decay=0.1)
    x = minires.Tensor(numpy.ones((2, 4)))
    layers[0](x).sum().backward()
    layers[2](x).sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    layers[0](x).sum().backward()
    skipped = [p.numpy() for p in layers[2].parameters()]
    moments = optimizer.exp_avg.copy(), optimizer.exp_avg_sq.copy()
    optimizer.step()
    assert all(p.grad is None for p in layers[2].parameters())
    for p, before in zip(layers[2].parameters(), skipped):
        numpy.testing.assert_array_equal(p.numpy(), before)
    start, stop = optimizer.flat.offsets[4], optimizer.flat.offsets[6]      # layer 2's slice
    numpy.testing.assert_array_equal(optimizer.exp_avg[start:stop], moments[0][start:stop])
    numpy.testing.assert_array_equal(optimizer.exp_avg_sq[start:stop], moments[1][start:stop])
    assert optimizer.steps.tolist() == [2, 2, 0, 0, 1, 1]


def test_one_call_per_group_when_every_parameter_has_a_gradient():
    layers, _ = twin_layers("float32")
    optimizer = optim.SGD([{"params": layers[0].parameters()},
                           {"params": parameters_of(layers[1:]), "lr": 0.5}], lr=0.1)
    assert optimizer._runs([True] * 6) == [(0, 2), (2, 6)]
    assert optimizer._runs([True, True, True, False, True, True]) == [(0, 2), (2, 3), (4, 6)]


def test_blockwise_update_with_a_skipped_parameter_equals_whole_array_update(monkeypatch):
    """Runs around a skipped parameter go through the threaded blocks like whole groups."""
    from minires.speed import blockwise
    rng = numpy.random.default_rng(0)
    values = [rng.standard_normal(shape).astype(numpy.float32) for shape in [(700, 1000), (3,), (600, 1000)]]
    grads = [[rng.standard_normal(v.shape).astype(numpy.float32) for v in values] for _ in range(3)]

    def run():
        parameters = [nn.Parameter(v.copy()) for v in values]
        optimizer = optim.Adam(parameters, lr=1e-2, weight_decay=1e-3)
        for step, step_grads in enumerate(grads):
            optimizer.zero_grad()
            for index, (parameter, g) in enumerate(zip(parameters, step_grads)):
                if not (step == 1 and index == 1):
                    parameter.grad = g.copy()
            optimizer.step()
        return [p.numpy() for p in parameters]

    blocked = run()
    monkeypatch.setattr(blockwise, "MIN_ELEMENTS", 1 << 40)
    for a, b in zip(blocked, run()):
        numpy.testing.assert_array_equal(a, b)


# --- parameter groups -------------------------------------------------------------------------

def decay_groups(layers):
    """Weights with weight decay, biases without, and the last layer at its own rate."""
    return [{"params": [layer.weight for layer in layers[:2]], "weight_decay": 0.1},
            {"params": [layer.bias for layer in layers[:2]], "weight_decay": 0.0},
            {"params": list(layers[2].parameters()), "lr": 0.003}]


GROUP_CASES = {
    "Adam": ({"lr": 0.01}, "Adam"),
    "AdamW": ({"lr": 0.01, "betas": (0.8, 0.9)}, "AdamW"),
    "SGD": ({"lr": 0.1, "momentum": 0.9}, "SGD"),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", GROUP_CASES)
def test_parameter_groups_match_torch(name, dtype):
    kwargs, rule = GROUP_CASES[name]
    ours, theirs = train_both(lambda ps: getattr(optim, rule)(ps, **kwargs),
                              lambda ps: getattr(torch.optim, rule)(ps, **kwargs),
                              [(0, 1, 2)] * 4, dtype, groups=decay_groups)
    assert_same(ours, theirs, dtype)


def test_parameter_groups_with_their_own_momentum_and_betas():
    def groups(layers):
        return [{"params": parameters_of(layers[:2]), "momentum": 0.0},
                {"params": list(layers[2].parameters()), "momentum": 0.5, "nesterov": True}]
    ours, theirs = train_both(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                              lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
                              PLAN, "float64", groups=groups)
    assert_same(ours, theirs, "float64")

    def adam_groups(layers):
        return [{"params": parameters_of(layers[:2])},
                {"params": list(layers[2].parameters()), "betas": (0.5, 0.6), "eps": 1e-3}]
    ours, theirs = train_both(lambda ps: optim.Adam(ps, lr=0.1),
                              lambda ps: torch.optim.Adam(ps, lr=0.1), PLAN, "float64",
                              groups=adam_groups)
    assert_same(ours, theirs, "float64")


def test_lr_reads_group_zero_and_sets_every_group():
    layers, _ = twin_layers("float32")
    optimizer = optim.Adam(decay_groups(layers), lr=0.01)
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.01, 0.003]
    assert optimizer.lr == 0.01
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    optimizer.lr = 0.5
    assert [g["lr"] for g in optimizer.param_groups] == [0.5, 0.5, 0.5]


def test_a_parameter_in_two_groups_is_refused():
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": layer.parameters()}, {"params": [layer.bias]}], lr=0.1)


# --- AdamW: decoupled weight decay --------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.01, "weight_decay": 0.5},
                                    {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0}],
                         ids=str)
def test_adamw_matches_torch(kwargs):
    ours, theirs = train_both(lambda ps: optim.AdamW(ps, **kwargs),
                              lambda ps: torch.optim.AdamW(ps, **kwargs), [(0, 1, 2)] * 5, "float64")
    assert_same(ours, theirs, "float64")


def test_adamw_decay_is_not_scaled_by_the_gradient():
    """With a zero gradient Adam's step is 0, so AdamW's one step is the decay alone."""
    parameter = nn.Parameter(numpy.full(3, 2.0))
    optimizer = optim.AdamW([parameter], lr=0.1, weight_decay=0.5)
    parameter.grad = numpy.zeros(3)
    optimizer.step()
    numpy.testing.assert_allclose(parameter.numpy(), 2.0 * (1 - 0.1 * 0.5), rtol=1e-15)
    assert optim.AdamW([nn.Parameter(numpy.ones(1))]).param_groups[0]["weight_decay"] == 1e-2


# --- issue 10, item 9: settings PyTorch refuses are refused at construction ------------------------

NAN = float("nan")
REFUSED = [
    ("Adam", {"betas": (1.0, 0.999)}, r"Adam: betas\[0\] must be in \[0, 1\)"),
    ("Adam", {"betas": (0.9, -0.1)}, r"Adam: betas\[1\] must be in \[0, 1\)"),
    ("Adam", {"betas": (NAN, 0.999)}, r"Adam: betas\[0\] must be a finite number"),
    ("Adam", {"eps": -1e-8}, "Adam: eps must be in"),
    ("Adam", {"lr": NAN}, "Adam: lr must be a finite number"),
    ("Adam", {"lr": -0.1}, r"Adam: lr must be in \[0, inf\)"),
    ("Adam", {"weight_decay": -0.1}, "Adam: weight_decay must be in"),
    ("AdamW", {"betas": (0.9, 1.0)}, r"AdamW: betas\[1\] must be in \[0, 1\)"),
    ("AdamW", {"lr": NAN}, "AdamW: lr must be a finite number"),
    ("AdamW", {"weight_decay": -1.0}, "AdamW: weight_decay must be in"),
    ("SGD", {"lr": 0.1, "momentum": -0.9}, "SGD: momentum must be in"),
    ("SGD", {"lr": 0.1, "weight_decay": -0.1}, "SGD: weight_decay must be in"),
    ("SGD", {"lr": NAN}, "SGD: lr must be a finite number"),
    ("SGD", {"lr": 0.1, "nesterov": True}, "SGD: nesterov=True needs a momentum > 0"),
]


@pytest.mark.parametrize("rule, kwargs, message", REFUSED, ids=lambda v: str(v))
def test_invalid_settings_are_refused_at_construction(rule, kwargs, message):
    with pytest.raises(ValueError, match=message):
        getattr(optim, rule)(nn.Linear(2, 2).parameters(), **kwargs)
    with pytest.raises(ValueError, match=message):       # also inside a parameter group
        getattr(optim, rule)([{"params": nn.Linear(2, 2).parameters(), **kwargs}], lr=0.1)
    if not (rule == "SGD" and math.isnan(kwargs.get("lr", 0))):   # torch's SGD takes lr=nan
        with pytest.raises(ValueError):
            getattr(torch.optim, rule)(torch.nn.Linear(2, 2).parameters(), **kwargs)


# --- state ------------------------------------------------------------------------------------

def test_state_dict_round_trip_with_groups_and_skipped_parameters():
    def run(steps, resume_at=None):
        minires.manual_seed(0)
        layers, _ = twin_layers("float64")
        optimizer = optim.Adam(decay_groups(layers), lr=0.01)
        x = minires.Tensor(numpy.ones((2, 4)))
        for step in range(steps):
            if step == resume_at:
                state = optimizer.state_dict()
                optimizer = optim.Adam(decay_groups(layers), lr=1.0, betas=(0.5, 0.5))
                optimizer.load_state_dict(state)
            optimizer.zero_grad()
            for i in PLAN[step % 3]:
                (layers[i](x) * layers[i](x)).sum().backward()
            optimizer.step()
        return [p.numpy() for p in parameters_of(layers)], optimizer

    continuous, _ = run(5)
    resumed, optimizer = run(5, resume_at=2)
    for a, b in zip(continuous, resumed):
        numpy.testing.assert_array_equal(a, b)
    assert optimizer.param_groups[2]["lr"] == 0.003 and optimizer.param_groups[0]["betas"] == (0.9, 0.999)


def test_the_first_checkpoints_optimizer_state_still_loads():
    """Those held lr, step_count and the flat arrays only: every parameter had every step."""
    layers, _ = twin_layers("float64", count=1)
    optimizer = optim.Adam(parameters_of(layers), lr=0.01)
    old = {"lr": 0.004, "step_count": 7, "exp_avg": numpy.full(15, 0.1), "exp_avg_sq": numpy.full(15, 0.2)}
    optimizer.load_state_dict(old)
    assert optimizer.lr == 0.004 and optimizer.step_count == 7
    assert optimizer.steps.tolist() == [7, 7]
    numpy.testing.assert_array_equal(optimizer.exp_avg, 0.1)
