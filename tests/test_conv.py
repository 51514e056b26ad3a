"""minires.functional.conv and nn.Conv2d: 2-D convolution by im2col.

Against a direct loop over output pixels with gradient checks (float64, random upstream
gradient), then PyTorch parity, then the errors a wrong input or argument gets.
"""
import itertools

import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.optional_torch import requires_torch, torch
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
    def fn(x, w, b=None):
        return F.conv2d(x, w, b, stride=stride, padding=padding)
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


def test_conv2d_takes_one_unbatched_image_and_refuses_other_shapes():
    """(C, H, W) is one image, as in PyTorch (issue 17); other dimensions name the layer."""
    assert nn.Conv2d(3, 8, 3)(images(3, 32, 32)).shape == (8, 30, 30)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*expected input \(N, 3, H, W\), "
                                         r"got \(32, 32\)"):
        nn.Conv2d(3, 8, 3)(images(32, 32))


def test_conv2d_input_too_small_for_the_kernel():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*too small for a 7x7 kernel"):
        nn.Conv2d(3, 4, 7)(images(1, 3, 5, 5))
    assert nn.Conv2d(3, 4, 7, padding=1)(images(1, 3, 5, 5)).shape == (1, 4, 1, 1)  # fits


def test_conv2d_bad_stride():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4, kernel_size=3\): stride must be an int >= 1, got 0"):
        nn.Conv2d(3, 4, 3, stride=0)(images(1, 3, 5, 5))


def test_padding_same_needs_stride_one():
    x = Tensor(numpy.zeros((1, 2, 6, 6), dtype=numpy.float32))
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        F.conv2d(x, Tensor(numpy.zeros((3, 2, 3, 3), dtype=numpy.float32)), stride=2, padding="same")
    with pytest.raises(ValueError, match="padding must be"):
        F.conv2d(x, Tensor(numpy.zeros((3, 2, 3, 3), dtype=numpy.float32)), padding="full")


def functional_parity(x, w, b, **options):
    """minires's and torch's F.conv2d on the same float64 arrays: y and every gradient."""
    rng = numpy.random.default_rng(5)
    mine = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y_m, y_t = F.conv2d(*mine, **options), torch.nn.functional.conv2d(*theirs, **options)
    gy = rng.standard_normal(tuple(y_t.shape))
    y_m.backward(gy)
    y_t.backward(torch.from_numpy(gy))
    numpy.testing.assert_allclose(y_m.numpy(), y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for name, m, t in zip(("x", "weight", "bias"), mine, theirs):
        numpy.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12,
                                      err_msg=f"gradient of {name} with {options}")


# groups, dilation, stride, padding over a grid; (C, OC, G): ordinary, grouped, depthwise,
# depthwise with a channel multiplier
GRID = list(itertools.product([(4, 6, 1), (4, 6, 2), (4, 4, 4), (2, 6, 2)], [3, (2, 3)],
                              [1, (2, 3)], [1, (2, 1)], [0, (2, 1)]))


