"""The layers, with ``torch.nn``'s constructor signatures and default initialisation.

Each layer holds its parameters and calls one function of ``minires.functional``.
"""
from collections import OrderedDict

import numpy

from minires import backend
from minires import functional as F
from minires.arguments import (
    check_bool,
    check_choice,
    check_int,
    check_loss_arguments,
    check_number,
    check_output_size,
    check_pair,
    check_pool_arguments,
    check_tensor,
    conv_padding,
)
from minires.nn import init
from minires.nn.module import Module, Parameter


def _empty_parameter(*shape):
    return Parameter(numpy.zeros(shape, dtype=numpy.float32))


class Conv2d(Module):
    """(N, in_channels, H, W) -> (N, out_channels, OH, OW), OH = (H + 2P - D(K - 1) - 1) // S + 1.

    PyTorch's arguments in PyTorch's order. ``padding`` may be "same" or "valid";
    ``groups`` gives each of G groups of in_channels/G channels its own
    out_channels/G filters (weight (out_channels, in_channels/G, KH, KW); G =
    in_channels is depthwise). Only ``padding_mode="zeros"`` is supported.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros"):
        super().__init__()

        def name():
            return f"Conv2d({in_channels}, {out_channels}, kernel_size={kernel_size})"
        where = name()
        in_channels = check_int(where, "in_channels", in_channels, least=1)
        out_channels = check_int(where, "out_channels", out_channels, least=1)
        if padding_mode != "zeros":
            raise ValueError(f"{name()}: padding_mode={padding_mode!r} is not supported; "
                             f"minires pads with zeros only (padding_mode='zeros')")
        groups = check_int(where, "groups", groups, least=1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name()}: groups must be a positive int dividing in_channels and "
                             f"out_channels, got groups={groups!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = check_pair(where, "kernel_size", kernel_size, 1)
        self.stride = check_pair(where, "stride", stride, 1)
        self.dilation = check_pair(where, "dilation", dilation, 1)
        self.padding = padding if isinstance(padding, str) else check_pair(where, "padding", padding, 0)
        self.padding_mode = padding_mode
        check_bool(where, "bias", bias)
        # refuse 'same' with a stride, or an unknown padding, now rather than at the first call
        conv_padding(name, self.padding, self.kernel_size, self.stride, self.dilation)
        KH, KW = self.kernel_size
        # (OC, C/G, KH, KW) as PyTorch, stored channels-last, (OC, KH, KW, C/G) in memory:
        # the convolution multiplies by it as an (OC, KH*KW*C/G) matrix, which is then
        # a view rather than a copy (the copy took 0.2 ms per 256-channel 3x3 layer,
        # 2.5 ms per forward over the model's 13 3x3 layers)
        channels_last = numpy.zeros((out_channels, KH, KW, in_channels // groups), dtype=numpy.float32)
        # moved to the device while contiguous: CuPy would copy a strided view into C order
        self.weight = Parameter(backend.to_device(channels_last).transpose(0, 3, 1, 2))
        self.bias = _empty_parameter(out_channels) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def __repr__(self):
        options = _options(padding=(self.padding, (0, 0)), dilation=(self.dilation, (1, 1)),
                           groups=(self.groups, 1), bias=(self.bias is not None, True))
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}{options})")     # as PyTorch's


class ConvTranspose2d(Module):
    """(N, in_channels, H, W) -> (N, out_channels, OH, OW), OH = (H - 1)S - 2P + D(K - 1) + A + 1.

    PyTorch's arguments in PyTorch's order (``output_padding`` A 6th, ``dilation`` 9th);
    weight (in_channels, out_channels / groups, KH, KW), initialised as PyTorch's.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1):
        super().__init__()
        where = f"ConvTranspose2d({in_channels!r}, {out_channels!r}, kernel_size={kernel_size!r})"
        check_int(where, "in_channels", in_channels, least=1)
        check_int(where, "out_channels", out_channels, least=1)
        check_int(where, "groups", groups, least=1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{where}: groups must divide in_channels and out_channels, got "
                             f"groups={groups}")
        KH, KW = check_pair(where, "kernel_size", kernel_size, 1)
        S = check_pair(where, "stride", stride, 1)
        check_pair(where, "padding", padding, 0)
        D = check_pair(where, "dilation", dilation, 1)
        A = check_pair(where, "output_padding", output_padding, 0)
        if A[0] >= max(S[0], D[0]) or A[1] >= max(S[1], D[1]):
            raise ValueError(f"{where}: output_padding must be smaller than the stride or the "
                             f"dilation, got {output_padding!r}")
        check_bool(where, "bias", bias)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (KH, KW)
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.groups, self.dilation = groups, dilation
        self.weight = _empty_parameter(in_channels, out_channels // groups, KH, KW)
        self.bias = _empty_parameter(out_channels) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)

    def __repr__(self):
        return (f"ConvTranspose2d({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride})")


