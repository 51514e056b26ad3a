"""Every differentiable function checked against central differences.

All checks run in float64 with a random upstream gradient (``minires.gradcheck``
draws one), on tiny shapes: gradcheck runs two forwards per input element.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor
from minires.functional.arithmetic import sum_to
from minires.models.resnet import ResidualBlock

TOL = dict(eps=1e-6, atol=1e-6, rtol=1e-4)


def leaf(rng, *shape, low=None):
    """A float64 leaf that requires a gradient; ``low`` shifts values into (low, low + 1)."""
    values = rng.standard_normal(shape) if low is None else low + rng.random(shape)
    return Tensor(numpy.asarray(values, dtype=numpy.float64), requires_grad=True)


def distinct(rng, *shape):
    """float64 values without ties (a shuffled ramp), so every max has a unique winner."""
    values = rng.permutation(int(numpy.prod(shape))).reshape(shape) / 10.0 - 3.0
    return Tensor(values.astype(numpy.float64), requires_grad=True)


# --- gradcheck itself --------------------------------------------------------------------------

class WrongAtOneElement(minires.Function):
    """y = a * b whose backward for b is off by 0.5 at element (1, 2) only."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        gb = gy * self.a
        gb[1, 2] += 0.5
        return gy * self.b, gb


def test_gradcheck_catches_a_wrong_backward_and_names_the_worst_element(rng):
    a, b = leaf(rng, 2, 3), leaf(rng, 2, 3)
    with pytest.raises(minires.GradcheckError) as caught:
        minires.gradcheck(lambda a, b: WrongAtOneElement()(a, b), [a, b], **TOL)
    message = str(caught.value)
    assert "input 1 (2, 3) at (1, 2)" in message
    assert "1 of 6 elements out of tolerance" in message


class IgnoresUpstream(minires.Function):
    """y = 3 x with a backward that returns 3 whatever gradient arrives: right only for gy = 1."""

    def forward(self, x):
        return 3 * x

    def backward(self, gy):
        return numpy.full(gy.shape, 3.0)


def test_gradcheck_uses_a_random_upstream_gradient(rng):
    x = leaf(rng, 4)
    y = IgnoresUpstream()(x)
    y.backward(numpy.ones(4))
    numpy.testing.assert_allclose(x.grad, 3.0)      # a seed of ones would not notice
    x.grad = None
    with pytest.raises(minires.GradcheckError, match="input 0"):
        minires.gradcheck(lambda x: IgnoresUpstream()(x), [x], **TOL)


def test_gradcheck_passes_and_restores_the_inputs(rng):
    x, w = leaf(rng, 2, 3), leaf(rng, 3)
    before = x.numpy(), w.numpy()
    assert minires.gradcheck(lambda x, w: x * w, [x, w], **TOL) is True
    numpy.testing.assert_array_equal(x.numpy(), before[0])
    numpy.testing.assert_array_equal(w.numpy(), before[1])


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input requires a gradient"):
        minires.gradcheck(lambda x: x * 2, [Tensor(numpy.ones(3))])


# --- arithmetic with broadcasting --------------------------------------------------------------

BROADCAST_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 3), (2, 1)), ((3,), (2, 3)),
                    ((2, 1), (1, 3)), ((2, 3), ())]


@pytest.mark.parametrize("shape_a, shape_b", BROADCAST_SHAPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_arithmetic_with_broadcasting(rng, op, shape_a, shape_b):
    a = leaf(rng, *shape_a)
    b = leaf(rng, *shape_b, low=0.5) if op == "div" else leaf(rng, *shape_b)   # b away from 0
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    assert minires.gradcheck(fn, [a, b], **TOL)


@pytest.mark.parametrize("fn", [lambda x: 2.5 + x, lambda x: 1 - x, lambda x: 3 * x,
                                lambda x: 2 / x, lambda x: x / 4, lambda x: -x],
                         ids=["radd", "rsub", "rmul", "rtruediv", "div_scalar", "neg"])
def test_scalar_operands_and_neg(rng, fn):
    assert minires.gradcheck(fn, [leaf(rng, 2, 3, low=0.5)], **TOL)


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.5])
def test_pow(rng, exponent):
    assert minires.gradcheck(lambda x: x ** exponent, [leaf(rng, 2, 3, low=0.5)], **TOL)


def test_exp_and_log(rng):
    assert minires.gradcheck(lambda x: x.exp(), [leaf(rng, 2, 3)], **TOL)
    assert minires.gradcheck(lambda x: x.log(), [leaf(rng, 2, 3, low=0.5)], **TOL)


def test_relu(rng):
    x = leaf(rng, 3, 4)
    x.data[numpy.abs(x.data) < 0.05] += 0.2         # keep away from the kink at 0
    assert minires.gradcheck(F.relu, [x], **TOL)


# --- matrix multiply, shapes, reductions, indexing ---------------------------------------------

@pytest.mark.parametrize("shape_a, shape_b", [((2, 3), (3, 4)), ((2, 2, 3), (3, 4)),
                                              ((2, 2, 3), (2, 3, 4))])
