"""minires.optim.lr_scheduler: StepLR, alone, against PyTorch's, and its errors."""
import json

import numpy
import pytest

import minires
from minires import nn, optim
from minires.optim import lr_scheduler
from tests.support.optional_torch import torch


def test_step_lr_divides_by_three_every_twenty_epochs():
    optimizer = optim.Adam(nn.Linear(2, 2).parameters(), lr=1e-3)
    scheduler = optim.StepLR(optimizer, step_size=20, gamma=1 / 3)
    rates = []
    for _ in range(45):
        rates.append(optimizer.lr)          # the rate used during this epoch
        scheduler.step()
    assert rates[:20] == [1e-3] * 20
    assert rates[20] == pytest.approx(1e-3 / 3)
    assert rates[39] == pytest.approx(1e-3 / 3)
    assert rates[40] == pytest.approx(1e-3 / 9)
    resumed = optim.StepLR(optim.Adam(nn.Linear(2, 2).parameters(), lr=1e-3), 20, 1 / 3)
    resumed.load_state_dict(scheduler.state_dict())
    assert resumed.optimizer.lr == pytest.approx(optimizer.lr)


# --- PyTorch parity ----------------------------------------------------------------------------

def test_step_lr_matches_torch(torch):
    torch_optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    torch_schedule = torch.optim.lr_scheduler.StepLR(torch_optimizer, step_size=2, gamma=1 / 3)
    minires_optimizer = optim.SGD([nn.Parameter(numpy.zeros(2, dtype=numpy.float32))], lr=0.1)
    minires_schedule = optim.StepLR(minires_optimizer, step_size=2, gamma=1 / 3)
    torch_lrs, minires_lrs = [], []
    for _ in range(7):
        torch_lrs.append(torch_optimizer.param_groups[0]["lr"])
        minires_lrs.append(minires_optimizer.lr)
        torch_optimizer.step()          # the order torch asks for: optimizer, then schedule
        minires_optimizer.step()
        torch_schedule.step()
        minires_schedule.step()
    numpy.testing.assert_allclose(minires_lrs, torch_lrs, rtol=1e-12)
    numpy.testing.assert_allclose(minires_lrs[::2], [0.1 / 3 ** k for k in range(4)], rtol=1e-12)


# --- errors ------------------------------------------------------------------------------------

def test_step_size_must_be_at_least_one():
    with pytest.raises(ValueError, match="StepLR: step_size must be an int >= 1, got 0"):
        optim.StepLR(optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), step_size=0)



EPOCHS = 100
# epoch -> what is done by hand to every group's rate before that epoch's step
MANUAL = {7: lambda lr: lr * 0.5, 33: lambda lr: 0.02, 61: lambda lr: lr * 3}


def twin_optimizers(lrs=(0.1, 0.01)):
    """An SGD with one parameter group per rate, in both frameworks."""
    ours = optim.SGD([{"params": [nn.Parameter(numpy.zeros(2, dtype=numpy.float32))], "lr": lr}
                      for lr in lrs], lr=1.0)
    theirs = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr}
                              for lr in lrs], lr=1.0)
    return ours, theirs


def rates_over_epochs(optimizer, scheduler, manual=MANUAL):
    """The rate of every group used in each epoch, and get_last_lr() after each step."""
    used, last = [], []
    for epoch in range(EPOCHS):
        if epoch in manual:
            for group in optimizer.param_groups:
                group["lr"] = manual[epoch](group["lr"])
        used.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()        # torch's order: the optimizer, then the schedule
        scheduler.step()
        last.append(scheduler.get_last_lr())
    return numpy.array(used), numpy.array(last)


SCHEDULES = {
    "StepLR": lambda module, o: module.StepLR(o, step_size=10, gamma=1 / 3),
    "MultiStepLR": lambda module, o: module.MultiStepLR(o, milestones=[5, 30, 30, 80], gamma=0.5),
    "CosineAnnealingLR": lambda module, o: module.CosineAnnealingLR(o, T_max=12, eta_min=0.001),
    "CosineAnnealingLR without floor": lambda module, o: module.CosineAnnealingLR(o, T_max=25),
    # issue 17
    "ExponentialLR": lambda module, o: module.ExponentialLR(o, gamma=0.97),
    "LambdaLR": lambda module, o: module.LambdaLR(o, lambda epoch: 1 / (1 + epoch) ** 0.5),
    "LambdaLR per group": lambda module, o: module.LambdaLR(
        o, [lambda epoch: 0.9 ** epoch, lambda epoch: 1.0 + (epoch % 5)]),
    "LinearLR": lambda module, o: module.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=40),
    "LinearLR down": lambda module, o: module.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=8),
}


