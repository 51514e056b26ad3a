"""Checks of chapter 4: ``im2col``, ``col2im`` and ``Conv2d.backward``, against plain NumPy loops.

N batch, C channels in, OC out, G groups of Cg = C/G, KH/KW kernel, SH/SW stride, PH/PW padding,
DH/DW dilation, EH/EW extra padding at the bottom/right (padding="same" with an even span),
OH = (H + 2PH + EH - DH(KH - 1) - 1) // SH + 1.
"""
import warnings

import numpy

import minires
import minires.functional as F
from minires.functional.conv import col2im, im2col

from .compare import Wrong, assert_close, assert_torch_parity, check_gradients, each_case, torch_functional

# (what, x shape, kernel, stride, padding, dilation, extra, groups)
WINDOW_CASES = [
    ("3x3, stride 1, padding 1", (2, 3, 5, 5), (3, 3), (1, 1), (1, 1), (1, 1), (0, 0), 1),
    ("2x3, stride (2, 1), padding (1, 0)", (1, 2, 6, 5), (2, 3), (2, 1), (1, 0), (1, 1), (0, 0), 1),
    ("3x3, stride 2, dilation 2", (2, 2, 7, 7), (3, 3), (2, 2), (0, 0), (2, 2), (0, 0), 1),
    ("3x3, padding 1, 2 groups", (1, 4, 5, 5), (3, 3), (1, 1), (1, 1), (1, 1), (0, 0), 2),
    ("2x2, extra padding (1, 1)", (1, 3, 4, 4), (2, 2), (1, 1), (0, 0), (1, 1), (1, 1), 1),
]


def out_size(x_shape, kernel, stride, padding, dilation, extra):
    return tuple((size + 2 * P + E - D * (K - 1) - 1) // S + 1 for size, K, S, P, D, E in
                 zip(x_shape[2:], kernel, stride, padding, dilation, extra))


def padded(x, padding, extra):
    N, C, H, W = x.shape
    (PH, PW), (EH, EW) = padding, extra
    x_pad = numpy.zeros((N, C, H + 2 * PH + EH, W + 2 * PW + EW))
    x_pad[:, :, PH:PH + H, PW:PW + W] = x
    return x_pad


def reference_im2col(x, kernel, stride, padding, dilation, extra, G):
    """col[g, (n, oh, ow), (i, j, c)] = x_pad[n, g*Cg + c, SH*oh + DH*i, SW*ow + DW*j], by loops."""
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (DH, DW), Cg = kernel, stride, dilation, C // G
    OH, OW = out_size(x.shape, kernel, stride, padding, dilation, extra)
    x_pad = padded(x, padding, extra)
    col = numpy.zeros((G, N, OH, OW, KH, KW, Cg))
    for g in range(G):
        for oh in range(OH):
            for ow in range(OW):
                for i in range(KH):
                    for j in range(KW):
                        col[g, :, oh, ow, i, j, :] = x_pad[:, g * Cg:(g + 1) * Cg, SH * oh + DH * i,
                                                           SW * ow + DW * j]
    return col.reshape(G, N * OH * OW, KH * KW * Cg)


def reference_col2im(gcol, x_shape, kernel, stride, padding, dilation, extra):
    """The adjoint of reference_im2col: every number of gcol added back to the pixel it came from."""
    N, C, H, W = x_shape
    (KH, KW), (SH, SW), (PH, PW), (DH, DW), G = kernel, stride, padding, dilation, len(gcol)
    OH, OW = out_size(x_shape, kernel, stride, padding, dilation, extra)
    Cg = C // G
    gcol = gcol.reshape(G, N, OH, OW, KH, KW, Cg)
    gx_pad = numpy.zeros(padded(numpy.zeros(x_shape), padding, extra).shape)
    for g in range(G):
        for oh in range(OH):
            for ow in range(OW):
                for i in range(KH):
                    for j in range(KW):
                        gx_pad[:, g * Cg:(g + 1) * Cg, SH * oh + DH * i, SW * ow + DW * j] += \
                            gcol[g, :, oh, ow, i, j, :]
    return gx_pad[:, :, PH:PH + H, PW:PW + W]


def channels_last(x):
    """The same values as x, in minires's channels-last memory."""
    return numpy.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def im2col_against_loops():
    rng = numpy.random.default_rng(30)

    def check(what, x_shape, kernel, stride, padding, dilation, extra, G):
        x = rng.standard_normal(x_shape)
        expected = reference_im2col(x, kernel, stride, padding, dilation, extra, G)
        size = out_size(x_shape, kernel, stride, padding, dilation, extra)
        for memory, values in (("NCHW memory", x), ("channels-last memory", channels_last(x))):
            col = im2col(values, kernel, stride, padding, dilation, extra, size, G)
            assert_close(f"col of x {x_shape}, {memory}", col, expected, atol=0, rtol=0)
    each_case(WINDOW_CASES, check)


