"""minires.functional.pool and nn.MaxPool2d / nn.AvgPool2d.

Against a direct loop over windows with gradient checks (float64, random upstream gradient),
then PyTorch parity (ties included), then errors.
"""
import itertools

import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, distinct, leaf
from tests.support.optional_torch import requires_torch, torch
from tests.support.parity import check_layer, randn, rng_for


def images(*shape):
    return Tensor(numpy.zeros(shape, dtype=numpy.float32))


def reference_pool(x, kernel, stride, padding, reduce, fill):
    N, C, H, W = x.shape
    xp = numpy.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                   constant_values=fill)
    OH, OW = (H + 2 * padding - kernel) // stride + 1, (W + 2 * padding - kernel) // stride + 1
    y = numpy.zeros((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            window = xp[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel]
            y[:, :, i, j] = reduce(window, axis=(2, 3))
    return y


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (2, 1, 0), (2, 2, 0), (3, 1, 1)])
def test_max_pool2d(rng, kernel, stride, padding):
    x = distinct(rng, 2, 2, 7, 9)
    def fn(x):
        return F.max_pool2d(x, kernel, stride, padding)
    expected = reference_pool(x.numpy(), kernel, stride, padding, numpy.max, -numpy.inf)
    numpy.testing.assert_array_equal(fn(x).numpy(), expected)
    assert minires.gradcheck(fn, [x], **TOL)


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (2, 1, 0), (2, 2, 0), (3, 1, 1)])
def test_avg_pool2d(rng, kernel, stride, padding):
    x = leaf(rng, 2, 2, 7, 9)
    def fn(x):
        return F.avg_pool2d(x, kernel, stride, padding)
    expected = reference_pool(x.numpy(), kernel, stride, padding, numpy.mean, 0.0)
    numpy.testing.assert_allclose(fn(x).numpy(), expected, rtol=1e-12)
    assert minires.gradcheck(fn, [x], **TOL)


# --- PyTorch parity ----------------------------------------------------------------------------

MAX_POOL_CASES = [((3, 2, 1), (2, 3, 9, 7)), ((3, 2, 1), (2, 2, 8, 8)), ((2,), (2, 3, 8, 6)),
                  ((2,), (2, 3, 7, 5))]   # the last drops a row and a column (floor)


@pytest.mark.parametrize("args, shape", MAX_POOL_CASES)
@pytest.mark.parametrize("low, high", [(0, 3), (-3, 0), (0, 1)])
def test_max_pool_ties_match_torch(torch, args, shape, low, high):
    """Windows with tied maxima: torch routes the gradient to the first max in row-major order.

    Integer inputs make ties common ((0, 1) makes every window constant; (-3, 0) is all
    negative, so the -inf padding must never win). gy is integer too, so the sums where
    overlapping windows meet are exact and the gradients can be compared bit for bit.
    """
    rng = rng_for("max pool ties", args, shape, low)
    x = rng.integers(low, high, size=shape).astype(numpy.float32)
    torch_pool = torch.nn.MaxPool2d(*args)
    y_shape = tuple(torch_pool(torch.from_numpy(x)).shape)
    gy = rng.integers(-5, 6, size=y_shape).astype(numpy.float32)
    check_layer(nn.MaxPool2d(*args), torch_pool, x, gy=gy, exact=True)


@pytest.mark.parametrize("args, shape", MAX_POOL_CASES)
def test_max_pool_random_matches_torch(torch, args, shape):
    x = randn(rng_for("max pool", args, shape), *shape)
    check_layer(nn.MaxPool2d(*args), torch.nn.MaxPool2d(*args), x)


@pytest.mark.parametrize("args, shape", [((2, 2), (2, 3, 8, 6)), ((2, 2), (2, 3, 7, 5)),
                                         ((3, 2, 1), (2, 3, 9, 7)), ((3, 2, 1), (1, 2, 8, 10))])
def test_avg_pool_matches_torch(torch, args, shape):
    x = randn(rng_for("avg pool", args, shape), *shape)
    check_layer(nn.AvgPool2d(*args), torch.nn.AvgPool2d(*args), x)


# --- errors ------------------------------------------------------------------------------------

