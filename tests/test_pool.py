"""minires.functional.pool and nn.MaxPool2d / nn.AvgPool2d.

Against a direct loop over windows with gradient checks (float64, random upstream gradient),
then PyTorch parity (ties included), then errors.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, distinct, leaf
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
    fn = lambda x: F.max_pool2d(x, kernel, stride, padding)
    expected = reference_pool(x.numpy(), kernel, stride, padding, numpy.max, -numpy.inf)
    numpy.testing.assert_array_equal(fn(x).numpy(), expected)
    assert minires.gradcheck(fn, [x], **TOL)


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (2, 1, 0), (2, 2, 0), (3, 1, 1)])
def test_avg_pool2d(rng, kernel, stride, padding):
    x = leaf(rng, 2, 2, 7, 9)
    fn = lambda x: F.avg_pool2d(x, kernel, stride, padding)
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
                       match=r"MaxPool2d.*expected input \(N, C, H, W\), got \(2, 6, 6\)"):
        nn.MaxPool2d(2)(images(2, 6, 6))
