"""Checks of chapter 5: ``MaxPool2d.backward`` and ``AvgPool2d.backward``, against plain loops.

N batch, C channels, H/W input size, K kernel, S stride, P padding, D dilation, OH/OW output size.
"""
import numpy

import minires
import minires.functional as F

from .compare import (
    assert_close,
    assert_torch_parity,
    check_gradients,
    each_case,
    gradients_of,
    torch_functional,
)

# (what, x shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    ("2x2, stride 2", (1, 2, 4, 4), 2, 2, 0, 1, False),
    ("3x3, stride 2, padding 1 (windows overlap)", (1, 2, 5, 5), 3, 2, 1, 1, False),
    ("3x3, stride 1, dilation 2", (1, 1, 6, 6), 3, 1, 0, 2, False),
    ("3x3, stride 2, ceil_mode", (1, 2, 6, 6), 3, 2, 0, 1, True),
    ("2x3, stride (1, 2), padding (1, 1)", (2, 1, 4, 5), (2, 3), (1, 2), (1, 1), 1, False),
]
# (what, x shape, kernel, stride, padding, ceil_mode, count_include_pad)
AVG_CASES = [
    ("2x2, stride 2", (1, 2, 4, 4), 2, 2, 0, False, True),
    ("3x3, stride 2, padding 1", (1, 2, 5, 5), 3, 2, 1, False, True),
    ("3x3, stride 1, padding 1, count_include_pad=False", (1, 2, 4, 4), 3, 1, 1, False, False),
    ("3x3, stride 2, ceil_mode", (1, 1, 6, 6), 3, 2, 0, True, True),
    ("2x3, stride (1, 2), padding (1, 1), ceil_mode", (2, 1, 4, 5), (2, 3), (1, 2), (1, 1), True, True),
]


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


def distinct(shape, seed):
    """Values without ties, 0.1 apart (a shuffled ramp), so that eps never changes a maximum."""
    values = numpy.random.default_rng(seed).permutation(int(numpy.prod(shape)))
    return values.reshape(shape) / 10.0 - 3.0