def test_pooling_input_too_small_and_padding_too_large():
    with pytest.raises(ValueError, match=r"MaxPool2d.*too small for a 3x3 kernel"):
        F.max_pool2d(images(1, 2, 2, 2), 3)
    with pytest.raises(ValueError, match=r"AvgPool2d.*at most half the kernel size"):
        F.avg_pool2d(images(1, 2, 6, 6), 2, padding=2)
    with pytest.raises(ValueError,
                       match=r"MaxPool2d.*expected input \(N, C, H, W\), got \(6, 6\)"):
        nn.MaxPool2d(2)(Tensor(numpy.zeros((6, 6))))      # (C, H, W), one image, is accepted


TF = torch.nn.functional if torch is not None else None


def parity(mine, theirs, x, rtol=1e-12):
    """Same x and upstream gradient into ``mine(x)`` and ``theirs(x)``: compare y and x.grad,
    or, where torch refuses the input, that minires refuses it too."""
    x_m, x_t = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    try:
        y_t = theirs(x_t)
    except RuntimeError:
        with pytest.raises(ValueError, match="too small"):
            mine(x_m)
        return
    y_m = mine(x_m)
    assert y_m.shape == tuple(y_t.shape)
    gy = numpy.random.default_rng(1).standard_normal(tuple(y_t.shape))
    y_m.backward(gy)
    y_t.backward(torch.from_numpy(gy))
    numpy.testing.assert_allclose(y_m.numpy(), y_t.detach().numpy(), rtol=rtol, atol=1e-13)
    numpy.testing.assert_allclose(x_m.grad, x_t.grad.numpy(), rtol=rtol, atol=1e-13)


# H, W, kernel, stride, padding: sizes where ceil_mode adds a window, or adds one that
# PyTorch then drops because it would start in the right padding
WINDOWS = [(H, W) + window for H, W in [(5, 4), (6, 8), (7, 7)]
           for window in itertools.product([2, 3, (3, 2)], [1, 2, 3, (2, 3)], [0, 1])]


def sweep(check):
    """``check(H, W, kernel, stride, padding)`` for every case of WINDOWS, naming a failing case."""
    for H, W, kernel, stride, padding in WINDOWS:
        if 2 * padding > min(pair(kernel)):
            continue            # padding over half the kernel: refused by both
        try:
            check(H, W, kernel, stride, padding)
        except AssertionError as error:
            raise AssertionError(f"H={H} W={W} kernel={kernel} stride={stride} "
                                 f"padding={padding}: {error}") from error


@requires_torch
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_ceil_mode_and_count_include_pad_match_torch(ceil_mode, count_include_pad):
    def check(H, W, kernel, stride, padding):
        x = numpy.random.default_rng(H * W).standard_normal((2, 3, H, W))
        args = (kernel, stride, padding, ceil_mode, count_include_pad)
        parity(lambda x: F.avg_pool2d(x, *args), lambda x: TF.avg_pool2d(x, *args), x)
    sweep(check)


@requires_torch
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("dilation", [1, 2])
def test_max_pool2d_ceil_mode_and_dilation_match_torch(ceil_mode, dilation):
    def check(H, W, kernel, stride, padding):
        x = distinct(numpy.random.default_rng(H * W), 2, 3, H, W).numpy()
        args = (kernel, stride, padding, dilation, ceil_mode)
        parity(lambda x: F.max_pool2d(x, *args), lambda x: TF.max_pool2d(x, *args), x)
    sweep(check)


def pair(value):
    return (value, value) if isinstance(value, int) else value


@requires_torch
def test_ceil_mode_output_size_follows_torchs_rule():
    """ceil((H + 2P - K) / S) + 1, less the last window if it would start in the right padding."""
    from minires.arguments import output_size
    for H, K, S, P in itertools.product(range(1, 12), range(1, 5), range(1, 5), range(0, 3)):
        if 2 * P > K or H + 2 * P < K:
            continue
        expected = TF.max_pool2d(torch.zeros(1, 1, H, 1), (K, 1), (S, 1), (P, 0), ceil_mode=True).shape[2]
        assert output_size(H, K, S, P, ceil_mode=True) == expected, (H, K, S, P)


