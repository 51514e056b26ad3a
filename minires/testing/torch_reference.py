"""The course's ResNet50_layer4 in PyTorch: the oracle the parity tests compare minires with.

It follows the course skeleton as the project's seed notes (shared/seed/NOTES.md) describe
it, not minires's code:

- every unit is Conv2d (bias=True) -> BatchNorm2d -> ReLU, an ``nn.Sequential`` named 0, 1, 2;
- ``ResidualBlock(in, middle, out, downsample)`` holds ``layer`` (1x1 -> 3x3 -> 1x1 units) and a
  projection shortcut, ``downsize`` (1x1, stride 2) when downsampling, else ``make_equal_channel``
  (1x1, stride 1); the shortcut runs in *every* block, as the course's ``is not`` test makes it do;
- output = layer(x) + shortcut(x), with no ReLU after the addition;
- Conv2d and Linear weights start Xavier-uniform; biases and BatchNorm keep PyTorch's defaults.

Only the tests and benchmarks import this module: ``import minires`` imports neither it nor
torch.
"""
import torch
from torch import nn


def unit(in_channels, out_channels, kernel_size, stride=1, padding=0):
    """Conv2d (with bias) -> BatchNorm2d -> ReLU, keys ``0.*`` and ``1.*``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                  padding=padding, bias=True),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, middle_channels, out_channels, downsample=False):
        super().__init__()
        stride = 2 if downsample else 1
        self.downsample = downsample
        self.layer = nn.Sequential(
            unit(in_channels, middle_channels, kernel_size=1, stride=stride, padding=0),
            unit(middle_channels, middle_channels, kernel_size=3, stride=1, padding=1),
            unit(middle_channels, out_channels, kernel_size=1, stride=1, padding=0),
        )
        if downsample:
            self.downsize = unit(in_channels, out_channels, kernel_size=1, stride=2, padding=0)
        else:
            self.make_equal_channel = unit(in_channels, out_channels, kernel_size=1, stride=1,
                                           padding=0)

    def forward(self, x):
        out = self.layer(x)
        # the course's guard `if x.size() is not out.size()` is always true: always project
        shortcut = self.downsize(x) if self.downsample else self.make_equal_channel(x)
        return out + shortcut


class ResNet50_layer4(nn.Module):
    """(N, 3, 32, 32) -> (N, num_classes); 14,750,730 parameters, 373 state-dict entries."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=True),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.layer2 = nn.Sequential(
            ResidualBlock(64, 64, 256),
            ResidualBlock(256, 64, 256),
            ResidualBlock(256, 64, 256, downsample=True),
        )
        self.layer3 = nn.Sequential(
            ResidualBlock(256, 128, 512),
            ResidualBlock(512, 128, 512),
            ResidualBlock(512, 128, 512),
            ResidualBlock(512, 128, 512, downsample=True),
        )
        self.layer4 = nn.Sequential(
            ResidualBlock(512, 256, 1024),
            *[ResidualBlock(1024, 256, 1024) for _ in range(5)],
        )
        self.avgpool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.fc = nn.Linear(1024, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)

    def forward(self, x):
        x = self.layer1(x)              # (N, 64, 8, 8)
        x = self.layer2(x)              # (N, 256, 4, 4)
        x = self.layer3(x)              # (N, 512, 2, 2)
        x = self.layer4(x)              # (N, 1024, 2, 2)
        x = self.avgpool(x)             # (N, 1024, 1, 1)
        return self.fc(torch.flatten(x, 1))     # (N, num_classes)


def copy_torch_to_minires(torch_model, minires_model):
    """Load ``torch_model``'s state dict (parameters and buffers) into ``minires_model``."""
    minires_model.load_state_dict({k: v.detach().numpy() for k, v in torch_model.state_dict().items()})
    return minires_model
