"""Issue 17's optimizer options: Adam's and AdamW's ``amsgrad`` and ``maximize``, SGD's ``maximize``.

Each against PyTorch in float64 over several steps, then on the strict stand-in device: the
fused update equals the unfused code it runs on NumPy, and is one launch per flat array.
"""
import numpy
import pytest

from minires import backend, nn, optim
from minires.testing import strict_device
from tests.support.optional_torch import torch
from tests.support.parity import randn, rng_for

SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 6

CASES = {
    "Adam amsgrad": ("Adam", {"lr": 0.05, "betas": (0.9, 0.6), "amsgrad": True}),
    "Adam maximize": ("Adam", {"lr": 0.05, "maximize": True}),
    "Adam amsgrad, maximize, weight decay": ("Adam", {"lr": 0.05, "betas": (0.8, 0.6), "amsgrad": True,
                                                      "maximize": True, "weight_decay": 0.1}),
    "AdamW amsgrad, maximize": ("AdamW", {"lr": 0.05, "betas": (0.9, 0.6), "amsgrad": True, "maximize": True,
                                          "weight_decay": 0.1}),
    "SGD maximize": ("SGD", {"lr": 0.1, "maximize": True}),
    "SGD maximize, weight decay": ("SGD", {"lr": 0.1, "maximize": True, "weight_decay": 0.1}),
    "SGD maximize, momentum, dampening": ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.2,
                                                  "weight_decay": 0.1, "maximize": True}),
    "SGD maximize, nesterov": ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True,
                                       "weight_decay": 0.1, "maximize": True}),
}


def gradients():
    """STEPS lists of gradients, large at first then small, so that amsgrad's maximum of v
    stays above v (which forgets fast with the cases' beta2 = 0.6) and the two rules part."""
    rng = rng_for("optimizer options")
    return [[randn(rng, *shape).astype(numpy.float64) * (4.0 if step < 2 else 0.5) for shape in SHAPES]
            for step in range(STEPS)]


def initial():
    rng = rng_for("optimizer options", "initial")
    return [randn(rng, *shape).astype(numpy.float64) for shape in SHAPES]


def run_minires(rule, kwargs, to_array=numpy.asarray):
    """Parameters (NumPy arrays) after STEPS steps of minires's optimizer."""
    parameters = [nn.Parameter(to_array(p)) for p in initial()]
    optimizer = getattr(optim, rule)(parameters, **kwargs)
    for step_gradients in gradients():
        for p, g in zip(parameters, step_gradients):
            p.grad = to_array(g)
        optimizer.step()
    return [backend.to_host(p.data) for p in parameters]


@pytest.mark.parametrize("name", CASES)
def test_the_option_matches_torch_in_float64(name):
    rule, kwargs = CASES[name]
    parameters = [torch.tensor(p, requires_grad=True) for p in initial()]
    optimizer = getattr(torch.optim, rule)(parameters, **kwargs)
    for step_gradients in gradients():
        for p, g in zip(parameters, step_gradients):
            p.grad = torch.from_numpy(g)
        optimizer.step()
    ours = run_minires(rule, kwargs)
    for index, (mine, theirs, start) in enumerate(zip(ours, parameters, initial())):
        numpy.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-12, atol=1e-14,
                                      err_msg=f"parameter {index}")
        assert numpy.abs(mine - start).max() > 1e-2     # it moved, or the comparison says nothing


@pytest.mark.parametrize("rule, option", [("Adam", "amsgrad"), ("Adam", "maximize"),
                                          ("SGD", "maximize")])
def test_the_option_changes_the_result(rule, option):
    """Without this, a parity test passes for an option that is ignored on both sides."""
    kwargs = {"lr": 0.05, "momentum": 0.9} if rule == "SGD" else {"lr": 0.05, "betas": (0.9, 0.6)}
    plain, with_option = run_minires(rule, kwargs), run_minires(rule, {**kwargs, option: True})
    assert max(numpy.abs(a - b).max() for a, b in zip(plain, with_option)) > 1e-2


def test_amsgrad_in_one_parameter_group_only_matches_torch():
    def groups(parameters):
        return [{"params": parameters[:2], "amsgrad": True}, {"params": parameters[2:]}]
    parameters = [torch.tensor(p, requires_grad=True) for p in initial()]
    ours = [nn.Parameter(p) for p in initial()]
    theirs_optimizer = torch.optim.Adam(groups(parameters), lr=0.05, betas=(0.9, 0.6))
    ours_optimizer = optim.Adam(groups(ours), lr=0.05, betas=(0.9, 0.6))
    for step_gradients in gradients():
        for p, q, g in zip(parameters, ours, step_gradients):
            p.grad, q.grad = torch.from_numpy(g), g.copy()
        theirs_optimizer.step()
        ours_optimizer.step()
    for mine, expected in zip(ours, parameters):
        numpy.testing.assert_allclose(mine.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", CASES)
def test_on_the_stand_in_fused_equals_unfused_and_the_host(name):
    rule, kwargs = CASES[name]
    with strict_device.installed():
        fused = run_minires(rule, kwargs, strict_device.asarray)
    previous = backend.set_fusion(False)
    try:
        with strict_device.installed():
            unfused = run_minires(rule, kwargs, strict_device.asarray)
    finally:
        backend.set_fusion(previous)
    for a, b, c in zip(fused, unfused, run_minires(rule, kwargs)):
        numpy.testing.assert_array_equal(a, b)
        numpy.testing.assert_array_equal(a, c)


# launches of one step on the flat array: the fused update, and with L2 weight decay the two
# operations of g + sign * wd * p before it (AdamW's decoupled decay: p *= 1 - lr wd, one)
LAUNCHES = {"Adam amsgrad": ("_amsgrad_step", 1), "Adam maximize": ("_adam_step", 1),
            "Adam amsgrad, maximize, weight decay": ("_amsgrad_step", 3),
            "AdamW amsgrad, maximize": ("_amsgrad_step", 2), "SGD maximize": ("_descend", 1),
            "SGD maximize, weight decay": ("_descend", 3),
            "SGD maximize, momentum, dampening": ("_momentum_step", 3),
            "SGD maximize, nesterov": ("_nesterov_step", 3)}


@pytest.mark.parametrize("name", CASES)
def test_a_step_is_one_fused_launch_on_the_stand_in(name):
    rule, kwargs = CASES[name]
    function, launches = LAUNCHES[name]
    with strict_device.installed():
        parameters = [nn.Parameter(strict_device.asarray(p)) for p in initial()]
        optimizer = getattr(optim, rule)(parameters, **kwargs)
        for step in range(2):           # the second step: momentum's buffer is no longer new
            for p, g in zip(parameters, gradients()[step]):
                if p.grad is None:
                    p.grad = strict_device.asarray(g)
                else:           # into the flat gradient array, as backward writes it
                    p.grad[...] = strict_device.asarray(g)
            with strict_device.counting() as counts:
                optimizer.step()
    assert counts.by_op[f"fuse({function})"] == 1, counts.by_op
    assert counts.launches == launches, counts.by_op