@pytest.mark.parametrize("pool, args", [
    ("avg", (3, 2, 1, True, False)),      # ceil_mode, count_include_pad=False
    ("avg", (2, 2, 0, True, True)),       # ceil_mode: the last window is clipped
    ("avg", ((3, 2), (2, 1), 1, False, False)),
    ("max", (3, 2, 1, 1, True)),          # ceil_mode
    ("max", (2, 1, 1, 2, False)),         # dilation
    ("max", ((3, 2), (2, 3), 0, (1, 2), True)),
])
def test_pooling_options_gradcheck(rng, pool, args):
    x = distinct(rng, 2, 2, 7, 6)
    fn = (lambda x: F.avg_pool2d(x, *args)) if pool == "avg" else (lambda x: F.max_pool2d(x, *args))
    assert minires.gradcheck(fn, [x], **TOL)


def test_count_include_pad_false_divides_by_the_pixels_inside():
    x = Tensor(numpy.ones((1, 1, 3, 3)))
    inside = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    with_padding = F.avg_pool2d(x, 3, stride=1, padding=1)
    numpy.testing.assert_allclose(inside.numpy(), 1.0)
    assert with_padding.numpy()[0, 0, 0, 0] == pytest.approx(4 / 9)     # the corner sees 4 of 9


# --- adaptive average pooling ----------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("H, W", [(5, 7), (6, 6), (1, 3), (8, 4)])
@pytest.mark.parametrize("output_size", [1, 2, 3, (2, 5), (None, 2), (4, None), 7])
def test_adaptive_avg_pool2d_matches_torch(H, W, output_size):
    x = numpy.random.default_rng(H + W).standard_normal((2, 3, H, W))
    parity(lambda x: F.adaptive_avg_pool2d(x, output_size),
           lambda x: TF.adaptive_avg_pool2d(x, output_size), x)
    parity(nn.AdaptiveAvgPool2d(output_size), torch.nn.AdaptiveAvgPool2d(output_size), x)


@pytest.mark.parametrize("output_size", [1, (2, 3), (3, 2), 5])
def test_adaptive_avg_pool2d_gradcheck(rng, output_size):
    """(3, 2) over 5 rows: windows of unequal size that overlap; 5 over 4 columns: repeated."""
    x = Tensor(rng.standard_normal((2, 3, 5, 4)), requires_grad=True)
    assert minires.gradcheck(lambda x: F.adaptive_avg_pool2d(x, output_size), [x], **TOL)


def test_adaptive_avg_pool2d_to_one_is_the_mean(rng):
    x = rng.standard_normal((2, 3, 5, 7)).astype(numpy.float32)
    y = nn.AdaptiveAvgPool2d(1)(Tensor(x))
    assert y.shape == (2, 3, 1, 1) and y.dtype == numpy.float32
    numpy.testing.assert_allclose(y.numpy(), x.mean(axis=(2, 3), keepdims=True), rtol=1e-6)


def test_adaptive_avg_pool2d_windows_follow_the_floor_ceil_formula():
    from minires.functional.pool import _adaptive_windows
    assert _adaptive_windows(5, 3) == [(0, 2), (1, 4), (3, 5)]     # floor(i*5/3), ceil((i+1)*5/3)
    assert _adaptive_windows(4, 2) == [(0, 2), (2, 4)]             # divisible: avg_pool2d(2)
    assert _adaptive_windows(2, 3) == [(0, 1), (0, 2), (1, 2)]     # more outputs than inputs


# --- the layers: PyTorch's positional order, repr, summary -----------------------------------

@requires_torch
def test_max_pool2d_positional_order_follows_torch():
    """nn.MaxPool2d(kernel_size, stride, padding, dilation, return_indices, ceil_mode)."""
    mine, theirs = nn.MaxPool2d(3, 2, 1, 2, False, True), torch.nn.MaxPool2d(3, 2, 1, 2, False, True)
    assert (mine.dilation, mine.ceil_mode) == (2, True)
    parity(mine, theirs, distinct(numpy.random.default_rng(2), 1, 2, 8, 7).numpy())