# --- issue 10, item 4 (silent difference) and the everyday API item 3 -----------------------------

@pytest.mark.parametrize("manual", [{}, MANUAL], ids=["untouched", "changed by hand"])
@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_matches_torch_over_100_epochs(name, manual):
    """Chainable as torch's: a rate changed by hand carries on (StepLR used to undo it)."""
    assert_rates_match_torch(SCHEDULES[name], manual)


def assert_rates_match_torch(make, manual):
    """``make(module, optimizer)`` builds the same schedule in both frameworks: over EPOCHS epochs
    the rates used and get_last_lr() agree, and the schedule did change the rate."""
    ours, theirs = twin_optimizers()
    ours_rates = rates_over_epochs(ours, make(lr_scheduler, ours), manual)
    theirs_rates = rates_over_epochs(theirs, make(torch.optim.lr_scheduler, theirs), manual)
    for mine, expected in zip(ours_rates, theirs_rates):
        numpy.testing.assert_allclose(mine, expected, rtol=1e-13, atol=0)
    assert len(numpy.unique(ours_rates[0][:, 0])) > 3


def test_step_lr_keeps_a_rate_set_by_hand():
    optimizer = optim.SGD([nn.Parameter(numpy.zeros(1))], lr=0.1)
    scheduler = optim.StepLR(optimizer, step_size=2, gamma=0.5)
    scheduler.step()
    optimizer.lr = 1.0                  # by hand, between two boundaries
    scheduler.step()                    # epoch 2: a boundary
    assert optimizer.lr == 0.5          # not 0.1 * 0.5, as a rate recomputed from the base gave


def test_optim_step_lr_is_the_scheduler():
    assert optim.StepLR is lr_scheduler.StepLR


def test_cosine_reaches_eta_min_at_t_max_and_comes_back():
    optimizer = optim.SGD([nn.Parameter(numpy.zeros(1))], lr=0.1)
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=4, eta_min=0.01)
    rates = [optimizer.lr]
    for _ in range(8):
        scheduler.step()
        rates.append(optimizer.lr)
    numpy.testing.assert_allclose(rates[4], 0.01, rtol=1e-12)
    numpy.testing.assert_allclose(rates[8], 0.1, rtol=1e-12)
    numpy.testing.assert_allclose(rates[2], 0.01 + 0.09 / 2, rtol=1e-12)


# --- state ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SCHEDULES)
def test_resumed_schedule_continues_as_the_uninterrupted_one(name):
    optimizer, _ = twin_optimizers()
    scheduler = SCHEDULES[name](lr_scheduler, optimizer)
    continuous = []
    for epoch in range(40):
        if epoch == 20:
            state = json.loads(json.dumps(scheduler.state_dict()))     # as a checkpoint keeps it
            resumed_optimizer, _ = twin_optimizers(lrs=(5.0, 5.0))
            resumed = SCHEDULES[name](lr_scheduler, resumed_optimizer)
            resumed.load_state_dict(state)
            assert resumed.state_dict() == scheduler.state_dict()
            assert [g["lr"] for g in resumed_optimizer.param_groups] == scheduler.get_last_lr()
        continuous.append(optimizer.lr)
        scheduler.step()
    for epoch in range(20, 40):
        assert resumed_optimizer.lr == continuous[epoch]
        resumed.step()


def test_the_first_checkpoints_step_lr_state_still_loads():
    """Those saved base_lr, last_epoch, step_size and gamma, and the rate followed from them."""
    optimizer = optim.Adam([nn.Parameter(numpy.zeros(1))], lr=1.0)
    scheduler = optim.StepLR(optimizer, step_size=5, gamma=0.1)
    scheduler.load_state_dict({"base_lr": 1e-3, "last_epoch": 12, "step_size": 20, "gamma": 1 / 3})
    assert (scheduler.step_size, scheduler.gamma, scheduler.last_epoch) == (20, 1 / 3, 12)
    assert optimizer.lr == pytest.approx(1e-3) and scheduler.get_last_lr() == [optimizer.lr]
    for _ in range(8):
        scheduler.step()
    assert optimizer.lr == pytest.approx(1e-3 / 3)      # the boundary at epoch 20


