"""minires.optim: SGD and Adam against their update rules written out, then against PyTorch,
then the errors bad arguments and foreign state get. The schedule is in test_lr_scheduler.py;
the flat buffers and blockwise updates in test_flat_parameters.py and test_blockwise.py."""
import math

import numpy
import pytest

import minires.functional as F
from minires import nn, optim
from tests.support.networks import batch, small_net
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
    with pytest.raises(ValueError, match="invalid learning rate -1"):
        optim.Adam(nn.Linear(2, 2).parameters(), lr=-1)
    mixed = [nn.Parameter(numpy.ones(2, dtype=numpy.float32)), nn.Parameter(numpy.ones(2))]
    mixed[1].data = mixed[1].data.astype(numpy.float64)
    with pytest.raises(ValueError, match="share one dtype"):
        optim.Adam(mixed)


def test_optimizer_state_of_another_model():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3, 2))
    optimizer = optim.Adam(model.parameters())
    state = optimizer.state_dict()
    state["exp_avg"] = numpy.zeros(3)
    with pytest.raises(ValueError, match="optimizer state 'exp_avg': expected shape"):
        optimizer.load_state_dict(state)
