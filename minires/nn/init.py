"""Initialisers with ``torch.nn.init``'s names; they fill a Tensor in place.

Values are drawn on the host from ``minires.seeding.init_generator()`` and then
copied to the tensor's backend.
fan_in = in_channels * KH * KW and fan_out = out_channels * KH * KW
(for a Linear layer, in_features and out_features).
"""
import math

from minires import backend
from minires.arguments import check_choice, check_number
from minires.autograd import Tensor
from minires.seeding import init_generator

# the nonlinearities calculate_gain knows
NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")


def _check(where, tensor, argument="tensor", **numbers):
    """Raise unless ``tensor`` is a Tensor and each of ``numbers`` a finite number, before any
    value is drawn."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{where}: {argument} must be a Tensor, got {type(tensor).__name__}")
    for argument, value in numbers.items():
        check_number(where, argument, value)


def _fans(tensor, where="fan in and fan out"):
    if tensor.ndim < 2:
        raise ValueError(f"{where}: tensor must have 2 or more dimensions for its fan in and fan out, "
                         f"got shape {tuple(tensor.shape)}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with U(a, b)."""
    _check("uniform_", tensor, a=a, b=b)
    if a > b:
        raise ValueError(f"uniform_: b must be at least a, got a={a} and b={b}")
    values = init_generator().uniform(a, b, size=tensor.shape)
    tensor.data[...] = backend.to_device(values, dtype=tensor.dtype)
    return tensor


def constant_(tensor, value):
    _check("constant_", tensor, value=value)
    tensor.data[...] = value
    return tensor


def zeros_(tensor):
    _check("zeros_", tensor)
    return constant_(tensor, 0)


def ones_(tensor):
    _check("ones_", tensor)
    return constant_(tensor, 1)


def calculate_gain(nonlinearity, param=None):
    """PyTorch's recommended gain for a nonlinearity: 1 for linear ones, sqrt(2) for relu,
    sqrt(2 / (1 + a^2)) for leaky_relu of slope a (0.01 by default), 5/3 for tanh, 3/4 for selu."""
    check_choice("calculate_gain()", "nonlinearity", nonlinearity, NONLINEARITIES)
    if param is not None:
        check_number("calculate_gain()", "param", param)
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope * slope))
    return 3.0 / 4      # selu, the last of NONLINEARITIES


def xavier_uniform_(tensor, gain=1.0):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    _check("xavier_uniform_", tensor, gain=gain)
    fan_in, fan_out = _fans(tensor, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    _check("xavier_normal_", tensor, gain=gain)
    fan_in, fan_out = _fans(tensor, "xavier_normal_")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(where, tensor, a, mode, nonlinearity):
    """gain / sqrt(fan), the fan chosen by ``mode`` ("fan_in" keeps the forward's variance,
    "fan_out" the backward's)."""
    _check(where, tensor, a=a)
    check_choice(where, "mode", mode, ("fan_in", "fan_out"))
    check_choice(where, "nonlinearity", nonlinearity, NONLINEARITIES)
    fan_in, fan_out = _fans(tensor, where)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-b, b) with b = sqrt(3) * gain / sqrt(fan) (He et al., 2015); for the default leaky
    ReLU of slope a, b = sqrt(6 / ((1 + a^2) fan_in))."""
    bound = math.sqrt(3.0) * _kaiming_std("kaiming_uniform_", tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2) with std = gain / sqrt(fan) (He et al., 2015); e.g. ``mode="fan_out",
    nonlinearity="relu"`` as torchvision's ResNets."""
    return normal_(tensor, 0.0, _kaiming_std("kaiming_normal_", tensor, a, mode, nonlinearity))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """N(mean, std^2) restricted to [a, b]: draws outside are drawn again."""
    _check("trunc_normal_", tensor, mean=mean, std=std, a=a, b=b)
    if std <= 0 or a >= b:
        raise ValueError(f"trunc_normal_: std must be > 0 and b greater than a, got std={std}, a={a} "
                         f"and b={b}")
    values = init_generator().normal(mean, std, size=tensor.shape)
    outside = (values < a) | (values > b)
    while outside.any():
        values[outside] = init_generator().normal(mean, std, size=int(outside.sum()))
        outside = (values < a) | (values > b)
    tensor.data[...] = backend.to_device(values, dtype=tensor.dtype)
    return tensor


def default_layer_init_(weight, bias):
    """PyTorch's default for Conv2d and Linear.

    kaiming_uniform_(a=sqrt(5)) on the weight, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    and the bias from the same range.
    """
    _check("default_layer_init_", weight, "weight")
    if bias is not None:
        _check("default_layer_init_", bias, "bias")
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1.0 / math.sqrt(_fans(weight)[0])
        uniform_(bias, -bound, bound)


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with N(mean, std^2)."""
    _check("normal_", tensor, mean=mean, std=std)
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    values = init_generator().normal(mean, std, size=tensor.shape)
    tensor.data[...] = backend.to_device(values, dtype=tensor.dtype)
    return tensor
