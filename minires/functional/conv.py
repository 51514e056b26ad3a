"""2-D convolution as im2col + one matrix multiply (one per group, batched).

N batch, C channels in, OC channels out, G groups of Cg = C/G channels in and
OCg = OC/G out, H/W input size, KH/KW kernel, SH/SW stride, PH/PW padding,
DH/DW dilation, OH/OW output size with
OH = (H + 2PH - DH(KH - 1) - 1) // SH + 1 and OW likewise.

im2col gathers, for every output pixel, the KH*KW*C input numbers its kernel
covers into one row; the convolution is then ``col @ W_mat.T``. col2im, in
backward, sends each row's gradient back to those pixels, summing where windows
overlap (``windows.scatter_windows``); for a stride of 1 the same gradient is a
convolution of gy with the flipped kernel (``full_convolution``), one im2col and
one matrix multiply instead of KH*KW strided additions. Memory is channels-last (see
``windows.py``), so a 1x1 stride-1 convolution needs no im2col at all: its rows
are the pixels themselves (``rows.to_rows``).

Groups: each group of Cg input channels has its own OCg filters and sees only
its own channels, so col and W_mat get a leading group axis and the G products
run as one batched matrix multiply, (G, M, KH*KW*Cg) @ (G, KH*KW*Cg, OCg).
G = 1 is the ordinary convolution (the axis then costs no copy); G = C is a
depthwise convolution.
"""
from minires import backend
from minires.arguments import (
    check_image_input,
    check_int,
    check_pair,
    check_tensor,
    conv_padding,
    output_size,
)
from minires.autograd import Function
from minires.functional.rows import column_sums, from_rows, to_rows
from minires.functional.windows import pad_channels_last, scatter_windows, unbatched_images


def im2col(x, kernel, stride, padding, dilation, extra, out_size, G):
    """x: (N, C, H, W) -> col: (G, N*OH*OW, KH*KW*Cg), columns ordered (kh, kw, c).

    A strided view does the gathering: its element [g, n, oh, ow, i, j, c] is
    x_pad[n, SH*oh + DH*i, SW*ow + DW*j, g*Cg + c], the pixel that kernel offset
    (i, j) of output pixel (oh, ow) sees in channel c of group g. The reshape
    then copies it into rows, once. (Chainer's loop over the KH*KW offsets, one
    slice copy each, gives the same rows; the single copy is 11x faster for the
    7x7 first layer, whose 3 channels make every slice copy move 12-byte pieces:
    3.0 ms against 33.6 ms at N=100.)
    """
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (DH, DW), (OH, OW), Cg = kernel, stride, dilation, out_size, C // G
    xp = backend.get_array_module()
    x_pad = pad_channels_last(x, *padding, extra=extra)          # (N, H+2PH+EH, W+2PW+EW, C)
    sN, sH, sW, sC = x_pad.strides
    windows = xp.lib.stride_tricks.as_strided(
        x_pad, (G, N, OH, OW, KH, KW, Cg),
        (Cg * sC, sN, SH * sH, SW * sW, DH * sH, DW * sW, sC))   # (G, N, OH, OW, KH, KW, Cg) view
    return windows.reshape(G, N * OH * OW, KH * KW * Cg)         # (G, N*OH*OW, KH*KW*Cg) copy


