"""2-D convolution as im2col + one matrix multiply.

N batch, C channels in, OC channels out, H/W input size, KH/KW kernel,
SH/SW stride, PH/PW padding, OH/OW output size with
OH = (H + 2PH - KH) // SH + 1 and OW = (W + 2PW - KW) // SW + 1.

im2col gathers, for every output pixel, the KH*KW*C input numbers its kernel
covers into one row; the convolution is then ``col @ W_mat.T``. col2im, in
backward, sends each row's gradient back to those pixels, summing where windows
overlap (``windows.scatter_windows``). Memory is channels-last (see
``windows.py``), so a 1x1 stride-1 convolution needs no im2col at all: its rows
are the pixels themselves (``rows.to_rows``).
"""
from minires import backend
from minires.arguments import check_image_input, conv_padding, output_size, pair
from minires.autograd import Function
from minires.functional.rows import column_sums, from_rows, to_rows
from minires.functional.windows import pad_channels_last, scatter_windows


def im2col(x, KH, KW, SH, SW, PH, PW, OH, OW):
    """x: (N, C, H, W) -> col: (N*OH*OW, KH*KW*C), columns ordered (kh, kw, c).

    A strided view does the gathering: its element [n, oh, ow, i, j, c] is
    x_pad[n, SH*oh + i, SW*ow + j, c], the pixel that kernel offset (i, j) of
    output pixel (oh, ow) sees. The reshape then copies it into rows, once.
    (Chainer's loop over the KH*KW offsets, one slice copy each, gives the same
    rows; the single copy is 11x faster for the 7x7 first layer, whose 3 channels
    make every slice copy move 12-byte pieces: 3.0 ms against 33.6 ms at N=100.)
    """
    N, C, H, W = x.shape
    xp = backend.get_array_module()
    x_pad = pad_channels_last(x, PH, PW)                         # (N, H+2PH, W+2PW, C)
    sN, sH, sW, sC = x_pad.strides
    windows = xp.lib.stride_tricks.as_strided(
        x_pad, (N, OH, OW, KH, KW, C), (sN, SH * sH, SW * sW, sH, sW, sC))  # (N, OH, OW, KH, KW, C) view
    return windows.reshape(N * OH * OW, KH * KW * C)             # (N*OH*OW, KH*KW*C) copy


def col2im(gcol, x_shape, KH, KW, SH, SW, PH, PW, OH, OW):
    """gcol: (N*OH*OW, KH*KW*C) -> gx: (N, C, H, W), summing where windows overlap."""
    N, C, H, W = x_shape
    gcol = gcol.reshape(N, OH, OW, KH, KW, C)                    # (N, OH, OW, KH, KW, C)
    return scatter_windows(lambda i, j: gcol[:, :, :, i, j, :],  # (N, OH, OW, C) per offset
                           x_shape, (KH, KW), (SH, SW), (PH, PW), OH, OW, gcol.dtype)


class Conv2d(Function):
    def __init__(self, stride, padding, out_size):
        self.SH, self.SW = stride
        self.PH, self.PW = padding
        self.OH, self.OW = out_size

    def forward(self, x, weight, bias=None):
        N, C, H, W = x.shape
        OC, _, KH, KW = weight.shape
        geometry = (KH, KW, self.SH, self.SW, self.PH, self.PW, self.OH, self.OW)
        self.pointwise = geometry[:6] == (1, 1, 1, 1, 0, 0)
        if self.pointwise:
            col = to_rows(x)                     # (N*H*W, C): a 1x1 kernel sees one pixel
        else:
            col = im2col(x, *geometry)                                   # (N*OH*OW, KH*KW*C)
        w_mat = weight.transpose(0, 2, 3, 1).reshape(OC, KH * KW * C)    # (OC, KH*KW*C)
        y = col @ w_mat.T                                                # (N*OH*OW, OC)
        if bias is not None:
            y += bias
        self.col, self.w_mat = col, w_mat        # col is reused for gW, w_mat for gx
        self.x_shape, self.weight_shape, self.geometry = x.shape, weight.shape, geometry
        return from_rows(y, N, self.OH, self.OW)                         # (N, OC, OH, OW)

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
            gx = col2im(gcol, self.x_shape, *self.geometry)              # (N, C, H, W)
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
    (SH, SW), (PH, PW) = pair(stride), conv_padding(padding, (KH, KW), stride)

    def name():
        return f"Conv2d({C}, {OC}, k={KH if KH == KW else (KH, KW)})"
    check_image_input(name, input, C, (KH, KW), (PH, PW))
    if min(SH, SW) < 1 or min(PH, PW) < 0:
        raise ValueError(f"{name()}: stride must be >= 1 and padding >= 0, got "
                         f"{(SH, SW)}, {(PH, PW)}")
    N, C, H, W = input.shape
    OH, OW = output_size(H, KH, SH, PH), output_size(W, KW, SW, PW)
    function = Conv2d((SH, SW), (PH, PW), (OH, OW))
    return function(input, weight) if bias is None else function(input, weight, bias)