def test_matmul(rng, shape_a, shape_b):
    assert minires.gradcheck(lambda a, b: a @ b, [leaf(rng, *shape_a), leaf(rng, *shape_b)], **TOL)


def test_reshape_and_flatten(rng):
    assert minires.gradcheck(lambda x: x.reshape(3, 8), [leaf(rng, 2, 3, 4)], **TOL)
    assert minires.gradcheck(lambda x: x.reshape((4, -1)), [leaf(rng, 2, 3, 2)], **TOL)
    assert minires.gradcheck(F.flatten, [leaf(rng, 2, 3, 2, 2)], **TOL)
    assert minires.gradcheck(lambda x: F.flatten(x, 0, 1), [leaf(rng, 2, 3, 2)], **TOL)


@pytest.mark.parametrize("axes", [None, (1, 2, 0), (2, 0, 1)])
def test_permute(rng, axes):
    fn = (lambda x: x.T) if axes is None else (lambda x: x.permute(*axes))
    assert minires.gradcheck(fn, [leaf(rng, 2, 3, 4)], **TOL)


def test_transpose_swaps_two_dimensions_as_pytorch(rng):
    x = leaf(rng, 2, 3, 4)
    assert x.transpose(0, 2).shape == (4, 3, 2) and x.transpose(-1, 1).shape == (2, 4, 3)
    numpy.testing.assert_array_equal(x.transpose(0, 2).numpy(), x.numpy().swapaxes(0, 2))
    assert minires.gradcheck(lambda x: x.transpose(1, 2), [x], **TOL)


AXES = [(None, False), (None, True), (0, False), (1, True), (-1, False), ((0, 2), False),
        ((0, 2), True)]


@pytest.mark.parametrize("axis, keepdims", AXES)
@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_reductions(rng, reduction, axis, keepdims):
    x = distinct(rng, 2, 3, 4)      # no ties, so max has one winner
    fn = lambda x: getattr(x, reduction)(axis=axis, keepdims=keepdims)
    expected = getattr(x.numpy(), reduction)(axis=axis, keepdims=keepdims)
    numpy.testing.assert_allclose(fn(x).numpy(), expected)
    assert minires.gradcheck(fn, [x], **TOL)


@pytest.mark.parametrize("index", [(slice(None), slice(1, 3)), (1,), (Ellipsis, 0),
                                   (numpy.array([0, 2, 0, 0]),),
                                   (slice(None), numpy.array([1, 1, 3]))],
                         ids=["slice", "int", "ellipsis", "repeated_rows", "repeated_columns"])
def test_getitem(rng, index):
    x = leaf(rng, 3, 4)
    numpy.testing.assert_array_equal(x[index].numpy(), x.numpy()[index])
    assert minires.gradcheck(lambda x: x[index], [x], **TOL)


def test_getitem_repeated_index_adds_up():
    x = Tensor(numpy.zeros(3), requires_grad=True)
    x[numpy.array([0, 2, 0, 0])].sum().backward()
    numpy.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


# --- linear and convolution --------------------------------------------------------------------

@pytest.mark.parametrize("with_bias", [True, False])
def test_linear(rng, with_bias):
    x, w, b = leaf(rng, 3, 4), leaf(rng, 2, 4), leaf(rng, 2)
    inputs = [x, w, b] if with_bias else [x, w]
    expected = x.numpy() @ w.numpy().T + (b.numpy() if with_bias else 0)
    numpy.testing.assert_allclose(F.linear(*inputs).numpy(), expected, rtol=1e-12)
    assert minires.gradcheck(F.linear, inputs, **TOL)


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


# --- pooling -----------------------------------------------------------------------------------

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


# --- batch norm --------------------------------------------------------------------------------

def test_batch_norm_training(rng):
    x = leaf(rng, 2, 3, 5, 4)
    gamma = Tensor(rng.uniform(0.5, 2.0, 3) * rng.choice([-1, 1], 3), requires_grad=True)
    beta = leaf(rng, 3)
    assert not numpy.allclose(gamma.numpy(), 1.0)
    fn = lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True)
    y = fn(x, gamma, beta).numpy()
    xv = x.numpy()
    mean, var = xv.mean(axis=(0, 2, 3), keepdims=True), xv.var(axis=(0, 2, 3), keepdims=True)
    expected = (xv - mean) / numpy.sqrt(var + 1e-5) * gamma.numpy()[:, None, None] \
        + beta.numpy()[:, None, None]
    numpy.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    assert minires.gradcheck(fn, [x, gamma, beta], **TOL)


def test_batch_norm_training_with_running_stats(rng):
    x, gamma, beta = leaf(rng, 2, 3, 3, 3), leaf(rng, 3), leaf(rng, 3)
    running_mean, running_var = numpy.zeros(3), numpy.ones(3)
    fn = lambda x, g, b: F.batch_norm(x, running_mean, running_var, g, b, training=True)
    assert minires.gradcheck(fn, [x, gamma, beta], **TOL)


