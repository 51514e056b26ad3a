"""minires.optim.lr_scheduler: StepLR, alone, against PyTorch's, and its errors."""
import numpy
import pytest

from minires import nn, optim


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
    with pytest.raises(ValueError, match="step_size must be at least 1"):
        optim.StepLR(optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), step_size=0)
