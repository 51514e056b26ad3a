"""minires.functional.arithmetic: +, -, *, / with broadcasting, neg, pow, exp, log, sum_to.

Reference values, then gradient checks (float64, random upstream gradient), then dtypes.
"""
import itertools
import operator

import numpy
import pytest

import minires
from minires import Tensor
from minires.functional.arithmetic import sum_to
from tests.support.gradients import TOL, leaf
from tests.support.torch_oracle import same_as_torch


def test_basic_sum_to_reduces_broadcast_axes():
    g = numpy.ones((4, 2, 3))
    assert sum_to(g, (2, 1)).tolist() == [[12.0], [12.0]]
    assert sum_to(g, (3,)).tolist() == [8.0, 8.0, 8.0]
    assert sum_to(g, ()).item() == 24.0


def test_ndarray_on_the_left_defers_to_tensor():
    x = Tensor(numpy.asarray([1.0, 2.0], dtype=numpy.float64), requires_grad=True)
    y = numpy.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad, [3.0, 4.0])


# --- gradient checks ---------------------------------------------------------------------------

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


# --- dtypes ------------------------------------------------------------------------------------

def test_float64_scalar_exponent_keeps_float32():
    x = Tensor(numpy.asarray([1.0, 2.0], dtype=numpy.float32), requires_grad=True)
    assert (x * numpy.float64(2.0)).dtype == numpy.float32
    assert (x ** numpy.float64(2.0)).dtype == numpy.float32


def leaf_of(values, dtype=numpy.float64):
    """A leaf holding ``values`` that requires a gradient."""
    return Tensor(numpy.asarray(values, dtype=dtype), requires_grad=True)


# --- issue 10, item 2: x ** y with a Tensor exponent -------------------------------------------
def test_pow_with_a_tensor_exponent_gradcheck(rng):
    x, p = leaf_of(0.5 + rng.random((2, 3))), leaf_of(rng.standard_normal((2, 3)))
    assert minires.gradcheck(lambda x, p: x ** p, [x, p], **TOL)
    row = leaf_of(rng.standard_normal(3))                          # broadcast: (2, 3) ** (3,)
    assert minires.gradcheck(lambda x, p: x ** p, [x, row], **TOL)
    assert minires.gradcheck(lambda p: 2.5 ** p, [row], **TOL)  # __rpow__


@pytest.mark.filterwarnings("ignore:.*encountered in power:RuntimeWarning")     # 0 ** -1, (-2) ** 0.5
def test_pow_with_a_tensor_exponent_matches_torch_including_zero_and_negative_bases():
    x = numpy.array([0.0, 0.0, 0.0, 0.0, 2.0, -1.0, -2.0, 0.0, 3.0])
    p = numpy.array([0.0, 1.0, -1.0, 2.5, 0.5, 2.0, 0.5, -0.5, 0.0])
    same_as_torch(lambda x, p: x ** p, lambda x, p: x ** p, x, p)
    same_as_torch(lambda x, p: x ** p, lambda x, p: x ** p, x.reshape(3, 3), p[:3])
    same_as_torch(lambda p: 2.0 ** p, lambda p: 2.0 ** p, p)
    same_as_torch(lambda x: x.pow(Tensor(numpy.array(2.0))), lambda x: x.pow(x.new_tensor(2.0)), x)


def test_pow_tensor_exponent_sends_a_gradient_to_the_exponent():
    x, p = leaf_of([2.0, 3.0]), leaf_of([3.0, 0.5])
    (x ** p).sum().backward()
    numpy.testing.assert_allclose(p.grad, [8.0 * numpy.log(2.0), 3.0 ** 0.5 * numpy.log(3.0)])


# --- issue 10, item 3: d(x ** 0)/dx at x = 0 ---------------------------------------------------
@pytest.mark.parametrize("exponent", [0, 0.0, numpy.float64(0.0)])
def test_gradient_of_x_to_the_power_zero_is_zero_at_zero(exponent):
    x = leaf_of([0.0, 1.0, -2.0])
    (x ** exponent).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])
    same_as_torch(lambda x: x ** exponent, lambda x: x ** exponent, numpy.array([0.0, 1.0, -2.0]))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")      # 0 ** -1
@pytest.mark.parametrize("exponent", [1, 2, 0.5, -1.0, 3])
def test_pow_with_a_number_exponent_matches_torch_at_zero(exponent):
    x = numpy.array([0.0, 0.5, 2.0])
    same_as_torch(lambda x: x ** exponent, lambda x: x ** exponent, x)