def test_batch_norm_eval(rng):
    x, gamma, beta = leaf(rng, 2, 3, 4, 5), leaf(rng, 3), leaf(rng, 3)
    running_mean, running_var = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    fn = lambda x, g, b: F.batch_norm(x, running_mean, running_var, g, b, training=False)
    mean, var = running_mean[:, None, None], running_var[:, None, None]
    expected = (x.numpy() - mean) / numpy.sqrt(var + 1e-5) * gamma.numpy()[:, None, None] \
        + beta.numpy()[:, None, None]
    numpy.testing.assert_allclose(fn(x, gamma, beta).numpy(), expected, rtol=1e-10, atol=1e-12)
    assert minires.gradcheck(fn, [x, gamma, beta], **TOL)


# --- losses ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [-1, 0])
def test_log_softmax(rng, dim):
    x = leaf(rng, 3, 5)
    y = F.log_softmax(x, dim).numpy()
    xv = x.numpy()
    expected = xv - numpy.log(numpy.exp(xv).sum(axis=dim, keepdims=True))
    numpy.testing.assert_allclose(y, expected, rtol=1e-12)
    assert minires.gradcheck(lambda x: F.log_softmax(x, dim), [x], **TOL)


def test_cross_entropy(rng):
    x = leaf(rng, 4, 5)
    target = numpy.array([0, 4, 2, 4])
    xv = x.numpy()
    log_p = xv - numpy.log(numpy.exp(xv).sum(axis=1, keepdims=True))
    loss = F.cross_entropy(x, target)
    assert loss.shape == ()
    numpy.testing.assert_allclose(loss.item(), -log_p[numpy.arange(4), target].mean(), rtol=1e-12)
    assert minires.gradcheck(lambda x: F.cross_entropy(x, target), [x], **TOL)


def test_cross_entropy_is_stable_for_large_logits():
    x = Tensor(numpy.array([[1000.0, 0.0], [0.0, -1000.0]]), requires_grad=True)
    loss = F.cross_entropy(x, numpy.array([1, 0]))
    loss.backward()
    numpy.testing.assert_allclose(loss.item(), 500.0)
    assert numpy.isfinite(x.grad).all()


# --- a whole residual block, through Modules ---------------------------------------------------

def randomize_block(block, rng):
    """float64, and random gamma / beta everywhere (gamma = 1 hides batch-norm mistakes)."""
    block.double()
    for name, p in block.named_parameters():
        if name.endswith("1.weight"):           # the BatchNorm2d gamma of each unit
            p.data[...] = rng.uniform(0.5, 1.5, p.shape)
        elif name.endswith("1.bias"):
            p.data[...] = rng.standard_normal(p.shape)
    return block


@pytest.mark.parametrize("downsample", [False, True])
def test_residual_block(rng, downsample):
    block = randomize_block(ResidualBlock(4, 2, 6, downsample=downsample), rng).train()
    x = leaf(rng, 2, 4, 6, 6)
    parameters = dict(block.named_parameters())
    shortcut = "downsize" if downsample else "make_equal_channel"
    checked = [parameters[name] for name in
               ("layer.0.0.weight", "layer.1.0.weight", "layer.1.1.weight", "layer.2.1.bias",
                f"{shortcut}.0.weight", f"{shortcut}.1.weight")]
    assert all(p.dtype == numpy.float64 for p in checked)
    y = block(x)
    assert y.shape == ((2, 6, 3, 3) if downsample else (2, 6, 6, 6))
    assert y.dtype == numpy.float64
    # the block uses its parameters internally: fn ignores them, gradcheck perturbs them in place
    assert minires.gradcheck(lambda x, *params: block(x), [x, *checked], **TOL)


class WrongWeightScale(minires.nn.Module):
    """y = x * w with w: (2, 3), through ``WrongAtOneElement``: dy/dw is wrong at (1, 2)."""

    def __init__(self):
        super().__init__()
        self.weight = minires.nn.Parameter(numpy.linspace(0.5, 1.5, 6).reshape(2, 3))

    def forward(self, x):
        return WrongAtOneElement()(x, self.weight)


def test_gradcheck_over_module_parameters(rng):
    """Parameters passed as ignored inputs are still perturbed in place, so they are checked."""
    layer = minires.nn.Linear(3, 2).double()
    x = leaf(rng, 4, 3)
    assert minires.gradcheck(lambda x, w, b: layer(x), [x, layer.weight, layer.bias], **TOL)
    broken = WrongWeightScale()
    assert broken.weight.dtype == numpy.float64
    with pytest.raises(minires.GradcheckError, match=r"input 1 \(2, 3\) at \(1, 2\)"):
        minires.gradcheck(lambda x, w: broken(x), [leaf(rng, 2, 3), broken.weight], **TOL)


def test_basic_sum_to_reduces_broadcast_axes():
    g = numpy.ones((4, 2, 3))
    assert sum_to(g, (2, 1)).tolist() == [[12.0], [12.0]]
    assert sum_to(g, (3,)).tolist() == [8.0, 8.0, 8.0]
    assert sum_to(g, ()).item() == 24.0