def out_size(size, K, S, P, D, ceil_mode):
    """PyTorch's output size; with ceil_mode, less one if the last window starts past the padding."""
    span = (size + 2 * P - D * (K - 1) - 1)
    out = (-(-span // S) if ceil_mode else span // S) + 1
    if ceil_mode and (out - 1) * S >= size + P:
        out -= 1
    return out


def reference_max_pool_backward(x, gy, kernel, stride, padding, dilation, ceil_mode):
    """Each window's gradient to its first maximum in row-major order, by loops."""
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW), (DH, DW) = map(_pair, (kernel, stride, padding, dilation))
    OH, OW = out_size(H, KH, SH, PH, DH, ceil_mode), out_size(W, KW, SW, PW, DW, ceil_mode)
    gx = numpy.zeros(x.shape)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best, where = -numpy.inf, None
                    for i in range(KH):
                        for j in range(KW):
                            h, w = oh * SH - PH + DH * i, ow * SW - PW + DW * j
                            if 0 <= h < H and 0 <= w < W and x[n, c, h, w] > best:
                                best, where = x[n, c, h, w], (h, w)
                    gx[n, c, where[0], where[1]] += gy[n, c, oh, ow]
    return gx


def reference_avg_pool_backward(x, gy, kernel, stride, padding, ceil_mode, count_include_pad):
    """Each window's gradient shared by its pixels, divided as PyTorch divides, by loops."""
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = map(_pair, (kernel, stride, padding))
    OH, OW = out_size(H, KH, SH, PH, 1, ceil_mode), out_size(W, KW, SW, PW, 1, ceil_mode)
    gx = numpy.zeros(x.shape)
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * SH - PH, ow * SW - PW
            h1, w1 = min(h0 + KH, H + PH), min(w0 + KW, W + PW)     # cut at the end of the padding
            divisor = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            if not count_include_pad:
                divisor = (h1 - h0) * (w1 - w0)
            gx[:, :, h0:h1, w0:w1] += gy[:, :, oh:oh + 1, ow:ow + 1] / divisor
    return gx


def max_pool(kernel, stride, padding, dilation, ceil_mode):
    return lambda input: F.max_pool2d(input, kernel, stride, padding, dilation, ceil_mode)


def avg_pool(kernel, stride, padding, ceil_mode, count_include_pad):
    return lambda input: F.avg_pool2d(input, kernel, stride, padding, ceil_mode, count_include_pad)


def torch_max_pool(kernel, stride, padding, dilation, ceil_mode):
    return lambda input: torch_functional().max_pool2d(input, kernel, stride, padding, dilation, ceil_mode)


def torch_avg_pool(kernel, stride, padding, ceil_mode, count_include_pad):
    return lambda input: torch_functional().avg_pool2d(input, kernel, stride, padding, ceil_mode,
                                                       count_include_pad)


def max_gradcheck():
    each_case(MAX_CASES, lambda what, shape, *options: check_gradients(
        max_pool(*options), {"input": distinct(shape, 40)}))


def max_against_loops():
    rng = numpy.random.default_rng(41)

    def check(what, shape, *options):
        for values in ("distinct", "with ties"):
            x = distinct(shape, 42) if values == "distinct" else rng.integers(0, 3, shape).astype(float)
            y = max_pool(*options)(input=minires.Tensor(x))
            gy = rng.standard_normal(y.shape)
            got = gradients_of(max_pool(*options), {"input": x}, gy)["input"]
            assert_close(f"gradient of input {shape}, values {values}", got,
                         reference_max_pool_backward(x, gy, *options))
    each_case(MAX_CASES, check)


def max_against_torch():
    for _, shape, kernel, stride, padding, dilation, ceil_mode in MAX_CASES:
        skipped = assert_torch_parity(
            max_pool(kernel, stride, padding, dilation, ceil_mode),
            torch_max_pool(kernel, stride, padding, dilation, ceil_mode),
            {"input": distinct(shape, 43)})
    return skipped


def avg_gradcheck():
    rng = numpy.random.default_rng(44)
    each_case(AVG_CASES, lambda what, shape, *options: check_gradients(
        avg_pool(*options), {"input": rng.standard_normal(shape)}))


def avg_against_loops():
    rng = numpy.random.default_rng(45)

    def check(what, shape, *options):
        x = rng.standard_normal(shape)
        gy = rng.standard_normal(avg_pool(*options)(input=minires.Tensor(x)).shape)
        got = gradients_of(avg_pool(*options), {"input": x}, gy)["input"]
        assert_close(f"gradient of input {shape}", got, reference_avg_pool_backward(x, gy, *options))
    each_case(AVG_CASES, check)


def avg_against_torch():
    rng = numpy.random.default_rng(46)
    for _, shape, kernel, stride, padding, ceil_mode, count_include_pad in AVG_CASES:
        skipped = assert_torch_parity(
            avg_pool(kernel, stride, padding, ceil_mode, count_include_pad),
            torch_avg_pool(kernel, stride, padding, ceil_mode, count_include_pad),
            {"input": rng.standard_normal(shape)})
    return skipped


CHECKS = {
    "MaxPool2d.backward": [
        (f"gradcheck, {len(MAX_CASES)} cases (padding, dilation, ceil_mode), no ties", max_gradcheck),
        ("routing against loops, ties to the first maximum in row-major order", max_against_loops),
        ("PyTorch", max_against_torch),
    ],
    "AvgPool2d.backward": [
        (f"gradcheck, {len(AVG_CASES)} cases (padding, ceil_mode, count_include_pad)", avg_gradcheck),
        ("equal shares against loops, PyTorch's divisors", avg_against_loops),
        ("PyTorch", avg_against_torch),
    ],
}
