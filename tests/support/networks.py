"""Small networks and batches for the tests that train or compare whole models (no torch)."""
import numpy

from minires import Tensor, nn


def small_net(in_channels=2, classes=3):
    """Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d -> Flatten -> Linear, for (N, 2, 6, 6) inputs."""
    return nn.Sequential(
        nn.Conv2d(in_channels=in_channels, out_channels=4, kernel_size=3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(in_features=4 * 3 * 3, out_features=classes),
    )


def batch(rng, *shape):
    """A float32 Tensor of standard normal values."""
    return Tensor(rng.standard_normal(shape).astype(numpy.float32))
