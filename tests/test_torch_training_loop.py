"""A training loop written exactly as in a typical PyTorch ``main.py`` runs on minires and matches
PyTorch (issue 17, idiom 8).

The same source text runs with ``torch, nn, F, optim`` bound to PyTorch's modules and then to
minires's: a CIFAR-style network (``out += shortcut``, ``out.view(out.size(0), -1)`` after a
pooling), ``net.to(device)`` and ``inputs.to(device)``, SGD with momentum and weight decay, a
``CosineAnnealingLR``, and the accuracy bookkeeping (``loss.item()``, ``outputs.max(1)``,
``predicted.eq(targets).sum().item()``, ``targets.size(0)``). Three steps in float64, from the
same weights: the losses, the counts, the learning rates and every parameter agree.
"""
import numpy
import pytest

import minires
import minires.functional
from minires import nn as minires_nn
from minires import optim as minires_optim


def network(nn, F):
    """pytorch-cifar's style: a stem, one residual block with a projection shortcut, a head."""
    class BasicBlock(nn.Module):
        def __init__(self, in_planes, planes, stride=1):
            super(BasicBlock, self).__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.shortcut(x)
            out = F.relu(out)
            return out

    class Net(nn.Module):
        def __init__(self, num_classes=10):
            super(Net, self).__init__()
            self.conv1 = nn.Conv2d(3, 4, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.layer1 = BasicBlock(4, 8, stride=2)
            self.linear = nn.Linear(8 * 2 * 2, num_classes)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer1(out)
            out = F.avg_pool2d(out, 2)
            out = out.view(out.size(0), -1)
            out = self.linear(out)
            return out

    return Net()


def main_py(torch, nn, optim, net, batches):
    """The training part of a CIFAR ``main.py``, word for word; returns what it printed."""
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    net = net.to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=200)
    printed = []
    net.train()
    train_loss = 0
    correct = 0
    total = 0
    for batch_idx, (inputs, targets) in enumerate(batches):
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()

        train_loss += loss.item()
        _, predicted = outputs.max(1)
        total += targets.size(0)
        correct += predicted.eq(targets).sum().item()
        scheduler.step()
        printed.append((train_loss / (batch_idx + 1), correct, total, scheduler.get_last_lr()[0]))
    return printed


class MiniresAsTorch:
    """The names ``main_py`` reaches on ``torch``, from minires."""
    class cuda:
        @staticmethod
        def is_available():
            return minires.get_backend() == "cupy"

    optim = minires_optim


def test_a_pytorch_main_py_trains_on_minires_as_on_torch():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(17)
    images = [rng.standard_normal((6, 3, 8, 8)) for _ in range(3)]
    labels = [rng.integers(0, 10, 6) for _ in range(3)]

    theirs = network(torch.nn, torch.nn.functional).double()
    ours = network(minires_nn, minires.functional).double()
    ours.load_state_dict({key: value.detach().numpy() for key, value in theirs.state_dict().items()})

    expected = main_py(torch, torch.nn, torch.optim, theirs,
                       [(torch.tensor(x), torch.tensor(y)) for x, y in zip(images, labels)])
    got = main_py(MiniresAsTorch, minires_nn, minires_optim, ours,
                  [(minires.Tensor(x), minires.Tensor(y)) for x, y in zip(images, labels)])

    for step, (row, expected_row) in enumerate(zip(got, expected)):
        numpy.testing.assert_allclose(row[0], expected_row[0], rtol=1e-10, err_msg=f"loss {step}")
        assert row[1:3] == expected_row[1:3], step                      # correct, total
        numpy.testing.assert_allclose(row[3], expected_row[3], rtol=1e-12, err_msg=f"lr {step}")
    torch_state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        numpy.testing.assert_allclose(value, torch_state[key].numpy(), rtol=1e-9, atol=1e-12, err_msg=key)