@requires_torch
def test_avg_pool2d_positional_order_follows_torch():
    """nn.AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad)."""
    mine, theirs = nn.AvgPool2d(3, 2, 1, True, False), torch.nn.AvgPool2d(3, 2, 1, True, False)
    assert (mine.ceil_mode, mine.count_include_pad) == (True, False)
    parity(mine, theirs, numpy.random.default_rng(3).standard_normal((1, 2, 8, 7)))


@requires_torch
def test_pooling_reprs_show_the_options():
    assert repr(nn.MaxPool2d(3, 2, 1, ceil_mode=True)) == \
        "MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)"
    assert repr(nn.AvgPool2d(2, count_include_pad=False)) == \
        "AvgPool2d(kernel_size=2, stride=None, padding=0, count_include_pad=False)"
    assert repr(nn.AdaptiveAvgPool2d((2, None))) == repr(torch.nn.AdaptiveAvgPool2d((2, None)))


def test_summary_shows_ceil_mode_and_the_dropped_window():
    model = nn.Sequential(nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.MaxPool2d(2, 2, 1, ceil_mode=True))
    rows, _ = minires.summary(model, (1, 9, 9), print_fn=lambda line: None)
    assert rows[0]["formula"] == "ceil((9 + 2*1 - 3) / 2) + 1 = 5"
    assert rows[1]["formula"] == "ceil((5 + 2*1 - 2) / 2) + 1 - 1 = 3"
    assert rows[1]["output_shape"] == (1, 1, 3, 3)


# --- errors ----------------------------------------------------------------------------------

def test_pooling_option_errors_name_the_layer():
    x = Tensor(numpy.zeros((1, 2, 6, 6)))
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=2\): dilation must be an int >= 1"):
        F.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match=r"AvgPool2d\(kernel_size=2\): stride must be an int >= 1"):
        F.avg_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=0\): kernel_size must be an int "
                                         r">= 1, got 0"):     # was reported as a stride problem
        F.max_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2d\(output_size=\(0, 2\)\): "
                                         r"output_size must be an int >= 1, got 0"):
        F.adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2d\(output_size=1\): expected input "
                                         r"\(N, C, H, W\), got \(6, 6\)"):
        nn.AdaptiveAvgPool2d(1)(Tensor(numpy.zeros((6, 6))))
    with pytest.raises(ValueError, match=r"MaxPool2d.*too small for a 5x5 kernel"):   # 2 (3 - 1) + 1
        F.max_pool2d(Tensor(numpy.zeros((1, 2, 4, 4))), 3, dilation=2)


def test_one_unbatched_image_goes_through_convolution_and_pooling_as_torch(rng):
    """Issue 17: (C, H, W) inputs, as PyTorch takes them, forward and backward (windows.py's
    unbatched_images, which convolution shares)."""
    from tests.support.torch_oracle import same_as_torch
    weight = rng.standard_normal((4, 3, 3, 3))
    tF = torch.nn.functional
    for ours, theirs in (
            (lambda x: F.conv2d(x, minires.Tensor(weight), padding=1),
             lambda x: tF.conv2d(x, torch.tensor(weight), padding=1)),
            (lambda x: F.max_pool2d(x, 2), lambda x: tF.max_pool2d(x, 2)),
            (lambda x: F.avg_pool2d(x, 3, 2, 1), lambda x: tF.avg_pool2d(x, 3, 2, 1)),
            (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), lambda x: tF.adaptive_avg_pool2d(x, (2, 3)))):
        same_as_torch(ours, theirs, rng.standard_normal((3, 6, 7)))
    layer = minires.nn.Conv2d(3, 2, 3)
    assert layer(minires.Tensor(rng.standard_normal((3, 5, 5)).astype("float32"))).shape == (2, 3, 3)


# --- issue 17: return_indices with max_unpool2d, divisor_override ------------------------------

@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode",
                         [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False)])
def test_max_pool_indices_match_torch(rng, kernel, stride, padding, dilation, ceil_mode):
    x = distinct(rng, 2, 3, 7, 6)
    y, indices = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    y_t, indices_t = torch.nn.functional.max_pool2d(torch.tensor(x.numpy()), kernel, stride, padding,
                                                    dilation, ceil_mode, return_indices=True)
    numpy.testing.assert_array_equal(y.numpy(), y_t.numpy())
    assert indices.dtype == numpy.int64
    numpy.testing.assert_array_equal(indices.numpy(), indices_t.numpy())