@requires_torch
@pytest.mark.parametrize("channels, kernel, dilation, stride, padding", GRID)
def test_conv2d_dilation_groups_stride_padding_match_torch(channels, kernel, dilation, stride,
                                                           padding):
    C, OC, G = channels
    KH, KW = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = numpy.random.default_rng(len(GRID))
    x, w, b = (rng.standard_normal((2, C, 8, 9)), rng.standard_normal((OC, C // G, KH, KW)),
               rng.standard_normal(OC))
    functional_parity(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=G)


@requires_torch
@pytest.mark.parametrize("kernel, dilation", [(2, 1), (4, 1), ((3, 4), 1), (3, 2), (2, 3),
                                              ((2, 5), (3, 2)), (1, 1)])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")     # torch's, on speed
def test_conv2d_padding_by_name_with_even_kernels_and_dilation_matches_torch(kernel, dilation,
                                                                           padding):
    """'same' with an odd total of padding puts the extra row/column at the bottom/right."""
    KH, KW = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = numpy.random.default_rng(6)
    x, w, b = rng.standard_normal((2, 4, 7, 10)), rng.standard_normal((6, 2, KH, KW)), rng.standard_normal(6)
    functional_parity(x, w, b, padding=padding, dilation=dilation, groups=2)
    if padding == "same":
        assert F.conv2d(Tensor(x), Tensor(w), padding="same", dilation=dilation, groups=2).shape \
            == (2, 6, 7, 10)


@pytest.mark.parametrize("kernel, stride, padding, dilation, groups", [
    (3, 1, 1, 2, 1),            # dilated
    (3, 2, 2, 2, 2),            # dilated, strided, grouped
    (3, 1, 1, 1, 4),            # depthwise
    (1, 1, 0, 1, 2),            # grouped 1x1: the path without im2col
    ((2, 3), 1, "same", (2, 1), 2),   # 'same' with an odd total of padding in H
    (2, 1, "same", 1, 1),
])
def test_conv2d_options_gradcheck(rng, kernel, stride, padding, dilation, groups):
    KH, KW = (kernel, kernel) if isinstance(kernel, int) else kernel
    x, w, b = leaf(rng, 2, 4, 6, 7), leaf(rng, 4, 4 // groups, KH, KW), leaf(rng, 4)
    def fn(x, w, b):
        return F.conv2d(x, w, b, stride, padding, dilation, groups)
    assert minires.gradcheck(fn, [x, w, b], **TOL)


@requires_torch
def test_depthwise_conv2d_layer_matches_torch():
    """groups = in_channels: each channel convolved with its own two filters."""
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(3, 6, kernel_size=3, padding=1, groups=3).double()
    mine = nn.Conv2d(in_channels=3, out_channels=6, kernel_size=3, padding=1, groups=3).double()
    assert mine.weight.shape == tuple(theirs.weight.shape) == (6, 1, 3, 3)
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = numpy.random.default_rng(7).standard_normal((2, 3, 6, 5))
    x_t = torch.tensor(x, requires_grad=True)
    x_m = Tensor(x, requires_grad=True)
    y_t, y_m = theirs(x_t), mine(x_m)
    gy = numpy.random.default_rng(8).standard_normal(tuple(y_t.shape))
    y_t.backward(torch.from_numpy(gy))
    y_m.backward(gy)
    numpy.testing.assert_allclose(y_m.numpy(), y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(x_m.grad, x_t.grad.numpy(), rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(mine.weight.grad, theirs.weight.grad.numpy(), rtol=1e-10)


def test_conv2d_dilation_against_a_direct_loop(rng):
    """The definition, independent of im2col: y[oh, ow] = sum x_pad[S*oh + D*i, S*ow + D*j] w[i, j]."""
    x, w = rng.standard_normal((1, 2, 9, 8)), rng.standard_normal((3, 2, 3, 2))
    S, P, D = 2, 1, 2
    x_pad = numpy.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    OH, OW = (9 + 2 * P - D * 2 - 1) // S + 1, (8 + 2 * P - D * 1 - 1) // S + 1
    expected = numpy.zeros((1, 3, OH, OW))
    for oh, ow in itertools.product(range(OH), range(OW)):
        patch = x_pad[:, :, S * oh:S * oh + D * 2 + 1:D, S * ow:S * ow + D * 1 + 1:D]  # (1, 2, 3, 2)
        expected[:, :, oh, ow] = numpy.einsum("nchw,ochw->no", patch, w)
    y = F.conv2d(Tensor(x), Tensor(w), stride=S, padding=P, dilation=D)
    numpy.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


# --- the layer: PyTorch's positional order ---------------------------------------------------

@requires_torch
def test_conv2d_sixth_positional_argument_is_dilation_as_in_torch():
    """Issue 10, silent difference 1: nn.Conv2d(4, 4, 3, 1, 2, 2) used to read 2 as bias."""
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(4, 4, 3, 1, 2, 2).double()
    mine = nn.Conv2d(4, 4, 3, 1, 2, 2).double()
    assert mine.dilation == (2, 2) and mine.bias is not None
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = numpy.random.default_rng(9).standard_normal((2, 4, 7, 7))
    numpy.testing.assert_allclose(mine(Tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                                  rtol=1e-10, atol=1e-12)
    grouped = nn.Conv2d(4, 6, 3, 1, 1, 1, 2, False)     # ... groups 7th, bias 8th
    assert grouped.groups == 2 and grouped.bias is None and grouped.weight.shape == (6, 2, 3, 3)
    assert [name for name, _ in grouped.named_parameters()] == ["weight"]


@requires_torch
@pytest.mark.parametrize("args, kwargs", [
    ((4, 4, 3, 1, 2, 2), {}),
    ((4, 6, 3), dict(groups=2, bias=False)),
    ((4, 4, (3, 2)), dict(padding="same", dilation=(1, 2))),
    ((4, 8, 1), dict(stride=2, groups=4)),
])
def test_conv2d_repr_matches_torch(args, kwargs):
    assert repr(nn.Conv2d(*args, **kwargs)) == repr(torch.nn.Conv2d(*args, **kwargs))


def test_grouped_conv2d_weight_is_channels_last_in_memory():
    conv = nn.Conv2d(in_channels=8, out_channels=4, kernel_size=3, groups=2)
    assert conv.weight.shape == (4, 4, 3, 3)
    assert conv.weight.data.transpose(0, 2, 3, 1).flags["C_CONTIGUOUS"]


def test_conv2d_padding_same_layer_keeps_the_size():
    conv = nn.Conv2d(in_channels=2, out_channels=3, kernel_size=4, padding="same", dilation=3)
    assert conv(Tensor(numpy.zeros((1, 2, 5, 11), dtype=numpy.float32))).shape == (1, 3, 5, 11)


# --- errors ----------------------------------------------------------------------------------

def test_conv2d_padding_mode_other_than_zeros_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4, kernel_size=3\): padding_mode='reflect' "
                                         r"is not supported; minires pads with zeros only"):
        nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")


@pytest.mark.parametrize("in_channels, out_channels, groups, message", [
    (3, 4, 2, "groups must be a positive int dividing"), (4, 3, 2, "groups must be a positive int dividing"),
    (4, 4, 0, "groups must be an int >= 1, got 0")])
def test_conv2d_groups_must_divide_the_channels(in_channels, out_channels, groups, message):
    with pytest.raises(ValueError, match=rf"Conv2d\({in_channels}, {out_channels}, "
                                         rf"kernel_size=3\): {message}"):
        nn.Conv2d(in_channels, out_channels, 3, groups=groups)


def test_conv2d_padding_same_with_a_stride_is_refused_when_the_layer_is_built():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4, kernel_size=3\): padding='same' needs "
                                         r"stride 1"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")


def test_conv2d_grouped_input_with_the_wrong_channel_count_names_the_layer():
    conv = nn.Conv2d(in_channels=4, out_channels=6, kernel_size=3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d\(4, 6, k=3\): expected input \(N, 4, H, W\), "
                                         r"got \(1, 2, 5, 5\)"):
        conv(Tensor(numpy.zeros((1, 2, 5, 5), dtype=numpy.float32)))


def test_conv2d_dilation_must_be_positive_and_counts_in_the_size_check():
    x = Tensor(numpy.zeros((1, 2, 5, 5)))
    w = Tensor(numpy.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="dilation must be an int >= 1, got 0"):
        F.conv2d(x, w, dilation=0)
    with pytest.raises(ValueError, match=r"too small for a 7x7 kernel"):     # 3 (3 - 1) + 1 = 7
        F.conv2d(x, w, dilation=3)
    with pytest.raises(ValueError, match="groups must be a positive int dividing out_channels 3"):
        F.conv2d(Tensor(numpy.zeros((1, 4, 5, 5))), w, groups=2)


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0), (1, 0)])
def test_conv2d_of_an_empty_batch_is_empty_forward_and_backward(rng, stride, padding):
    """As PyTorch: N = 0 gives (0, OC, OH, OW), a (0, C, H, W) input gradient and zero gW, gb."""
    x = Tensor(numpy.zeros((0, 3, 6, 6)), requires_grad=True)
    w, b = leaf(rng, 4, 3, 3, 3), leaf(rng, 4)
    if stride == 1 and padding == 0:
        w = leaf(rng, 4, 3, 1, 1)       # the 1x1 path, which skips im2col
    y = F.conv2d(x, w, b, stride=stride, padding=padding)
    OH = (6 + 2 * padding - w.shape[2]) // stride + 1
    assert y.shape == (0, 4, OH, OH)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 6, 6)
    numpy.testing.assert_array_equal(w.grad, numpy.zeros(w.shape))
    numpy.testing.assert_array_equal(b.grad, numpy.zeros(4))