class Linear(Module):
    """(N, in_features) -> (N, out_features)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        where = f"Linear({in_features!r}, {out_features!r})"
        in_features = check_int(where, "in_features", in_features, least=1)
        out_features = check_int(where, "out_features", out_features, least=1)
        check_bool(where, "bias", bias)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty_parameter(out_features, in_features)
        self.bias = _empty_parameter(out_features) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def __repr__(self):
        return f"Linear(in_features={self.in_features}, out_features={self.out_features})"


class _BatchNorm(Module):
    """Normalises each channel over the batch; see ``minires.functional.norm``.

    affine=False: no weight and bias (gamma 1, beta 0). track_running_stats=False:
    no running statistics and no count; batch statistics in evaluation too, as in
    PyTorch. momentum=None: the running statistics average all batches so far
    equally (momentum 1/n at the n-th batch) instead of exponentially.
    """
    dimensions, expected = None, None   # the input's ndim and shape, set by the subclass

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        where = f"{type(self).__name__}({num_features!r})"
        num_features = check_int(where, "num_features", num_features, least=1)
        check_number(where, "eps", eps, low=0)
        if momentum is not None:
            check_number(where, "momentum", momentum, low=0, high=1)
        check_bool(where, "affine", affine)
        check_bool(where, "track_running_stats", track_running_stats)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(numpy.ones(num_features, dtype=numpy.float32))
            self.bias = Parameter(numpy.zeros(num_features, dtype=numpy.float32))
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.register_buffer("running_mean", numpy.zeros(num_features, dtype=numpy.float32))
            self.register_buffer("running_var", numpy.ones(num_features, dtype=numpy.float32))
            self.register_buffer("num_batches_tracked", numpy.zeros((), dtype=numpy.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x):
        if x.ndim not in self.dimensions:
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected input "
                             f"{self.expected.format(C=self.num_features)}, got {tuple(x.shape)}")
        update = self.training and self.track_running_stats
        momentum = self.momentum
        if update and momentum is None:
            # a 0-d array: the count stays on the device, with no read back to the host
            momentum = 1.0 / (self.num_batches_tracked.data + 1)
        y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training or not self.track_running_stats, momentum, self.eps)
        if update:
            self.num_batches_tracked.data += 1
        return y

    def __repr__(self):
        options = _options(affine=(self.affine, True),
                           track_running_stats=(self.track_running_stats, True))
        return (f"{type(self).__name__}({self.num_features}, eps={self.eps}, "
                f"momentum={self.momentum}{options})")


class BatchNorm2d(_BatchNorm):
    """Normalises each channel of (N, C, H, W) over N, H and W."""
    dimensions, expected = (4,), "(N, {C}, H, W)"


class BatchNorm1d(_BatchNorm):
    """Normalises each feature of (N, C) over N, or each channel of (N, C, L) over N and L."""
    dimensions, expected = (2, 3), "(N, {C}) or (N, {C}, L)"


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = check_bool("ReLU", "inplace", inplace)

    def forward(self, x):
        return F.relu(x, self.inplace)

    def __repr__(self):
        return f"ReLU(inplace={self.inplace})" if self.inplace else "ReLU()"


class MaxPool2d(Module):
    """Maximum over each window: (N, C, H, W) -> (N, C, OH, OW); stride defaults to the kernel.

    PyTorch's arguments in PyTorch's order; ``return_indices=True`` also gives the positions
    of the maxima, for ``MaxUnpool2d``.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        check_pool_arguments("MaxPool2d", kernel_size, stride, padding, dilation, ceil_mode)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode, self.return_indices = dilation, ceil_mode, return_indices

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def __repr__(self):
        return (f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}"
                f"{_options(dilation=(self.dilation, 1), ceil_mode=(self.ceil_mode, False))})")


