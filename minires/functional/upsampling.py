"""Nearest-neighbour upsampling by an integer factor: PyTorch's ``F.interpolate(x, scale_factor=2)``.

N batch, C channels, H/W input size, S the factor: y[n, c, h, w] = x[n, c, h // S, w // S].
Each pixel becomes an S x S block; the backward sums each block's gradient back
into its pixel (the backward of ``expand``).
"""
from minires.arguments import check_choice, check_pair, check_tensor
from minires.errors import ShapeError
from minires.functional.shaping import expand, reshape


def interpolate(input, size=None, scale_factor=None, mode="nearest"):
    """(N, C, H, W) -> (N, C, S*H, S*W), S an integer ``scale_factor`` (or ``size`` = (S*H, S*W))."""
    check_tensor("interpolate()", "input", input, floating=False)
    check_choice("interpolate()", "mode", mode, ("nearest",))
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate(): give one of size and scale_factor")
    if size is not None:
        check_pair("interpolate()", "size", size, 1)
    if input.ndim != 4:
        raise ShapeError(f"interpolate(): expected input (N, C, H, W), got {tuple(input.shape)}")
    N, C, H, W = input.shape
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        if size[0] % H or size[1] % W or size[0] // H != size[1] // W:
            raise ValueError(f"interpolate(): size {size} must be one integer multiple of (H, W) = {(H, W)}")
        scale_factor = size[0] // H
    S = int(scale_factor)
    if S != scale_factor or S < 1:
        raise ValueError(f"interpolate(): scale_factor must be a positive integer, got {scale_factor}")
    pixels = reshape(input, (N, C, H, 1, W, 1))                         # (N, C, H, 1, W, 1)
    blocks = expand(pixels, (N, C, H, S, W, S))                         # (N, C, H, S, W, S) a view
    return reshape(blocks, (N, C, H * S, W * S))                        # (N, C, SH, SW)
