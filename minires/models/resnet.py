"""ResNet50_layer4: the course's ResNet-50-like network for 32x32 CIFAR-10 images.

Layer by layer (input 3 x 32 x 32; output size D2 = (D1 + 2P - K) // S + 1):

    layer1   conv 7x7/2 pad 3 -> BN -> ReLU -> maxpool 3x3/2 pad 1      64 x 8 x 8
    layer2   3 bottleneck blocks (64 -> 256 channels), the last halves   256 x 4 x 4
    layer3   4 bottleneck blocks (-> 512 channels), the last halves      512 x 2 x 2
    layer4   6 bottleneck blocks (-> 1024 channels)                     1024 x 2 x 2
    avgpool  2x2/2                                                      1024 x 1 x 1
    fc       flatten -> Linear(1024, 10)                                  10

14,750,730 parameters. Module names follow the course's code, so its PyTorch
checkpoints load key for key.
"""
from minires import nn


def unit(in_channels, out_channels, kernel_size, stride=1, padding=0):
    """Conv2d (with bias) -> BatchNorm2d -> ReLU: the course's building unit."""
    return nn.Sequential(
        nn.Conv2d(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size,
                  stride=stride, padding=padding),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),      # batch norm's output is needed by nothing else
    )


class ResidualBlock(nn.Module):
    """Bottleneck block: 1x1 (in -> middle) -> 3x3 (middle) -> 1x1 (middle -> out), plus a shortcut.

    With ``downsample`` the first 1x1 and the shortcut have stride 2, halving H and W.

    The course's shortcut is a projection unit (1x1 conv -> BN -> ReLU) that runs in
    *every* block: its skeleton guards it with ``if x.size() is not out.size()``,
    an identity test that is always true, and its checkpoints were trained that way.
    ``identity_shortcut=True`` gives the textbook block instead: the input itself is
    added when the shapes already match. There is no ReLU after the addition.
    """

    def __init__(self, in_channels, middle_channels, out_channels, downsample=False,
                 identity_shortcut=False):
        super().__init__()
        stride = 2 if downsample else 1
        self.layer = nn.Sequential(
            unit(in_channels, middle_channels, kernel_size=1, stride=stride, padding=0),
            unit(middle_channels, middle_channels, kernel_size=3, stride=1, padding=1),
            unit(middle_channels, out_channels, kernel_size=1, stride=1, padding=0),
        )
        self.identity = identity_shortcut and not downsample and in_channels == out_channels
        if downsample:
            self.downsize = unit(in_channels, out_channels, kernel_size=1, stride=2, padding=0)
        elif not self.identity:
            self.make_equal_channel = unit(in_channels, out_channels, kernel_size=1, stride=1,
                                           padding=0)

    def forward(self, x):
        out = self.layer(x)
        if self.identity:
            shortcut = x
        elif "downsize" in self._modules:
            shortcut = self.downsize(x)
        else:
            shortcut = self.make_equal_channel(x)
        return out + shortcut


class ResNet50_layer4(nn.Module):
    """The course network: (N, 3, 32, 32) images -> (N, num_classes) logits."""

    def __init__(self, num_classes=10, identity_shortcut=False):
        super().__init__()

        def block(in_channels, middle, out, downsample=False):
            return ResidualBlock(in_channels, middle, out, downsample, identity_shortcut)

        self.layer1 = nn.Sequential(
            nn.Conv2d(in_channels=3, out_channels=64, kernel_size=7, stride=2, padding=3),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.layer2 = nn.Sequential(
            block(64, 64, 256),
            block(256, 64, 256),
            block(256, 64, 256, downsample=True),
        )
        self.layer3 = nn.Sequential(
            block(256, 128, 512),
            *[block(512, 128, 512) for _ in range(2)],
            block(512, 128, 512, downsample=True),
        )
        self.layer4 = nn.Sequential(
            block(512, 256, 1024),
            *[block(1024, 256, 1024) for _ in range(5)],
        )
        self.avgpool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_features=1024, out_features=num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)

    def forward(self, x):
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, 32, 32):
            raise ValueError(f"ResNet50_layer4: expected input (N, 3, 32, 32), got {tuple(x.shape)}")
        x = self.layer1(x)          # (N, 64, 8, 8)
        x = self.layer2(x)          # (N, 256, 4, 4)
        x = self.layer3(x)          # (N, 512, 2, 2)
        x = self.layer4(x)          # (N, 1024, 2, 2)
        x = self.avgpool(x)         # (N, 1024, 1, 1)
        return self.fc(self.flatten(x))     # (N, num_classes)