def test_max_unpool_inverts_the_pooling_as_torch(rng):
    from tests.support.torch_oracle import same_as_torch
    x = distinct(rng, 2, 3, 6, 4).numpy()
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    pool_t, unpool_t = torch.nn.MaxPool2d(2, return_indices=True), torch.nn.MaxUnpool2d(2)
    same_as_torch(lambda x: unpool(*pool(x)), lambda x: unpool_t(*pool_t(x)), x)
    same_as_torch(lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2, output_size=(7, 5)),
                  lambda x: torch.nn.functional.max_unpool2d(
                      *torch.nn.functional.max_pool2d(x, 2, return_indices=True), 2, output_size=(7, 5)), x)
    indices = pool(Tensor(x))[1]
    assert minires.gradcheck(lambda v: F.max_unpool2d(v, indices, 2), [leaf(rng, 2, 3, 3, 2)], **TOL)


def test_avg_pool_divisor_override_matches_torch(rng):
    from tests.support.torch_oracle import same_as_torch
    same_as_torch(lambda x: F.avg_pool2d(x, 3, 2, 1, divisor_override=4),
                  lambda x: torch.nn.functional.avg_pool2d(x, 3, 2, 1, divisor_override=4),
                  rng.standard_normal((2, 3, 6, 5)))
    same_as_torch(nn.AvgPool2d(2, divisor_override=3), torch.nn.AvgPool2d(2, divisor_override=3),
                  rng.standard_normal((1, 2, 4, 4)))


@pytest.mark.parametrize("output_size", [1, (2, 3), (3, None), 4])
def test_adaptive_max_pool_matches_torch_and_gradchecks(rng, output_size):
    from tests.support.torch_oracle import same_as_torch
    same_as_torch(lambda x: F.adaptive_max_pool2d(x, output_size),
                  lambda x: torch.nn.functional.adaptive_max_pool2d(x, output_size),
                  distinct(rng, 2, 3, 7, 5).numpy())
    same_as_torch(nn.AdaptiveMaxPool2d(output_size), torch.nn.AdaptiveMaxPool2d(output_size),
                  numpy.round(rng.standard_normal((1, 2, 5, 6)), 0))        # ties: the first keeps it
    assert minires.gradcheck(lambda x: F.adaptive_max_pool2d(x, output_size), [distinct(rng, 1, 2, 5, 4)],
                             **TOL)


@pytest.mark.parametrize("output_size", [1, (2, 3), (3, None), 4, (5, 2)])
def test_adaptive_max_pool_return_indices_matches_torch(rng, output_size):
    """Issue 17: the positions h * W + w of the maxima, ties (rounded inputs) to the first, as
    PyTorch; the values and gradient as without indices; an unbatched image; and max_unpool2d
    puts each maximum back where it was found."""
    for x in (numpy.round(rng.standard_normal((2, 3, 7, 5)), 0), distinct(rng, 3, 6, 4).numpy()):
        y, indices = F.adaptive_max_pool2d(Tensor(x), output_size, return_indices=True)
        expected_y, expected = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(x), output_size,
                                                                       return_indices=True)
        assert indices.dtype == numpy.int64 and indices.shape == tuple(expected.shape)
        numpy.testing.assert_array_equal(indices.numpy(), expected.numpy())
        numpy.testing.assert_array_equal(y.numpy(), expected_y.numpy())
    layer_y, layer_indices = nn.AdaptiveMaxPool2d(output_size, return_indices=True)(Tensor(x))
    numpy.testing.assert_array_equal(layer_indices.numpy(), expected.numpy())
    plane = numpy.zeros(x.shape).reshape(3, -1)
    numpy.put_along_axis(plane, indices.numpy().reshape(3, -1), y.numpy().reshape(3, -1), axis=1)
    numpy.testing.assert_array_equal(plane.reshape(x.shape)[plane.reshape(x.shape) != 0],
                                     x[plane.reshape(x.shape) != 0])
    assert minires.gradcheck(lambda v: F.adaptive_max_pool2d(v, output_size, return_indices=True)[0],
                             [distinct(rng, 1, 2, 5, 4)], **TOL)