# --- issue 10, item 6: type promotion ------------------------------------------------------------
DTYPES = ["bool", "uint8", "int32", "int64", "float32", "float64"]
SCALARS = [True, 2, -3, 1.5, 1 / 255]
OPERATORS = [operator.add, operator.sub, operator.mul, operator.truediv]


def _values(dtype, shape=(4,)):
    ramp = numpy.arange(1, 1 + int(numpy.prod(shape))).reshape(shape)
    return ramp % 3 != 2 if dtype == "bool" else ramp.astype(dtype) * 3


def _both(op, a, b):
    """(minires result or its exception type, torch result or its exception type)."""
    torch = pytest.importorskip("torch")
    results = []
    for wrap in (Tensor, torch.tensor):
        operands = [wrap(x) if isinstance(x, numpy.ndarray) else x for x in (a, b)]
        try:
            results.append(op(*operands))
        except Exception as error:      # each framework raises its own type
            results.append(error)
    return results


def _same(mine, theirs, case):
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"{case}: torch raises {theirs!r}, minires gives {mine}"
        return
    assert not isinstance(mine, Exception), f"{case}: minires raises {mine!r}"
    expected = theirs.numpy()
    assert mine.dtype == expected.dtype, f"{case}: dtype {mine.dtype}, torch {expected.dtype}"
    numpy.testing.assert_allclose(mine.numpy().astype(float), expected.astype(float), rtol=1e-6,
                                  err_msg=case)


@pytest.mark.filterwarnings("ignore:.*encountered in divide:RuntimeWarning")   # x / False
@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_and_python_number_promote_as_in_torch(dtype):
    for op, scalar in itertools.product(OPERATORS, SCALARS):
        x = _values(dtype)
        _same(*_both(op, x, scalar), f"{dtype} tensor {op.__name__} {scalar!r}")
        _same(*_both(op, scalar, x), f"{scalar!r} {op.__name__} {dtype} tensor")


@pytest.mark.filterwarnings("ignore:.*encountered in divide:RuntimeWarning")   # x / False
@pytest.mark.parametrize("a_dtype, b_dtype", list(itertools.product(DTYPES, DTYPES)))
def test_tensors_of_two_dtypes_promote_as_in_torch(a_dtype, b_dtype):
    for op in OPERATORS:
        a, b = _values(a_dtype, (2, 3)), _values(b_dtype, (3,))
        _same(*_both(op, a, b), f"{a_dtype} (2, 3) {op.__name__} {b_dtype} (3,)")
        zero_d = _values(b_dtype, (1,)).reshape(())
        _same(*_both(op, a, zero_d), f"{a_dtype} (2, 3) {op.__name__} {b_dtype} ()")


def test_python_integers_wrap_around_a_small_integer_dtype_as_in_torch():
    _same(*_both(operator.add, numpy.array([3, 250], dtype=numpy.uint8), -3), "uint8 + -3")
    _same(*_both(operator.mul, numpy.array([3, 100], dtype=numpy.int8), 200), "int8 * 200")


def test_subtraction_with_a_bool_tensor_is_refused_as_in_torch():
    mask = Tensor(numpy.array([True, False]))
    for op in (lambda: mask - 1, lambda: 1.0 - mask, lambda: Tensor(numpy.ones(2)) - mask,
               lambda: Tensor(numpy.ones(2)) - True):
        with pytest.raises(RuntimeError, match="~mask"):
            op()
    numpy.testing.assert_array_equal((~mask).numpy(), [False, True])


def test_uint8_image_times_a_float_is_float32():
    image = Tensor(numpy.full((2, 2), 200, dtype=numpy.uint8))
    scaled = image * (1 / 255)
    assert scaled.dtype == numpy.float32
    numpy.testing.assert_allclose(scaled.numpy(), numpy.full((2, 2), 200 / 255), rtol=1e-6)
    assert (image / 255).dtype == numpy.float32


def test_int_tensor_times_a_float_gives_the_right_sum_and_gradient():
    counts = numpy.array([[1, 2], [3, 4]], dtype=numpy.int64)
    weights = numpy.array([0.5, -1.0], dtype=numpy.float32)
    y = same_as_torch(lambda w: (w * (Tensor(counts) * 1.5)).sum(),
                      lambda w: (w * (__import__("torch").tensor(counts) * 1.5)).sum(), weights,
                      rtol=1e-6, atol=1e-6)
    assert y.item() == pytest.approx(1.5 * (0.5 * 4 - 1.0 * 6))
    assert (Tensor(counts) * 1.5).sum().item() == 15.0


