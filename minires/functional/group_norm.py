"""Group normalisation (Wu and He, 2018): the channels of each example in G groups, each group
normalised over its channels and pixels, then a per-channel scale and shift.

N batch, C channels, G groups of C / G channels, H/W image size (any trailing size works):

    x: (N, C, H, W) -> rows (N * G, C/G * H * W), each normalised as by layer norm
    y = x_hat * w[c] + b[c]                       w, b: (C,)

It is layer norm on those rows (``layer_norm.LayerNorm``: its forward and backward),
followed by the affine map, which autograd differentiates.
"""
import math

from minires.arguments import check_int, check_number, check_tensor
from minires.errors import ShapeError
from minires.functional.layer_norm import LayerNorm
from minires.functional.shaping import reshape


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """PyTorch's ``F.group_norm``: input (N, C, *), weight and bias (C,) or None."""
    where = "group_norm()"
    check_tensor(where, "input", input)
    check_int(where, "num_groups", num_groups, least=1)
    for argument, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(check_tensor(where, argument, value).shape) != input.shape[1:2]:
            raise ValueError(f"{where}: {argument} must be (C,) = {tuple(input.shape[1:2])}, one per "
                             f"channel, got shape {tuple(value.shape)}")
    check_number(where, "eps", eps, low=0)
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise ShapeError(f"group_norm(): num_groups={num_groups} needs an input (N, C, ...) with C a "
                         f"multiple of them, got {tuple(input.shape)}")
    N, C = input.shape[:2]
    D = C // num_groups * math.prod(input.shape[2:])
    rows = reshape(input, (N * num_groups, D))                          # (N*G, C/G * H * W)
    y = reshape(LayerNorm(D, eps)(rows), input.shape)                   # (N, C, H, W)
    channel = (1, C) + (1,) * (input.ndim - 2)                          # broadcasts over N, H, W
    if weight is not None:
        y = y * reshape(weight, channel)
    if bias is not None:
        y = y + reshape(bias, channel)
    return y
