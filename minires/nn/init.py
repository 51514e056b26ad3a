"""Initialisers with ``torch.nn.init``'s names; they fill a Tensor in place.

Values are drawn on the host from ``minires.seeding.init_generator()`` and then
copied to the tensor's backend.
fan_in = in_channels * KH * KW and fan_out = out_channels * KH * KW
(for a Linear layer, in_features and out_features).
"""
import math

from minires import backend
from minires.seeding import init_generator


def _fans(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with 2 or more dimensions, "
                         f"got shape {tensor.shape}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with U(a, b)."""
    values = init_generator().uniform(a, b, size=tensor.shape)
    tensor.data[...] = backend.to_device(values, dtype=tensor.dtype)
    return tensor


def constant_(tensor, value):
    tensor.data[...] = value
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)


def xavier_uniform_(tensor, gain=1.0):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def kaiming_uniform_(tensor, a=0.0):
    """U(-b, b) with b = sqrt(6 / ((1 + a^2) fan_in)) (He et al., 2015; leaky-ReLU slope a)."""
    fan_in, _ = _fans(tensor)
    bound = math.sqrt(6.0 / ((1 + a * a) * fan_in))
    return uniform_(tensor, -bound, bound)


def default_layer_init_(weight, bias):
    """PyTorch's default for Conv2d and Linear.

    kaiming_uniform_(a=sqrt(5)) on the weight, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    and the bias from the same range.
    """
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1.0 / math.sqrt(_fans(weight)[0])
        uniform_(bias, -bound, bound)