def test_float32_tensor_with_float64_zero_d_tensor_keeps_float32_and_both_gradients():
    same_as_torch(lambda x, s: x * s, lambda x, s: x * s,
                  numpy.array([1.0, 2.0], dtype=numpy.float32), numpy.array(3.0),
                  rtol=1e-6, atol=1e-6)


def test_only_floating_tensors_can_require_grad():
    with pytest.raises(RuntimeError, match="only floating-point tensors can require gradients"):
        Tensor(numpy.array([1, 2]), requires_grad=True)
    t = Tensor(numpy.array([True, False]))
    with pytest.raises(RuntimeError, match="floating-point"):
        t.requires_grad = True
    assert not (Tensor(numpy.array([1, 2])) * leaf_of([1.0, 2.0]) > 0).requires_grad


def test_exp_log_sqrt_of_an_integer_tensor_are_float32():
    x = numpy.array([1, 4, 9])
    for name in ("exp", "log", "sqrt"):
        same_as_torch(lambda x: getattr(x, name)(), lambda x: getattr(x, name)(), x,
                      rtol=1e-6, atol=0)


# --- sqrt, abs, clamp ----------------------------------------------------------------------------
def test_sqrt_abs_clamp_gradcheck(rng):
    positive = leaf_of(0.5 + rng.random((3, 4)))
    assert minires.gradcheck(lambda x: x.sqrt(), [positive], **TOL)
    x = leaf_of(rng.standard_normal((3, 4)))
    assert minires.gradcheck(lambda x: abs(x), [x], **TOL)
    assert minires.gradcheck(lambda x: x.clamp(-0.5, 0.7), [x], **TOL)
    assert minires.gradcheck(lambda x: x.clamp(min=0.1), [x], **TOL)
    assert minires.gradcheck(lambda x: x.clip(max=0.1), [x], **TOL)


def test_sqrt_abs_clamp_match_torch_at_the_kinks():
    x = numpy.array([-2.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    same_as_torch(lambda x: x.abs(), lambda x: x.abs(), x)
    same_as_torch(lambda x: abs(x), lambda x: abs(x), x)
    same_as_torch(lambda x: x.clamp(-0.5, 1.0), lambda x: x.clamp(-0.5, 1.0), x)   # at both bounds
    same_as_torch(lambda x: x.clamp(min=0.0), lambda x: x.clamp(min=0.0), x)
    same_as_torch(lambda x: x.clamp(max=0.5), lambda x: x.clamp(max=0.5), x)
    with numpy.errstate(divide="ignore"):
        same_as_torch(lambda x: x.sqrt(), lambda x: x.sqrt(), numpy.array([0.0, 0.25, 4.0]))


def test_clamp_keeps_or_promotes_the_dtype_as_torch():
    ints = numpy.array([-3, 0, 5])
    same_as_torch(lambda x: x.clamp(0, 2), lambda x: x.clamp(0, 2), ints)
    same_as_torch(lambda x: x.clamp(min=1.5), lambda x: x.clamp(min=1.5), ints)
    same_as_torch(lambda x: x.clamp(0, 1), lambda x: x.clamp(0, 1),
                  numpy.array([-1.0, 0.5, 2.0], dtype=numpy.float32))


def test_clamp_refuses_missing_or_tensor_bounds():
    x = Tensor(numpy.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="give min, max or both"):
        x.clamp()
    with pytest.raises(TypeError, match="numbers"):
        x.clamp(min=Tensor(numpy.array(0.0)))


# --- issue 17: log1p and square -----------------------------------------------------------------

def test_log1p_and_square_gradcheck_and_match_torch(rng):
    assert minires.gradcheck(lambda x: x.log1p(), [leaf(rng, 3, 2, low=-0.5)], **TOL)
    assert minires.gradcheck(lambda x: x.square(), [leaf(rng, 3, 2)], **TOL)
    pytest.importorskip("torch")
    same_as_torch(lambda x: x.log1p(), lambda x: x.log1p(), rng.random(5) * 1e-9 + rng.random(5))
    same_as_torch(lambda x: x.square(), lambda x: x.square(), rng.standard_normal((2, 3)))
    same_as_torch(lambda x: x.square(), lambda x: x.square(), numpy.array([1, -2, 3]))