def col2im(gcol, x_shape, kernel, stride, padding, dilation, extra, out_size):
    """gcol: (G, N*OH*OW, KH*KW*Cg) -> gx: (N, C, H, W), summing where windows overlap."""
    N, C, H, W = x_shape
    (KH, KW), (OH, OW), G = kernel, out_size, len(gcol)
    gcol = gcol.reshape(G, N, OH, OW, KH, KW, C // G)           # (G, N, OH, OW, KH, KW, Cg)
    gcol = gcol.transpose(1, 2, 3, 4, 5, 0, 6)                   # (N, OH, OW, KH, KW, G, Cg) view

    def add_offset(gx_window, i, j):
        # the reshape joins a group's channels to the next group's: a view when G = 1
        gx_window += gcol[:, :, :, i, j].reshape(N, OH, OW, C)                 # (N, OH, OW, C)
    return scatter_windows(add_offset, x_shape, kernel, stride, padding, OH, OW, gcol.dtype,
                           dilation, extra)


def full_convolution(gy, w_mat, kernel, padding, dilation, in_size):
    """gx of a stride-1 convolution, as a convolution of gy with the flipped kernel.

    gy: (N, OC, OH, OW), w_mat: (G, OCg, KH*KW*Cg) -> gx: (N, C, H, W). Output pixel
    (oh, ow) read input pixel (oh - PH + DH*i, ow - PW + DW*j) at kernel offset (i, j),
    so input pixel (h, w) collects

        gx[n, c, h, w] = sum over oc, i, j of gy[n, oc, h + PH - DH*i, w + PW - DW*j] W[oc, c, i, j],

    which, with i' = KH - 1 - i, is a stride-1 convolution of gy padded by
    QH = DH(KH - 1) - PH (QW likewise) with W flipped in (i, j) and its channels
    swapped: im2col and one matrix multiply, where col2im would take KH*KW strided
    additions (on a GPU, 5 launches instead of 11 for a 3x3 kernel).
    """
    (KH, KW), (PH, PW), (DH, DW), (H, W) = kernel, padding, dilation, in_size
    G, OCg, K = w_mat.shape
    Cg = K // (KH * KW)
    N = len(gy)
    col = im2col(gy, kernel, (1, 1), (DH * (KH - 1) - PH, DW * (KW - 1) - PW), dilation, (0, 0),
                 (H, W), G)                                                 # (G, N*H*W, KH*KW*OCg)
    w_flipped = w_mat.reshape(G, OCg, KH, KW, Cg)[:, :, ::-1, ::-1, :]     # (G, OCg, KH, KW, Cg) view
    w_flipped = w_flipped.transpose(0, 2, 3, 1, 4).reshape(G, KH * KW * OCg, Cg)  # (G, KH*KW*OCg, Cg)
    gx = col @ w_flipped                                                    # (G, N*H*W, Cg)
    return from_rows(gx.transpose(1, 0, 2).reshape(N * H * W, G * Cg), N, H, W)  # (N, C, H, W)


class Conv2d(Function):
    saves_inputs = True         # w_mat is a view of the weight, and a 1x1 kernel's col one of x

    def __init__(self, stride, padding, dilation, extra, out_size, groups):
        self.stride, self.padding, self.dilation, self.extra = stride, padding, dilation, extra
        self.out_size, self.groups = out_size, groups

    def forward(self, x, weight, bias=None):
        N, C, H, W = x.shape
        OC, Cg, KH, KW = weight.shape
        (OH, OW), G = self.out_size, self.groups
        self.pointwise = ((KH, KW), self.stride, self.padding, self.extra) == \
            ((1, 1), (1, 1), (0, 0), (0, 0))
        if self.pointwise:      # a 1x1 kernel sees one pixel: the rows are the pixels
            col = to_rows(x).reshape(N * H * W, G, Cg).transpose(1, 0, 2)   # (G, N*H*W, Cg)
        else:
            col = im2col(x, (KH, KW), self.stride, self.padding, self.dilation, self.extra,
                         self.out_size, G)                                  # (G, N*OH*OW, KH*KW*Cg)
        w_mat = weight.reshape(G, OC // G, Cg, KH, KW).transpose(0, 1, 3, 4, 2)  # (G, OCg, KH, KW, Cg)
        w_mat = w_mat.reshape(G, OC // G, KH * KW * Cg)                     # (G, OCg, KH*KW*Cg)
        y = col @ w_mat.transpose(0, 2, 1)                                  # (G, N*OH*OW, OCg)
        y = y.transpose(1, 0, 2).reshape(N * OH * OW, OC)                   # (N*OH*OW, OC): view if G = 1
        if bias is not None:
            y += bias
        self.col, self.w_mat = col, w_mat        # col is reused for gW, w_mat for gx
        self.x_shape, self.weight_shape = x.shape, weight.shape
        return from_rows(y, N, OH, OW)                                      # (N, OC, OH, OW)

    def backward(self, gy):
        xp = backend.get_array_module()
        OC, Cg, KH, KW = self.weight_shape
        G = self.groups
        gy_rows = to_rows(gy)                                               # (N*OH*OW, OC)
        gy_groups = gy_rows.reshape(len(gy_rows), G, OC // G).transpose(1, 0, 2)  # (G, N*OH*OW, OCg)
        # gW and gb are written straight into the optimizer's flat gradient array when it
        # offers their places (Function.grad_slot): no copy of them follows
        gW_slot = self.grad_slot(1)
        gW_mat = None if gW_slot is None else _matrix_view(gW_slot, G)      # (G, OCg, KH*KW*Cg) or None
        gW = xp.matmul(gy_groups.transpose(0, 2, 1), self.col, out=gW_mat)  # (G, OCg, KH*KW*Cg)
        if gW_mat is None:
            gW = gW.reshape(OC, KH, KW, Cg).transpose(0, 3, 1, 2)           # (OC, Cg, KH, KW)
        else:
            gW = gW_slot                                                    # (OC, Cg, KH, KW)
        gb = column_sums(gy_rows, out=self.grad_slot(2))                    # (OC,)
        if not self.needs_input_grad[0]:     # e.g. the images into the first layer
            return None, gW, gb
        N, C, H, W = self.x_shape
        (PH, PW), (DH, DW) = self.padding, self.dilation
        if not self.pointwise and self.stride == (1, 1) and self.extra == (0, 0) \
                and PH <= DH * (KH - 1) and PW <= DW * (KW - 1):
            gx = full_convolution(gy, self.w_mat, (KH, KW), self.padding, self.dilation,
                                  (H, W))                                   # (N, C, H, W)
            return gx, gW, gb
        gcol = gy_groups @ self.w_mat                                       # (G, N*OH*OW, KH*KW*Cg)
        if self.pointwise:
            gx = from_rows(gcol.transpose(1, 0, 2).reshape(N * H * W, C), N, H, W)  # (N, C, H, W)
        else:
            gx = col2im(gcol, self.x_shape, (KH, KW), self.stride, self.padding, self.dilation,
                        self.extra, self.out_size)                          # (N, C, H, W)
        return gx, gW, gb


def _matrix_view(weight, G):
    """(OC, Cg, KH, KW) -> (G, OCg, KH*KW*Cg): the weight as the convolution's matrices, a view.

    None unless the memory is channels-last (see ``nn.layers.Conv2d``), where the reshape
    would be a copy, and writing into it would not reach ``weight``.
    """
    OC, Cg, KH, KW = weight.shape
    channels_last = weight.transpose(0, 2, 3, 1)                            # (OC, KH, KW, Cg)
    if not channels_last.flags.c_contiguous:
        return None
    return channels_last.reshape(G, OC // G, KH * KW * Cg)                  # (G, OCg, KH*KW*Cg) view


@unbatched_images
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """PyTorch's ``F.conv2d``.

    Args:
        input: (N, C, H, W); weight: (OC, C/groups, KH, KW); bias: (OC,) or None.
        stride, dilation: an int or an (H, W) pair; the kernel reads every
            dilation-th pixel, spanning D(K - 1) + 1.
        padding: an int, an (H, W) pair, "valid" (0) or "same" (stride 1; keeps H
            and W with D(K - 1) zeros in all, the odd one at the bottom/right, as PyTorch).
        groups: G divides C and OC; output channels [g*OC/G, (g+1)*OC/G) see only
            input channels [g*C/G, (g+1)*C/G). groups=C is a depthwise convolution.
    Returns:
        (N, OC, OH, OW) with OH = (H + 2PH - DH(KH - 1) - 1) // SH + 1, OW likewise.
    """
    check_tensor("conv2d", "input", input)
    check_tensor("conv2d", "weight", weight, ndims=(4,))
    OC, Cg, KH, KW = weight.shape
    groups = check_int("conv2d", "groups", groups, least=1)
    C = Cg * groups

    def name():
        return f"Conv2d({C}, {OC}, k={KH if KH == KW else (KH, KW)})"
    if OC % groups:
        raise ValueError(f"{name()}: groups must be a positive int dividing out_channels "
                         f"{OC}, got {groups!r}")
    if bias is not None and tuple(check_tensor(name(), "bias", bias).shape) != (OC,):
        raise ValueError(f"{name()}: bias must have shape ({OC},), got {tuple(bias.shape)}")
    (SH, SW), (DH, DW) = check_pair(name(), "stride", stride, 1), check_pair(name(), "dilation", dilation, 1)
    if not isinstance(padding, str):
        padding = check_pair(name(), "padding", padding, 0)
    (PH, PW), (EH, EW) = conv_padding(name, padding, (KH, KW), (SH, SW), (DH, DW))
    check_image_input(name, input, C, (DH * (KH - 1) + 1, DW * (KW - 1) + 1), (PH, PW), (EH, EW))
    N, C, H, W = input.shape
    OH, OW = output_size(H + EH, KH, SH, PH, DH), output_size(W + EW, KW, SW, PW, DW)
    function = Conv2d((SH, SW), (PH, PW), (DH, DW), (EH, EW), (OH, OW), groups)
    return function(input, weight) if bias is None else function(input, weight, bias)