def test_a_checkpoint_of_the_first_format_resumes(tmp_path):
    """A file as the first minires wrote it: optimizer lr and step_count, StepLR's four numbers."""
    model = nn.Linear(3, 2)
    arrays = {f"model/{key}": numpy.asarray(value) for key, value in model.state_dict().items()}
    arrays["optimizer/exp_avg"] = numpy.full(8, 0.01, dtype=numpy.float32)
    arrays["optimizer/exp_avg_sq"] = numpy.full(8, 0.02, dtype=numpy.float32)
    meta = {"format": "minires-checkpoint", "version": 1, "epoch": 25, "step": 0, "settings": {},
            "optimizer": {"lr": 1e-3 / 3, "step_count": 500},
            "scheduler": {"base_lr": 1e-3, "last_epoch": 25, "step_size": 20, "gamma": 1 / 3}}
    arrays["meta"] = numpy.array(json.dumps(meta))
    numpy.savez(tmp_path / "old.npz", **arrays)

    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    scheduler = optim.StepLR(optimizer, step_size=20, gamma=1 / 3)
    minires.load_checkpoint(str(tmp_path / "old.npz"), model, optimizer, scheduler)
    assert optimizer.step_count == 500 and optimizer.steps.tolist() == [500, 500]
    assert optimizer.lr == pytest.approx(1e-3 / 3) and scheduler.last_epoch == 25
    numpy.testing.assert_array_equal(optimizer.exp_avg, numpy.float32(0.01))
    for _ in range(15):
        scheduler.step()
    assert optimizer.lr == pytest.approx(1e-3 / 9)      # epoch 40

    path = tmp_path / "new.npz"         # and the new format goes through a checkpoint too
    minires.save_checkpoint(str(path), model, optimizer, scheduler, epoch=40)
    again = optim.Adam(model.parameters(), lr=1.0)
    again_scheduler = optim.StepLR(again, step_size=20, gamma=1 / 3)
    minires.load_checkpoint(str(path), model, again, again_scheduler)
    assert again.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    assert again_scheduler.state_dict() == scheduler.state_dict()
    assert again.steps.tolist() == [500, 500]


@pytest.mark.parametrize("settings", [{}, {"mode": "max", "factor": 0.5, "patience": 2, "cooldown": 3},
                                      {"threshold_mode": "abs", "threshold": 0.05, "patience": 1,
                                       "min_lr": [0.004, 0.0]}])
def test_reduce_lr_on_plateau_matches_torch(settings):
    """Issue 17: a noisy metric that improves, stalls and improves again, over 100 evaluations."""
    metric = numpy.random.default_rng(5).standard_normal(EPOCHS).cumsum() * 0.1 + numpy.linspace(3, 0, EPOCHS)
    rates = []
    for module in (lr_scheduler, torch.optim.lr_scheduler):
        optimizer = twin_optimizers()[0 if module is lr_scheduler else 1]
        scheduler = module.ReduceLROnPlateau(optimizer, **settings)
        used = []
        for value in metric:
            optimizer.step()
            scheduler.step(value)
            used.append([group["lr"] for group in optimizer.param_groups] + scheduler.get_last_lr())
        rates.append(numpy.array(used))
    numpy.testing.assert_allclose(rates[0], rates[1], rtol=1e-13, atol=0)
    assert len(numpy.unique(rates[0][:, 0])) > 1         # the rate was reduced


@pytest.mark.parametrize("settings", [{}, {"anneal_strategy": "linear", "pct_start": 0.25},
                                      {"three_phase": True, "max_lr": [0.5, 0.05]},
                                      {"cycle_momentum": False, "div_factor": 10.0}])
@pytest.mark.parametrize("rule", ["SGD", "Adam"])
def test_one_cycle_matches_torch_in_rate_and_momentum(settings, rule):
    """Issue 17: 60 steps of OneCycleLR; the rate and the momentum (SGD's, Adam's first beta)."""
    settings = {"max_lr": 0.4, "total_steps": 60, **settings}
    traces = []
    for optim_module, schedules in ((optim, lr_scheduler), (torch.optim, torch.optim.lr_scheduler)):
        zeros = (lambda: nn.Parameter(numpy.zeros(2, dtype=numpy.float32))) if optim_module is optim \
            else (lambda: torch.zeros(2, requires_grad=True))
        extra = {"momentum": 0.9} if rule == "SGD" else {}
        groups = [{"params": [zeros()]}, {"params": [zeros()]}]
        optimizer = getattr(optim_module, rule)(groups, lr=1.0, **extra)
        scheduler = schedules.OneCycleLR(optimizer, **settings)
        trace = []
        for _ in range(60):
            momentum = [g["momentum"] if rule == "SGD" else g["betas"][0] for g in optimizer.param_groups]
            trace.append([g["lr"] for g in optimizer.param_groups] + momentum + scheduler.get_last_lr())
            optimizer.step()
            scheduler.step()
        traces.append(numpy.array(trace))
    numpy.testing.assert_allclose(traces[0], traces[1], rtol=1e-12, atol=1e-15)
