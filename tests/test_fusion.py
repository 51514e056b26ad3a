"""backend.fuse and its off switch, and the strict stand-in's fuse: one launch, CuPy's fast-path rules.

Each rule of ``minires/testing/strict_fusion.py`` has a test that breaks it and checks the
one-sentence refusal; the constructs the rules allow are shown to pass and to count as one
launch. That minires's own fused functions pass is tested in test_fused_functions.py.
"""
import os
import subprocess
import sys

import numpy
import pytest

from minires import backend
from minires.testing import strict_device
from minires.testing.strict_fusion import FusionRefused


@pytest.fixture
def device():
    with strict_device.installed() as xp:
        yield xp


def xp():
    return backend.get_array_module()


def arrays(*shapes):
    rng = numpy.random.default_rng(0)
    return [strict_device.asarray(rng.standard_normal(shape)) for shape in shapes]


@backend.fuse
def centre_and_scale(x, mean, scale, shift):
    y = x - mean
    y *= scale
    y += shift
    return y


@backend.fuse
def squared_deviation_sums(x, mean):
    return xp().sum(xp().square(x - mean), 0) * 0.5


def test_fuse_is_the_plain_function_on_numpy():
    x, mean = numpy.arange(6.0).reshape(3, 2), numpy.array([1.0, 2.0])
    numpy.testing.assert_array_equal(centre_and_scale(x, mean, 2.0, 1.0), (x - mean) * 2.0 + 1.0)
    numpy.testing.assert_array_equal(squared_deviation_sums(x, mean),
                                     ((x - mean) ** 2).sum(axis=0) * 0.5)


def test_a_fused_function_is_one_launch_and_unfused_one_per_operation(device):
    x, mean = arrays((4, 3), (3,))
    with strict_device.counting() as fused:
        y = centre_and_scale(x, mean, 2.0, 1.0)
        s = squared_deviation_sums(x, mean)
    previous = backend.set_fusion(False)
    try:
        assert not backend.fusion_enabled()
        with strict_device.counting() as unfused:
            y_unfused = centre_and_scale(x, mean, 2.0, 1.0)
            s_unfused = squared_deviation_sums(x, mean)
    finally:
        backend.set_fusion(previous)
    assert fused.launches == 2 and fused.by_op["fuse(centre_and_scale)"] == 1
    assert unfused.launches == 3 + 4            # sub, imul, iadd; sub, square, sum, mul
    numpy.testing.assert_array_equal(strict_device.asnumpy(y), strict_device.asnumpy(y_unfused))
    numpy.testing.assert_array_equal(strict_device.asnumpy(s), strict_device.asnumpy(s_unfused))


@pytest.mark.slow
def test_minires_fusion_0_turns_fusion_off_at_import():
    code = "from minires import backend; print(backend.fusion_enabled())"
    for value, expected in (("0", "False"), ("1", "True")):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env={**os.environ, "MINIRES_FUSION": value}, check=True)
        assert result.stdout.strip() == expected


def test_the_allowed_constructs_pass(device):
    """Operators, in-place operators, ufuncs with out=, where, astype, copy, x[...] = v,
    one reduction with an int or tuple axis followed by work with numbers, a tuple returned."""
    @backend.fuse
    def elementwise(x, y, out):
        z = xp().maximum(x, 0.0) * y - (x > y) + abs_free(x) ** 2
        xp().exp(z, out=out)
        out += xp().where(x > 0, x, -x).astype(numpy.float32).copy()
        out[...] = out / 2
        return z, -z

    @backend.fuse
    def reduction(x):
        return xp().amax(x * 2, (0, 1)) + 1.0

    def abs_free(x):
        return x * x
    x, y, out = arrays((2, 3), (2, 3), (2, 3))
    with strict_device.counting() as counts:
        z, minus_z = elementwise(x, y, out)
        reduction(arrays((2, 3, 4))[0])
    assert counts.launches == 2
    numpy.testing.assert_array_equal(strict_device.asnumpy(minus_z), -strict_device.asnumpy(z))


def refusal(function, *args):
    with pytest.raises(FusionRefused) as caught:
        backend.fuse(function)(*args)
    message = str(caught.value)
    assert message.startswith(f"fuse({function.__name__}): ") and "\n" not in message
    return message


def test_rule_1_only_the_functions_arguments_and_numbers(device):
    captured = arrays((3,))[0]

    def uses_a_captured_array(x):
        return x + captured
    assert "got a ndarray" in refusal(uses_a_captured_array, *arrays((3,)))

    def indexes(x):
        x[0:2] = 1.0
    assert "only x[...] = v" in refusal(indexes, *arrays((3,)))


