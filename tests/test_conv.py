"""minires.functional.conv and nn.Conv2d: 2-D convolution by im2col.

Against a direct loop over output pixels with gradient checks (float64, random upstream
gradient), then PyTorch parity, then the errors a wrong input or argument gets.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.parity import check_layer, randn, rng_for


def images(*shape):
    return Tensor(numpy.zeros(shape, dtype=numpy.float32))


def reference_conv2d(x, w, b, stride, padding):
    """A direct loop over output pixels: the definition, independent of im2col."""
    (SH, SW), (PH, PW) = stride, padding
    N, C, H, W = x.shape
    OC, _, KH, KW = w.shape
    xp = numpy.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    y = numpy.zeros((N, OC, OH, OW))
    for i in range(OH):
        for j in range(OW):
            patch = xp[:, :, i * SH:i * SH + KH, j * SW:j * SW + KW]       # (N, C, KH, KW)
            y[:, :, i, j] = numpy.einsum("nchw,ochw->no", patch, w)
    return y if b is None else y + b[None, :, None, None]


CONV_CASES = [  # kernel, stride, padding, bias
    (1, 1, 0, True), (1, 2, 0, False), (3, 1, 1, True), (3, 2, 1, False), (3, 2, 0, True),
    (7, 1, 3, True), (7, 2, 3, False), (7, 1, 0, True), ((3, 2), 1, 0, True),
    ((3, 2), 2, 1, True), (3, (2, 1), (0, 1), True),
]


@pytest.mark.parametrize("kernel, stride, padding, with_bias", CONV_CASES)
def test_conv2d(rng, kernel, stride, padding, with_bias):
    KH, KW = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = leaf(rng, 2, 2, 7, 9)                    # non-square input
    w, b = leaf(rng, 3, 2, KH, KW), leaf(rng, 3)
    inputs = [x, w, b] if with_bias else [x, w]
    fn = lambda x, w, b=None: F.conv2d(x, w, b, stride=stride, padding=padding)
    pairs = [(v, v) if isinstance(v, int) else v for v in (stride, padding)]
    expected = reference_conv2d(x.numpy(), w.numpy(), b.numpy() if with_bias else None, *pairs)
    numpy.testing.assert_allclose(fn(*inputs).numpy(), expected, rtol=1e-10, atol=1e-12)
    assert minires.gradcheck(fn, inputs, **TOL)


# --- PyTorch parity ----------------------------------------------------------------------------

TORCH_CONV_CASES = [
    # (C, OC, kernel, stride, padding, H, W)   every input is non-square
    (3, 8, 7, 2, 3, 13, 10),   # the stem of ResNet50_layer4, odd sizes
    (4, 6, 3, 1, 1, 9, 7),
    (4, 6, 3, 2, 1, 9, 8),
    (5, 7, 1, 1, 0, 6, 5),     # 1x1 stride 1: minires's no-im2col path
    (5, 7, 1, 2, 0, 7, 6),     # 1x1 stride 2: the downsampling shortcut
    (3, 4, 3, 2, 0, 8, 11),
    (2, 3, 7, 1, 3, 5, 9),
]


@pytest.mark.parametrize("C, OC, K, S, P, H, W", TORCH_CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(torch, C, OC, K, S, P, H, W, bias):
    torch.manual_seed(0)
    torch_conv = torch.nn.Conv2d(C, OC, kernel_size=K, stride=S, padding=P, bias=bias)
    minires_conv = nn.Conv2d(in_channels=C, out_channels=OC, kernel_size=K, stride=S, padding=P,
                             bias=bias)
    check_layer(minires_conv, torch_conv, randn(rng_for("conv", K, S, P), 3, C, H, W))


@pytest.mark.parametrize("padding, kernel", [("same", (3, 5)), ("valid", (3, 3)), ("same", (1, 7))])
def test_conv2d_padding_by_name(torch, padding, kernel):
    rng = numpy.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 7, 8)), rng.standard_normal((4, 3) + kernel)
    mine = minires.functional.conv2d(minires.Tensor(x), minires.Tensor(w), padding=padding)
    theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=padding)
    numpy.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)


# --- errors ------------------------------------------------------------------------------------

def test_conv2d_wrong_channel_count_names_the_layer():
    conv = nn.Conv2d(3, 64, 7)
    with pytest.raises(ValueError) as caught:
        conv(images(8, 1, 32, 32))
    message = str(caught.value)
    assert "expected input (N, 3, H, W), got (8, 1, 32, 32)" in message
    assert "Conv2d(3, 64" in message


def test_conv2d_three_dimensional_input():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*expected input \(N, 3, H, W\), "
                                         r"got \(3, 32, 32\)"):
        nn.Conv2d(3, 8, 3)(images(3, 32, 32))


def test_conv2d_input_too_small_for_the_kernel():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*too small for a 7x7 kernel"):
        nn.Conv2d(3, 4, 7)(images(1, 3, 5, 5))
    assert nn.Conv2d(3, 4, 7, padding=1)(images(1, 3, 5, 5)).shape == (1, 4, 1, 1)  # fits


def test_conv2d_bad_stride():
    with pytest.raises(ValueError, match="stride must be >= 1"):
        nn.Conv2d(3, 4, 3, stride=0)(images(1, 3, 5, 5))


def test_padding_same_needs_stride_one_and_an_odd_kernel():
    x = Tensor(numpy.zeros((1, 2, 6, 6), dtype=numpy.float32))
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        F.conv2d(x, Tensor(numpy.zeros((3, 2, 2, 2), dtype=numpy.float32)), padding="same")
    with pytest.raises(ValueError, match="padding must be"):
        F.conv2d(x, Tensor(numpy.zeros((3, 2, 3, 3), dtype=numpy.float32)), padding="full")
