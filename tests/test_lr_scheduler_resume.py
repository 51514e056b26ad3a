"""Issue 17: every schedule's ``last_epoch=`` (resuming a schedule) and ``SequentialLR``, against
PyTorch over 100 epochs, with the twin optimizers of test_lr_scheduler.py."""
import json

import numpy
import pytest

from minires import nn, optim
from minires.optim import lr_scheduler
from tests.support.optional_torch import torch
from tests.test_lr_scheduler import MANUAL, assert_rates_match_torch, rates_over_epochs, twin_optimizers

# name -> a schedule on optimizer o that starts after epoch last_epoch
RESUMABLE = {
    "StepLR": lambda module, o, last_epoch: module.StepLR(o, 10, 1 / 3, last_epoch=last_epoch),
    "MultiStepLR": lambda module, o, last_epoch: module.MultiStepLR(o, [5, 30, 30, 80], 0.5,
                                                                    last_epoch=last_epoch),
    "CosineAnnealingLR": lambda module, o, last_epoch: module.CosineAnnealingLR(o, 12, 0.001,
                                                                                last_epoch=last_epoch),
    "ExponentialLR": lambda module, o, last_epoch: module.ExponentialLR(o, 0.97, last_epoch=last_epoch),
    "LambdaLR": lambda module, o, last_epoch: module.LambdaLR(o, lambda epoch: 1 / (1 + epoch) ** 0.5,
                                                              last_epoch=last_epoch),
    "LinearLR": lambda module, o, last_epoch: module.LinearLR(o, 0.25, 0.9, 40, last_epoch=last_epoch),
    "OneCycleLR": lambda module, o, last_epoch: module.OneCycleLR(o, [0.5, 0.05], total_steps=200,
                                                                  last_epoch=last_epoch),
}


def resumed(module, optimizer, make, epochs, manual):
    """Rates of a schedule run for ``epochs`` epochs, then replaced by one built with
    last_epoch=epochs on the same optimizer (as after loading the optimizer's state), over 100."""
    first = make(module, optimizer, -1)
    for _ in range(epochs):
        optimizer.step()
        first.step()
    return rates_over_epochs(optimizer, make(module, optimizer, first.last_epoch), manual)


@pytest.mark.parametrize("epochs", [0, 9, 29])       # 9 and 29: StepLR's and MultiStepLR's next
@pytest.mark.parametrize("manual", [{}, MANUAL], ids=["untouched", "changed by hand"])
@pytest.mark.parametrize("name", RESUMABLE)
def test_a_schedule_resumed_with_last_epoch_matches_torch(name, manual, epochs):
    ours, theirs = twin_optimizers()
    ours_rates = resumed(lr_scheduler, ours, RESUMABLE[name], epochs, manual)
    theirs_rates = resumed(torch.optim.lr_scheduler, theirs, RESUMABLE[name], epochs, manual)
    for mine, expected in zip(ours_rates, theirs_rates):
        numpy.testing.assert_allclose(mine, expected, rtol=1e-13, atol=0)
    assert len(numpy.unique(ours_rates[0][:, 0])) > 1       # the schedule did change the rate


def test_resuming_without_the_optimizers_initial_lr_is_refused_as_torch_refuses():
    ours, theirs = twin_optimizers()
    with pytest.raises(KeyError, match="initial_lr"):
        torch.optim.lr_scheduler.StepLR(theirs, 10, last_epoch=4)
    with pytest.raises(ValueError, match=r"StepLR: last_epoch=4 resumes a schedule, but "
                                         r"param_groups\[0\] has no 'initial_lr'"):
        lr_scheduler.StepLR(ours, 10, last_epoch=4)
    assert [group["lr"] for group in ours.param_groups] == [0.1, 0.01]


SEQUENCES = {
    "warm-up then cosine": lambda module, o: module.SequentialLR(
        o, [module.LinearLR(o, start_factor=0.1, total_iters=5), module.CosineAnnealingLR(o, T_max=40)],
        milestones=[10]),
    "three schedules": lambda module, o: module.SequentialLR(
        o, [module.ExponentialLR(o, 0.9), module.StepLR(o, 7, 0.5),
            module.LambdaLR(o, lambda epoch: 1 / (1 + epoch))], milestones=[20, 55]),
    "multistep with a milestone 0, then linear": lambda module, o: module.SequentialLR(
        o, [module.MultiStepLR(o, [0, 3], 0.5), module.LinearLR(o, 0.5, 1.0, 10)], milestones=[30]),
    "resumed at epoch 12": lambda module, o: module.SequentialLR(
        o, [module.StepLR(o, 4, 0.5), module.ExponentialLR(o, 0.95)], milestones=[25], last_epoch=12),
}


@pytest.mark.parametrize("manual", [{}, MANUAL], ids=["untouched", "changed by hand"])
@pytest.mark.parametrize("name", SEQUENCES)
def test_sequential_lr_matches_torch_over_100_epochs(name, manual):
    assert_rates_match_torch(SEQUENCES[name], manual)


def test_a_resumed_sequential_lr_continues_as_the_uninterrupted_one():
    optimizer, _ = twin_optimizers()
    scheduler = SEQUENCES["warm-up then cosine"](lr_scheduler, optimizer)
    continuous = []
    for epoch in range(40):
        if epoch == 20:
            state = json.loads(json.dumps(scheduler.state_dict()))     # as a checkpoint keeps it
            again, _ = twin_optimizers(lrs=(5.0, 5.0))
            again_scheduler = SEQUENCES["warm-up then cosine"](lr_scheduler, again)
            again_scheduler.load_state_dict(state)
            assert again_scheduler.state_dict() == scheduler.state_dict()
        continuous.append(optimizer.lr)
        scheduler.step()
    for epoch in range(20, 40):
        assert again.lr == continuous[epoch]
        again_scheduler.step()


def test_sequential_lr_refuses_a_schedule_of_another_optimizer():
    optimizer, other = (optim.SGD([nn.Parameter(numpy.zeros(1))], lr=0.1) for _ in range(2))
    with pytest.raises(ValueError, match=r"SequentialLR: schedulers\[1\] \(StepLR\) schedules another"):
        lr_scheduler.SequentialLR(optimizer, [lr_scheduler.StepLR(optimizer, 2),
                                              lr_scheduler.StepLR(other, 2)], milestones=[3])