# (what, x shape, weight shape, stride, padding, dilation, groups)
CONV_CASES = [
    ("3x3, stride 1, padding 1", (2, 2, 4, 4), (3, 2, 3, 3), 1, 1, 1, 1),
    ("3x3, stride 2, padding 1", (1, 2, 5, 5), (2, 2, 3, 3), 2, 1, 1, 1),
    ("1x1, stride 1 (no im2col)", (2, 3, 3, 3), (2, 3, 1, 1), 1, 0, 1, 1),
    ("1x1, stride 2", (1, 3, 4, 4), (2, 3, 1, 1), 2, 0, 1, 1),
    ("3x3, 2 groups", (1, 4, 4, 4), (4, 2, 3, 3), 1, 1, 1, 2),
    ("3x3, dilation 2", (1, 2, 6, 6), (2, 2, 3, 3), 1, 1, 2, 1),
    ("2x3, stride (2, 1), padding (1, 0)", (1, 2, 5, 4), (2, 2, 2, 3), (2, 1), (1, 0), 1, 1),
    ("2x2, padding 'same' (extra row and column)", (1, 2, 4, 4), (2, 2, 2, 2), 1, "same", 1, 1),
]


def conv(stride, padding, dilation, groups):
    return lambda input, weight, bias=None: F.conv2d(input, weight, bias, stride, padding, dilation, groups)


def torch_conv(stride, padding, dilation, groups):
    # PyTorch warns that an even kernel with padding="same" pads a copy; so does minires, silently
    warnings.filterwarnings("ignore", message="Using padding='same'")
    return lambda input, weight, bias=None: torch_functional().conv2d(input, weight, bias, stride, padding,
                                                                      dilation, groups)


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


