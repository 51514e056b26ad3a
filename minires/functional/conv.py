"""2-D convolution as im2col + one matrix multiply.

N batch, C channels in, OC channels out, H/W input size, KH/KW kernel,
SH/SW stride, PH/PW padding, OH/OW output size with
OH = (H + 2PH - KH) // SH + 1 and OW = (W + 2PW - KW) // SW + 1.

im2col gathers, for every output pixel, the KH*KW*C input numbers its kernel
covers into one row; the convolution is then ``col @ W_mat.T``. col2im, in
backward, sends each row's gradient back to those pixels, summing where windows
overlap (``layout.scatter_windows``). Memory is channels-last (see
``layout.py``), so a 1x1 stride-1 convolution needs no im2col at all.
"""
from minires import backend
from minires.autograd import Function
from minires.functional.layout import (check_image_input, column_sums, from_rows, output_size,
                                       pad_channels_last, pair, scatter_windows, to_rows)


def im2col(x, KH, KW, SH, SW, PH, PW):
    """x: (N, C, H, W) -> col: (N*OH*OW, KH*KW*C), columns ordered (kh, kw, c).

    A strided view does the gathering: its element [n, oh, ow, i, j, c] is
    x_pad[n, SH*oh + i, SW*ow + j, c], the pixel that kernel offset (i, j) of
    output pixel (oh, ow) sees. The reshape then copies it into rows, once.
    (Chainer's loop over the KH*KW offsets, one slice copy each, gives the same
    rows; the single copy is 11x faster for the 7x7 first layer, whose 3 channels
    make every slice copy move 12-byte pieces: 3.0 ms against 33.6 ms at N=100.)
    """
    N, C, H, W = x.shape
    OH, OW = output_size(H, KH, SH, PH), output_size(W, KW, SW, PW)
    xp = backend.get_array_module()
    x_pad = pad_channels_last(x, PH, PW)                         # (N, H+2PH, W+2PW, C)
    sN, sH, sW, sC = x_pad.strides
    windows = xp.lib.stride_tricks.as_strided(
        x_pad, (N, OH, OW, KH, KW, C), (sN, SH * sH, SW * sW, sH, sW, sC))  # (N, OH, OW, KH, KW, C) view
    return windows.reshape(N * OH * OW, KH * KW * C)             # (N*OH*OW, KH*KW*C) copy


def col2im(gcol, x_shape, KH, KW, SH, SW, PH, PW):
    """gcol: (N*OH*OW, KH*KW*C) -> gx: (N, C, H, W), summing where windows overlap."""
    N, C, H, W = x_shape
    OH, OW = output_size(H, KH, SH, PH), output_size(W, KW, SW, PW)
    gcol = gcol.reshape(N, OH, OW, KH, KW, C)                    # (N, OH, OW, KH, KW, C)
    return scatter_windows(lambda i, j: gcol[:, :, :, i, j, :],  # (N, OH, OW, C) per offset
                           x_shape, (KH, KW), (SH, SW), (PH, PW), OH, OW, gcol.dtype)


class Conv2d(Function):
    def __init__(self, stride, padding):
        self.SH, self.SW = stride
        self.PH, self.PW = padding

    def forward(self, x, weight, bias=None):
        N, C, H, W = x.shape
        OC, _, KH, KW = weight.shape
        OH, OW = output_size(H, KH, self.SH, self.PH), output_size(W, KW, self.SW, self.PW)
        self.x_shape = x.shape
        self.pointwise = (KH, KW, self.SH, self.SW, self.PH, self.PW) == (1, 1, 1, 1, 0, 0)
        if self.pointwise:
            col = to_rows(x)                     # (N*H*W, C): a 1x1 kernel sees one pixel
        else:
            col = im2col(x, KH, KW, self.SH, self.SW, self.PH, self.PW)  # (N*OH*OW, KH*KW*C)
        w_mat = weight.transpose(0, 2, 3, 1).reshape(OC, KH * KW * C)    # (OC, KH*KW*C)
        y = col @ w_mat.T                                                # (N*OH*OW, OC)
        if bias is not None:
            y += bias
        self.col, self.w_mat = col, w_mat        # col is reused for gW, w_mat for gx
        self.weight_shape = weight.shape
        return from_rows(y, N, OH, OW)                                   # (N, OC, OH, OW)

    def backward(self, gy):
        OC, C, KH, KW = self.weight_shape
        gy_rows = to_rows(gy)                                            # (N*OH*OW, OC)
        gW = (gy_rows.T @ self.col).reshape(OC, KH, KW, C)               # (OC, KH, KW, C)
        gW = gW.transpose(0, 3, 1, 2)                                    # (OC, C, KH, KW)
        gb = column_sums(gy_rows)                                        # (OC,)
        if not self.needs_input_grad[0]:     # e.g. the images into the first layer
            return None, gW, gb
        gcol = gy_rows @ self.w_mat                                      # (N*OH*OW, KH*KW*C)
        if self.pointwise:
            N, _, H, W = self.x_shape
            gx = from_rows(gcol, N, H, W)                                # (N, C, H, W)
        else:
            gx = col2im(gcol, self.x_shape, KH, KW,
                        self.SH, self.SW, self.PH, self.PW)              # (N, C, H, W)
        return gx, gW, gb


def conv2d(input, weight, bias=None, stride=1, padding=0):
    """PyTorch's ``F.conv2d`` (no dilation or groups).

    Args:
        input: (N, C, H, W); weight: (OC, C, KH, KW); bias: (OC,) or None.
        stride: an int or an (H, W) pair.
        padding: an int, an (H, W) pair, "valid" (0) or "same" (stride 1 and odd
            kernels: (K - 1) // 2 keeps H and W).
    Returns:
        (N, OC, OH, OW) with OH = (H + 2PH - KH) // SH + 1, OW likewise.
    """
    OC, C, KH, KW = weight.shape
    stride, padding = pair(stride), _padding_pair(padding, (KH, KW), stride)

    def name():
        return f"Conv2d({C}, {OC}, k={KH if KH == KW else (KH, KW)})"
    check_image_input(name, input, C, (KH, KW), padding)
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"{name()}: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    function = Conv2d(stride, padding)
    return function(input, weight) if bias is None else function(input, weight, bias)


def _padding_pair(padding, kernel, stride):
    """PyTorch's padding argument as a pair of ints."""
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