def test_rule_1_no_arithmetic_on_numbers_alone(device):
    """CuPy's fusion computes 1 - momentum in float16 when both are Python numbers."""
    def decays_inside(x, momentum):
        x *= 1 - momentum
    assert "of numbers alone" in refusal(decays_inside, *arrays((3,)), 0.1)

    def scales_inside(x, lr, t):
        return x * (lr / t)
    assert "of numbers alone" in refusal(scales_inside, *arrays((3,)), 0.1, 2)


def test_rule_2_one_reduction_with_an_int_or_tuple_axis(device):
    def two_reductions(x):
        return xp().sum(xp().amax(x, 1), 0)
    assert "a second reduction" in refusal(two_reductions, *arrays((2, 3)))

    def keepdims(x):
        return xp().sum(x, 0, keepdims=True)
    assert "keepdims" in refusal(keepdims, *arrays((2, 3)))

    def whole_array(x):
        return xp().sum(x)
    assert "int or tuple axis" in refusal(whole_array, *arrays((2, 3)))

    def axis_from_an_argument(x, axis):
        return xp().sum(x, axis)
    assert "int or tuple axis" in refusal(axis_from_an_argument, *arrays((2, 3)), 0)


def test_rule_3_after_the_reduction_only_its_result_and_numbers(device):
    def divides_by_an_argument(x, count):
        return xp().sum(x, 0) / count
    assert "combines the reduction's result" in refusal(divides_by_an_argument, *arrays((2, 3)), 2.0)

    def mixes_in_a_premap_value(x):
        return xp().sum(x, 0) + x
    assert "combines the reduction's result" in refusal(mixes_in_a_premap_value, *arrays((2, 3)))


def test_rule_4_a_reduction_returns_its_result_and_writes_nothing(device):
    def writes_an_argument(x, out):
        out += x
        return xp().sum(x, 0)
    assert "write into no argument" in refusal(writes_an_argument, *arrays((2, 3), (2, 3)))

    def returns_two(x):
        return xp().sum(x, 0), x
    assert "return its result alone" in refusal(returns_two, *arrays((2, 3)))


@pytest.mark.parametrize("body, expected", [
    (lambda x: xp().mean(x, 0), "mean() is not on CuPy's fast path"),
    (lambda x: xp().var(x, 0), "var() is not on CuPy's fast path"),
    (lambda x: x.sum(0), "x.sum is not available"),
    (lambda x: x.reshape(6), "x.reshape is not available"),
    (lambda x: x.shape, "x.shape is not available"),
    (lambda x: x.T, "x.T is not available"),
    (lambda x: x @ x, "matmul (@)"),
    (lambda x: xp().matmul(x, x), "matmul() is neither"),
    (lambda x: xp().einsum("ij,ij->j", x, x), "einsum() is neither"),
    (lambda x: x * xp().ones(3), "ones() is neither"),
    (lambda x: xp().exp(x, dtype=numpy.float32), "only out= is on the fast path"),
    (lambda x: x[0], "indexing"),
    (lambda x: x if x else -x, "the truth value"),
    (lambda x: float(x), "a Python number"),
])
def test_rule_5_nothing_else(device, body, expected):
    def function(x):
        return body(x)
    assert expected in refusal(function, *arrays((2, 3)))


def test_rule_6_no_captured_number(device):
    eps = 1e-5

    def captures_eps(x):
        return x + eps
    assert "captures the number 1e-05" in refusal(captures_eps, *arrays((3,)))


def test_rule_7_returns_arrays_only(device):
    def returns_a_number(x):
        return 1.0
    assert "returns float" in refusal(returns_a_number, *arrays((3,)))

    def takes_a_list(x, values):
        return x
    assert "argument 1 is a list" in refusal(takes_a_list, *arrays((3,)), [1.0])


def test_outputs_have_the_arguments_common_shape(device):
    """CuPy broadcasts every output of an element-wise kernel to the common shape (cupy#8198)."""
    def per_channel_result(x, mean):
        return mean * 2.0
    assert "common shape (2, 3)" in refusal(per_channel_result, *arrays((2, 3), (3,)))


def test_the_fallback_of_real_cupy_is_not_silent(monkeypatch):
    """If cupy.fuse falls back to its slow path (it sets new_fusion), the call warns."""
    class SlowKernel:
        new_fusion = object()

        def __init__(self, function):
            self.function = function

        def __call__(self, *args):
            return self.function(*args)

    class FakeCupy:
        __name__ = "fake_cupy"
        fuse = SlowKernel
    monkeypatch.setattr(backend._active, "xp", FakeCupy())
    with pytest.warns(RuntimeWarning, match="left CuPy's fast fusion path"):
        assert backend.fuse(lambda x: x + 1)(1) == 2
