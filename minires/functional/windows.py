"""Channels-last memory, padding, and the windows that convolution and pooling read.

Images are indexed (N, C, H, W) everywhere, as in PyTorch. In memory, though,
minires keeps the channels of one pixel next to each other, as an (N, H, W, C)
array seen through ``transpose(0, 3, 1, 2)`` (PyTorch calls this the
``channels_last`` memory format). ``x.transpose(0, 2, 3, 1)`` then gives the
(N, H, W, C) array back as a free view, and:

- a 1x1 stride-1 convolution is one matrix multiply with no copy (see ``rows.py``);
- im2col copies whole pixels (C contiguous numbers) instead of single numbers;
- batch norm's per-channel statistics are column sums.

Every op stays correct for any memory layout; the layout only decides how much
copying it costs.

A kernel of KH x KW reads, at kernel offset (i, j), one strided window of the
padded input per output pixel; convolution and both poolings are loops or views
over these windows, and their backward sends gradients back through the same
windows (``scatter_windows``). A dilated kernel reads offset (i, j) at
(DH*i, DW*j), so it spans DH*(KH - 1) + 1 rows.

N batch, C channels, H/W input size, KH/KW kernel, SH/SW stride, PH/PW padding,
DH/DW dilation, EH/EW extra padding at the bottom/right only, OH/OW output size.
"""
import functools

from minires import backend


def pad_channels_last(x, PH, PW, fill=0.0, extra=(0, 0)):
    """(N, C, H, W) -> (N, H + 2PH + EH, W + 2PW + EW, C): a channels-last copy framed by ``fill``.

    ``extra`` = (EH, EW) rows and columns go at the bottom and right only: the
    odd one of padding='same', or room for ceil_mode's last pooling window.
    With no padding it is a view, not a copy.
    """
    x_nhwc = x.transpose(0, 2, 3, 1)                            # (N, H, W, C)
    EH, EW = extra
    if PH == PW == EH == EW == 0:
        return x_nhwc
    N, H, W, C = x_nhwc.shape
    xp = backend.get_array_module()
    HP, WP = H + 2 * PH + EH, W + 2 * PW + EW
    x_pad = xp.full((N, HP, WP, C), fill, dtype=x.dtype)        # (N, H+2PH+EH, W+2PW+EW, C)
    x_pad[:, PH:PH + H, PW:PW + W, :] = x_nhwc
    return x_pad


def window(i, j, SH, SW, OH, OW):
    """Index of the pixels that kernel offset (i, j) touches, for every output pixel.

    ``x_pad[window(i, j, ...)]`` has shape (N, OH, OW, C): its element
    [n, oh, ow, c] is x_pad[n, i + SH*oh, j + SW*ow, c]. The stop may run past
    the edge; slicing clips it, and exactly OH (OW) positions remain.
    """
    return (slice(None), slice(i, i + SH * OH, SH), slice(j, j + SW * OW, SW), slice(None))


def scatter_windows(add_window_gradient, x_shape, kernel, stride, padding, OH, OW, dtype,
                    dilation=(1, 1), extra=(0, 0)):
    """The backward of reading windows: send each window's gradient back to its pixels.

    ``add_window_gradient(gx_window, i, j)`` adds in place into ``gx_window``, the
    (N, OH, OW, C) strided view of the pixels that kernel offset (i, j) read, one per
    output pixel (see ``window``; at (DH*i, DW*j) for a dilated kernel), their
    gradient. Where windows overlap, a pixel collects the sum. A loop over the KH*KW
    offsets, each a strided slice ``+=``: no ``add.at``, which is slow. Used by col2im
    and both poolings.

    Returns:
        gx: (N, C, H, W), a channels-last view.
    """
    N, C, H, W = x_shape
    (KH, KW), (SH, SW), (PH, PW), (DH, DW), (EH, EW) = kernel, stride, padding, dilation, extra
    xp = backend.get_array_module()
    HP, WP = H + 2 * PH + EH, W + 2 * PW + EW
    gx_pad = xp.zeros((N, HP, WP, C), dtype=dtype)              # (N, H+2PH+EH, W+2PW+EW, C)
    for i in range(KH):
        for j in range(KW):
            add_window_gradient(gx_pad[window(DH * i, DW * j, SH, SW, OH, OW)], i, j)  # (N, OH, OW, C)
    return gx_pad[:, PH:PH + H, PW:PW + W, :].transpose(0, 3, 1, 2)        # (N, C, H, W)


def unbatched_images(function):
    """Let ``function`` of an (N, C, H, W) batch also take one (C, H, W) image, as PyTorch's
    convolutions and poolings do: the image goes through as a batch of one, and the result
    comes back without the batch dimension (each result, where it gives two)."""
    @functools.wraps(function)
    def batched(input, *args, **kwargs):
        if getattr(input, "ndim", None) != 3:        # the function's own checks see anything else
            return function(input, *args, **kwargs)
        result = function(input.unsqueeze(0), *args, **kwargs)
        if isinstance(result, tuple):                # the output and its indices (return_indices)
            return tuple(part.squeeze(0) for part in result)                # (C, OH, OW) each
        return result.squeeze(0)                                            # (C, OH, OW)
    return batched
