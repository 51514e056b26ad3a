"""The arguments of image layers, checked and normalised once, before any array work.

Shared by the functions (``functional.conv2d``, the poolings, batch norm), the
layers that build them (``nn``) and ``summary``, which prints the formula.

N batch, C channels, H/W input size, K kernel, S stride, P padding.
"""


def pair(value):
    """An int or a pair of ints as a pair: ``3 -> (3, 3)``."""
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


def output_size(size, kernel, stride, padding):
    """The output size formula, D2 = (D1 + 2P - K) // S + 1 (floor, as every framework)."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_padding(padding, kernel, stride):
    """PyTorch's conv padding argument (int, pair, 'valid' or 'same') as a pair of ints.

    'same' keeps H and W, which needs stride 1 and odd kernels: P = (K - 1) // 2.
    """
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        if pair(stride) != (1, 1) or kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
            raise ValueError(f"conv2d: padding='same' needs stride 1 and an odd kernel, got "
                             f"stride {stride} and kernel {kernel}")
        return ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2)
    if isinstance(padding, str):
        raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    return pair(padding)


def check_image_input(name, x, C, kernel, padding):
    """Raise a ValueError naming the layer unless x is (N, C, H, W) and large enough for the kernel.

    ``name`` is a function giving the layer's name: it is built only for an error,
    since this check runs on every call of every layer.
    """
    shape = tuple(x.shape)
    if len(shape) != 4 or (C is not None and shape[1] != C):
        channels = "C" if C is None else C
        raise ValueError(f"{name()}: expected input (N, {channels}, H, W), got {shape}")
    KH, KW = kernel
    PH, PW = padding
    if shape[2] + 2 * PH < KH or shape[3] + 2 * PW < KW:
        raise ValueError(f"{name()}: input {shape} is too small for a {KH}x{KW} kernel with "
                         f"padding {padding}: needs H + 2*{PH} >= {KH} and W + 2*{PW} >= {KW}")