def reference_conv2d(x, w, b, gy, stride, padding, dilation, groups):
    """y, gx, gW, gb of a convolution by loops over the output pixels and the groups."""
    N, C, H, W = x.shape
    OC, Cg, KH, KW = w.shape
    (SH, SW), (DH, DW), G = _pair(stride), _pair(dilation), groups
    if padding == "same":       # D(K - 1) zeros in all, the odd one at the bottom/right
        padding = (DH * (KH - 1) // 2, DW * (KW - 1) // 2)
        extra = (DH * (KH - 1) % 2, DW * (KW - 1) % 2)
    else:
        padding, extra = _pair(padding), (0, 0)
    (PH, PW), OCg = padding, OC // G
    OH, OW = out_size(x.shape, (KH, KW), (SH, SW), padding, (DH, DW), extra)
    x_pad = padded(x, padding, extra)
    y, gx_pad, gw = numpy.zeros((N, OC, OH, OW)), numpy.zeros(x_pad.shape), numpy.zeros(w.shape)
    for g in range(G):
        cs, os = slice(g * Cg, (g + 1) * Cg), slice(g * OCg, (g + 1) * OCg)
        for oh in range(OH):
            for ow in range(OW):
                rows = slice(SH * oh, SH * oh + DH * (KH - 1) + 1, DH)
                columns = slice(SW * ow, SW * ow + DW * (KW - 1) + 1, DW)
                patch = x_pad[:, cs, rows, columns]                             # (N, Cg, KH, KW)
                y[:, os, oh, ow] = numpy.einsum("nckl,ockl->no", patch, w[os])
                gw[os] += numpy.einsum("no,nckl->ockl", gy[:, os, oh, ow], patch)
                gx_pad[:, cs, rows, columns] += numpy.einsum("no,ockl->nckl", gy[:, os, oh, ow], w[os])
    return y + b[:, None, None], gx_pad[:, :, PH:PH + H, PW:PW + W], gw, gy.sum(axis=(0, 2, 3))


def _conv_inputs(rng, x_shape, w_shape, with_bias=True):
    inputs = {"input": rng.standard_normal(x_shape), "weight": rng.standard_normal(w_shape)}
    if with_bias:
        inputs["bias"] = rng.standard_normal(w_shape[0])
    return inputs


def col2im_against_loops():
    rng = numpy.random.default_rng(31)

    def check(what, x_shape, kernel, stride, padding, dilation, extra, G):
        OH, OW = out_size(x_shape, kernel, stride, padding, dilation, extra)
        gcol = rng.standard_normal((G, x_shape[0] * OH * OW, kernel[0] * kernel[1] * x_shape[1] // G))
        gx = col2im(gcol.copy(), x_shape, kernel, stride, padding, dilation, extra, (OH, OW))
        assert_close(f"gx {x_shape}", gx, reference_col2im(gcol, x_shape, kernel, stride, padding,
                                                          dilation, extra))
    each_case(WINDOW_CASES, check)


def col2im_is_the_adjoint():
    rng = numpy.random.default_rng(32)

    def check(what, x_shape, kernel, stride, padding, dilation, extra, G):
        size = out_size(x_shape, kernel, stride, padding, dilation, extra)
        x = rng.standard_normal(x_shape)
        col = im2col(x, kernel, stride, padding, dilation, extra, size, G)
        gcol = rng.standard_normal(col.shape)
        gx = numpy.asarray(col2im(gcol.copy(), x_shape, kernel, stride, padding, dilation, extra, size))
        if gx.shape != x_shape:
            raise Wrong(f"col2im gave shape {gx.shape}, expected {x_shape}")
        left, right = float((col * gcol).sum()), float((x * gx).sum())
        if abs(left - right) > 1e-9 * (1 + abs(left)):
            raise Wrong(f"<im2col(x), gcol> = {left:.10g} but <x, col2im(gcol)> = {right:.10g}")
    each_case(WINDOW_CASES, check)


def input_gradcheck():
    rng = numpy.random.default_rng(33)

    def check(what, x_shape, w_shape, stride, padding, dilation, groups):
        x = rng.standard_normal(x_shape)
        weight = rng.standard_normal(w_shape)
        check_gradients(lambda input: F.conv2d(input, minires.Tensor(weight), None, stride, padding,
                                               dilation, groups), {"input": x})
    each_case([case for case in CONV_CASES if case[3:5] != (1, 0)], check)    # col2im, not the 1x1 path


def input_gradient_against_torch():
    rng = numpy.random.default_rng(34)
    for _, x_shape, w_shape, stride, padding, dilation, groups in CONV_CASES[:2] + CONV_CASES[4:6]:
        skipped = assert_torch_parity(conv(stride, padding, dilation, groups),
                                      torch_conv(stride, padding, dilation, groups),
                                      _conv_inputs(rng, x_shape, w_shape, with_bias=False))
    return skipped


def conv_gradcheck():
    rng = numpy.random.default_rng(35)
    each_case(CONV_CASES, lambda what, x_shape, w_shape, *options: check_gradients(
        conv(*options), _conv_inputs(rng, x_shape, w_shape)))


def conv_against_loops(input_needs_grad=True):
    rng = numpy.random.default_rng(36)

    def check(what, x_shape, w_shape, stride, padding, dilation, groups):
        inputs = _conv_inputs(rng, x_shape, w_shape)
        leaves = {name: minires.Tensor(value, requires_grad=name != "input" or input_needs_grad)
                  for name, value in inputs.items()}
        y = conv(stride, padding, dilation, groups)(**leaves)
        gy = rng.standard_normal(y.shape)
        expected = dict(zip(("output", "input", "weight", "bias"), reference_conv2d(
            inputs["input"], inputs["weight"], inputs["bias"], gy, stride, padding, dilation, groups)))
        assert_close("output", y.data, expected["output"])
        y.backward(gy)
        for name, leaf in leaves.items():
            if leaf.grad is None and leaf.requires_grad:
                raise Wrong(f"no gradient reached {name}")
            if leaf.requires_grad:
                assert_close(f"gradient of {name} {inputs[name].shape}", leaf.grad, expected[name])
    each_case(CONV_CASES, check)


def weight_gradient_of_the_first_layer():
    """The images need no gradient (needs_input_grad[0] is False): gW and gb must still be right."""
    conv_against_loops(input_needs_grad=False)


def conv_against_torch():
    rng = numpy.random.default_rng(37)
    for _, x_shape, w_shape, stride, padding, dilation, groups in CONV_CASES:
        skipped = assert_torch_parity(conv(stride, padding, dilation, groups),
                                      torch_conv(stride, padding, dilation, groups),
                                      _conv_inputs(rng, x_shape, w_shape))
    return skipped


CHECKS = {
    "im2col": [
        (f"{len(WINDOW_CASES)} cases (stride, padding, dilation, groups, extra) against loops, both "
         "memory layouts", im2col_against_loops),
        ("conv2d's output and gradients against loops", conv_against_loops),
        ("PyTorch: conv2d", conv_against_torch),
    ],
    "col2im": [
        (f"{len(WINDOW_CASES)} cases against loops that add each number back", col2im_against_loops),
        ("<im2col(x), gcol> = <x, col2im(gcol)>", col2im_is_the_adjoint),
        ("gradcheck of conv2d's input gradient", input_gradcheck),
        ("PyTorch: conv2d's input gradient", input_gradient_against_torch),
    ],
    "Conv2d.backward": [
        (f"gradcheck of input, weight and bias, {len(CONV_CASES)} cases", conv_gradcheck),
        ("output and gradients against loops", conv_against_loops),
        ("input without a gradient (the first layer): gW, gb against loops",
         weight_gradient_of_the_first_layer),
        ("PyTorch", conv_against_torch),
    ],
}