class AdaptiveMaxPool2d(Module):
    """(N, C, H, W) -> (N, C, OH, OW): the maximum of each adaptive window."""

    def __init__(self, output_size):
        super().__init__()
        check_output_size("AdaptiveMaxPool2d", output_size)
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size)

    def __repr__(self):
        return f"AdaptiveMaxPool2d(output_size={self.output_size})"


class MaxUnpool2d(Module):
    """(N, C, OH, OW) and the indices of ``MaxPool2d(return_indices=True)`` -> (N, C, H, W)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        where = f"MaxUnpool2d(kernel_size={kernel_size!r})"
        check_pair(where, "kernel_size", kernel_size, 1)
        if stride is not None:
            check_pair(where, "stride", stride, 1)
        check_pair(where, "padding", padding, 0)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, indices, output_size=None):
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def __repr__(self):
        return f"MaxUnpool2d(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"


class AvgPool2d(Module):
    """Mean over each window: (N, C, H, W) -> (N, C, OH, OW); stride defaults to the kernel.

    count_include_pad=True divides by the window's pixels in the input and its
    padding, False by those in the input only.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        check_pool_arguments("AvgPool2d", kernel_size, stride, padding, 1, ceil_mode)
        check_bool("AvgPool2d", "count_include_pad", count_include_pad)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def __repr__(self):
        options = _options(ceil_mode=(self.ceil_mode, False),
                           count_include_pad=(self.count_include_pad, True))
        return (f"AvgPool2d(kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}{options})")


class AdaptiveAvgPool2d(Module):
    """Mean over windows chosen to give a fixed output: (N, C, H, W) -> (N, C, OH, OW).

    ``AdaptiveAvgPool2d(1)`` is the mean over H and W, whatever the input size.
    """

    def __init__(self, output_size):
        super().__init__()
        check_output_size("AdaptiveAvgPool2d", output_size)
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def __repr__(self):
        return f"AdaptiveAvgPool2d(output_size={self.output_size})"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = check_int("Flatten", "start_dim", start_dim)
        self.end_dim = check_int("Flatten", "end_dim", end_dim)

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def __repr__(self):
        return "Flatten()"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size`` (Flatten's inverse): (N, 784) -> (N, 1, 28, 28)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        check_int("Unflatten", "dim", dim)
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}")
        for size in unflattened_size:
            if check_int("Unflatten", "unflattened_size", size, least=-1) == 0:     # -1: inferred
                raise ValueError(f"Unflatten: unflattened_size must hold sizes >= 1 (or one -1), got "
                                 f"{unflattened_size!r}")
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        dim = self.dim % x.ndim
        return x.reshape(x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def __repr__(self):
        return f"Unflatten(dim={self.dim}, unflattened_size={self.unflattened_size})"


class Upsample(Module):
    """Nearest-neighbour upsampling of (N, C, H, W) by an integer ``scale_factor``: see F.interpolate."""

    def __init__(self, scale_factor=2, mode="nearest"):
        super().__init__()
        check_int("Upsample", "scale_factor", scale_factor, least=1)
        check_choice("Upsample", "mode", mode, ("nearest",))
        self.scale_factor, self.mode = scale_factor, mode

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode)

    def __repr__(self):
        return f"Upsample(scale_factor={self.scale_factor}, mode={self.mode!r})"


class Sequential(Module):
    """Calls its children in order; they are named "0", "1", ... (or as an OrderedDict names them)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            named = modules[0].items()
        else:
            named = ((str(index), module) for index, module in enumerate(modules))
        named = list(named)
        for name, module in named:      # all checked before any is added
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: module {name} must be a Module, got "
                                f"{type(module).__name__}")
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
    """``F.cross_entropy`` as a module, as the course's ``criterion = nn.CrossEntropyLoss()``.

    ``weight`` is the first argument, as in PyTorch (a buffer, as there); the
    others are keyword-only, so that none of PyTorch's positional calls means
    something else here.
    """

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        check_loss_arguments("CrossEntropyLoss", ignore_index, reduction, label_smoothing)
        if weight is not None:
            check_tensor("CrossEntropyLoss", "weight", weight, ndims=(1,))
            self.register_buffer("weight", weight)
        else:
            self.weight = None
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)

    def __repr__(self):
        return f"CrossEntropyLoss(reduction={self.reduction!r})"


def _options(**settings):
    """', name=value' for each setting (value, default) away from its default, for a repr."""
    return "".join(f", {name}={value}" for name, (value, default) in settings.items()
                   if value != default)
