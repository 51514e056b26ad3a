"""Transposed 2-D convolution (``F.conv_transpose2d``): the adjoint of ``conv2d`` in its input.

N batch, C channels in, OC channels out, G groups of Cg = C/G in and OCg = OC/G out,
H/W input size, KH/KW kernel, SH/SW stride, PH/PW padding, DH/DW dilation, AH/AW
output padding, OH/OW output size with

    OH = (H - 1) SH - 2 PH + DH (KH - 1) + AH + 1,   OW likewise.

Where conv2d reads a window of its input for every output pixel (im2col), the
transposed convolution writes a window of its output for every input pixel: each
input pixel's C numbers times the weight give KH*KW*OCg numbers per group, and
col2im adds them into the (OH, OW) image, summing where windows overlap. Its
backward is therefore the convolution's forward: gx = conv2d(gy, weight) (im2col),
and gW pairs the same columns with x, as conv2d's gW pairs them with gy.
weight: (C, OCg, KH, KW), PyTorch's layout: conv2d's (OC, Cg, ...) with the roles swapped.
"""
from minires.arguments import check_int, check_pair, check_tensor
from minires.autograd import Function
from minires.errors import ShapeError
from minires.functional.conv import col2im, im2col
from minires.functional.rows import column_sums, from_rows, to_rows
from minires.functional.windows import unbatched_images


class ConvTranspose2d(Function):
    saves_inputs = True         # x for gW, the weight (as w_mat) for gx

    def __init__(self, stride, padding, dilation, out_size, groups):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.out_size, self.groups = out_size, groups

    def forward(self, x, weight, bias=None):
        N, C, H, W = x.shape
        _, OCg, KH, KW = weight.shape
        G, (OH, OW) = self.groups, self.out_size
        x_groups = to_rows(x).reshape(N * H * W, G, C // G).transpose(1, 0, 2)    # (G, N*H*W, Cg)
        w_mat = weight.reshape(G, C // G, OCg, KH, KW).transpose(0, 1, 3, 4, 2)  # (G, Cg, KH, KW, OCg)
        w_mat = w_mat.reshape(G, C // G, KH * KW * OCg)                          # (G, Cg, KH*KW*OCg)
        col = x_groups @ w_mat                                                   # (G, N*H*W, KH*KW*OCg)
        y = col2im(col, (N, G * OCg, OH, OW), (KH, KW), self.stride, self.padding,
                   self.dilation, (0, 0), (H, W))                                # (N, OC, OH, OW)
        if bias is not None:
            y = y + bias.reshape(1, -1, 1, 1)                                    # (N, OC, OH, OW)
        self.x_groups, self.w_mat = x_groups, w_mat       # for gW and for gx
        self.x_shape, self.weight_shape = x.shape, weight.shape
        return y

    def backward(self, gy):
        N, C, H, W = self.x_shape
        _, OCg, KH, KW = self.weight_shape
        G = self.groups
        col = im2col(gy, (KH, KW), self.stride, self.padding, self.dilation, (0, 0), (H, W), G)
        #                                                                        (G, N*H*W, KH*KW*OCg)
        gx_groups = col @ self.w_mat.transpose(0, 2, 1)                          # (G, N*H*W, Cg)
        gx = from_rows(gx_groups.transpose(1, 0, 2).reshape(N * H * W, C), N, H, W)   # (N, C, H, W)
        gW = self.x_groups.transpose(0, 2, 1) @ col                              # (G, Cg, KH*KW*OCg)
        gW = gW.reshape(C, KH, KW, OCg).transpose(0, 3, 1, 2)                    # (C, OCg, KH, KW)
        if len(self.needs_input_grad) == 2:
            return gx, gW
        return gx, gW, column_sums(to_rows(gy))                                  # gb: (OC,)


@unbatched_images
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """PyTorch's ``F.conv_transpose2d`` (its argument order): (N, C, H, W) -> (N, OC, OH, OW).

    weight: (C, OC/groups, KH, KW); bias: (OC,) or None. ``output_padding`` (below the
    stride or the dilation) adds rows and columns at the bottom and right, as PyTorch,
    to pick one of the output sizes that a strided conv2d maps to the same (H, W).
    """
    where = "conv_transpose2d()"
    check_tensor(where, "input", input)
    check_tensor(where, "weight", weight, ndims=(4,))
    groups = check_int(where, "groups", groups, least=1)
    if bias is not None and tuple(check_tensor(where, "bias", bias).shape) != (weight.shape[1] * groups,):
        raise ValueError(f"{where}: bias must be ({weight.shape[1] * groups},), one per output channel, "
                         f"got shape {tuple(bias.shape)}")
    C, OCg, KH, KW = weight.shape
    (SH, SW), (PH, PW) = check_pair(where, "stride", stride, 1), check_pair(where, "padding", padding, 0)
    (AH, AW) = check_pair(where, "output_padding", output_padding, 0)
    (DH, DW) = check_pair(where, "dilation", dilation, 1)
    name = f"ConvTranspose2d({C}, {OCg * groups}, k={KH if KH == KW else (KH, KW)})"
    if input.ndim != 4 or input.shape[1] != C or C % groups:
        raise ShapeError(f"{name}: expected input (N, {C}, H, W) with {C} divisible by groups={groups}, "
                         f"got {tuple(input.shape)}")
    if not (AH < max(SH, DH) and AW < max(SW, DW)):
        raise ValueError(f"{name}: output_padding {(AH, AW)} must be smaller than the stride or the "
                         f"dilation")
    N, _, H, W = input.shape
    OH = (H - 1) * SH - 2 * PH + DH * (KH - 1) + AH + 1
    OW = (W - 1) * SW - 2 * PW + DW * (KW - 1) + AW + 1
    if min(OH, OW) < 1:
        raise ShapeError(f"{name}: the output would be {(OH, OW)}: too much padding for input {(H, W)}")
    function = ConvTranspose2d((SH, SW), (PH, PW), (DH, DW), (OH, OW), groups)
    return function(input, weight) if bias is None else function(input, weight, bias)
