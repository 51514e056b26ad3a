"""The new layer options working together (issue 10), as a small network against PyTorch.

A depthwise-separable block with a dilated convolution, batch norm without affine parameters
and with a cumulative average, ceil_mode max pooling, adaptive average pooling, BatchNorm1d
and a weighted, smoothed cross entropy that ignores a class: two SGD steps in float64 in both
frameworks from the same weights, comparing the loss, every gradient and the state after.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn, optim

torch = pytest.importorskip("torch")


def network(framework):
    """The same architecture built from ``framework`` (minires.nn or torch.nn), positionally
    where PyTorch's order matters."""
    return framework.Sequential(
        framework.Conv2d(3, 6, 3, 1, 2, 2),                  # dilation 2 (the 6th positional)
        framework.BatchNorm2d(6, affine=False, momentum=None),
        framework.ReLU(),
        framework.Conv2d(6, 6, 3, 1, 1, 1, 6),               # depthwise (groups, 7th)
        framework.Conv2d(6, 8, 1, bias=False),               # pointwise
        framework.BatchNorm2d(8, track_running_stats=False),
        framework.MaxPool2d(3, 2, 1, 1, False, True),        # ceil_mode (6th)
        framework.AvgPool2d(2, 1, 1, True, False),           # ceil_mode, count_include_pad=False
        framework.AdaptiveAvgPool2d((2, 1)),
        framework.Flatten(),
        framework.BatchNorm1d(16, momentum=None),
        framework.Linear(16, 5),
    )


def test_small_network_with_every_new_option_trains_as_in_torch():
    torch.manual_seed(0)
    theirs = network(torch.nn).double()
    mine = network(nn).double()
    mine.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    weight = numpy.array([1.0, 0.5, 2.0, 1.0, 0.25])
    rng = numpy.random.default_rng(0)
    torch_sgd = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    minires_sgd = optim.SGD(mine.parameters(), lr=0.1, momentum=0.9)
    for step in range(2):
        x = rng.standard_normal((4, 3, 9, 7))
        labels = numpy.array([0, 3, 4, 3])                   # class 3 is ignored
        loss_t = torch.nn.functional.cross_entropy(
            theirs(torch.from_numpy(x)), torch.from_numpy(labels), torch.from_numpy(weight),
            ignore_index=3, label_smoothing=0.1)
        loss_m = F.cross_entropy(mine(Tensor(x)), labels, weight, ignore_index=3,
                                 label_smoothing=0.1)
        torch_sgd.zero_grad()
        minires_sgd.zero_grad()
        loss_t.backward()
        loss_m.backward()
        assert loss_m.item() == pytest.approx(loss_t.item(), rel=1e-10)
        torch_parameters = dict(theirs.named_parameters())
        for name, parameter in mine.named_parameters():
            numpy.testing.assert_allclose(parameter.grad, torch_parameters[name].grad.numpy(),
                                          rtol=1e-8, atol=1e-12, err_msg=f"step {step}: {name}")
        torch_sgd.step()
        minires_sgd.step()
    torch_state = theirs.state_dict()
    assert list(mine.state_dict()) == list(torch_state)
    for key, value in mine.state_dict().items():
        numpy.testing.assert_allclose(value, torch_state[key].numpy(), rtol=1e-8, atol=1e-12,
                                      err_msg=key)
    mine.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 9, 7))
    numpy.testing.assert_allclose(mine(Tensor(x)).numpy(),
                                  theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-8, atol=1e-12)


def test_summary_of_the_network_shows_dilation_and_same_padding():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 2, 2),
                          nn.Conv2d(4, 4, 4, padding="same", groups=2))
    rows, totals = minires.summary(model, (3, 9, 9), print_fn=lambda line: None)
    assert rows[0]["formula"] == "(9 + 2*2 - 2*(3 - 1) - 1) // 1 + 1 = 9"
    assert rows[1]["formula"] == "(9 + 2*1 + 1 - 4) // 1 + 1 = 9"      # the odd one at the bottom
    assert totals["parameters"] == (4 * 3 * 9 + 4) + (4 * 2 * 16 + 4)
