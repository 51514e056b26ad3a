"""The layers, with ``torch.nn``'s constructor signatures and default initialisation.

Each layer holds its parameters and calls one function of ``minires.functional``.
"""
from collections import OrderedDict

import numpy

from minires import backend
from minires import functional as F
from minires.arguments import pair
from minires.nn import init
from minires.nn.module import Module, Parameter


def _empty_parameter(*shape):
    return Parameter(numpy.zeros(shape, dtype=numpy.float32))


class Conv2d(Module):
    """(N, in_channels, H, W) -> (N, out_channels, OH, OW), OH = (H + 2P - K) // S + 1."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        KH, KW = self.kernel_size
        # (OC, C, KH, KW) as PyTorch, stored channels-last, (OC, KH, KW, C) in memory:
        # the convolution multiplies by it as an (OC, KH*KW*C) matrix, which is then
        # a view rather than a copy (the copy took 0.2 ms per 256-channel 3x3 layer,
        # 2.5 ms per forward over the model's 13 3x3 layers)
        channels_last = numpy.zeros((out_channels, KH, KW, in_channels), dtype=numpy.float32)
        # moved to the device while contiguous: CuPy would copy a strided view into C order
        self.weight = Parameter(backend.to_device(channels_last).transpose(0, 3, 1, 2))
        self.bias = _empty_parameter(out_channels) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding})")


class Linear(Module):
    """(N, in_features) -> (N, out_features)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty_parameter(out_features, in_features)
        self.bias = _empty_parameter(out_features) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def __repr__(self):
        return f"Linear(in_features={self.in_features}, out_features={self.out_features})"


class BatchNorm2d(Module):
    """Normalises each channel of (N, C, H, W); see ``minires.functional.norm``."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(numpy.ones(num_features, dtype=numpy.float32))
        self.bias = Parameter(numpy.zeros(num_features, dtype=numpy.float32))
        self.register_buffer("running_mean", numpy.zeros(num_features, dtype=numpy.float32))
        self.register_buffer("running_var", numpy.ones(num_features, dtype=numpy.float32))
        self.register_buffer("num_batches_tracked", numpy.zeros((), dtype=numpy.int64))

    def forward(self, x):
        y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training, self.momentum, self.eps)
        if self.training:
            self.num_batches_tracked.data += 1
        return y

    def __repr__(self):
        return f"BatchNorm2d({self.num_features}, eps={self.eps}, momentum={self.momentum})"


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x, self.inplace)

    def __repr__(self):
        return f"ReLU(inplace={self.inplace})" if self.inplace else "ReLU()"


class _Pool2d(Module):
    """A pooling layer: its function of ``minires.functional`` with fixed window settings."""
    pool = None     # F.max_pool2d or F.avg_pool2d, set by the subclass

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return type(self).pool(x, self.kernel_size, self.stride, self.padding)

    def __repr__(self):
        return (f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding})")


class MaxPool2d(_Pool2d):
    """Maximum over each window: (N, C, H, W) -> (N, C, OH, OW); stride defaults to the kernel."""
    pool = staticmethod(F.max_pool2d)


class AvgPool2d(_Pool2d):
    """Mean over each window (padding counts as zeros): (N, C, H, W) -> (N, C, OH, OW)."""
    pool = staticmethod(F.avg_pool2d)


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def __repr__(self):
        return "Flatten()"


class Sequential(Module):
    """Calls its children in order; they are named "0", "1", ... (or as an OrderedDict names them)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            named = modules[0].items()
        else:
            named = ((str(index), module) for index, module in enumerate(modules))
        for name, module in named:
            setattr(self, name, module)

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class CrossEntropyLoss(Module):
    """``F.cross_entropy`` as a module, as the course's ``criterion = nn.CrossEntropyLoss()``."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.reduction)

    def __repr__(self):
        return f"CrossEntropyLoss(reduction={self.reduction!r})"
