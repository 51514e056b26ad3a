"""Checks of chapter 2: ``sum_to``, alone and inside the backward of broadcasting arithmetic."""
import numpy

from minires.functional.arithmetic import sum_to

from .compare import Wrong, assert_close, assert_torch_parity, check_gradients

CASES = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 1)), ((2, 3, 4), (1, 1, 1)),
         ((2, 3, 4), ()), ((2, 1, 4), (1, 1, 4)), ((5, 3), (5, 1)), ((2, 3, 4, 5), (3, 1, 5))]


def reference_sum_to(g, shape):
    """Sum the leading axes away, then every axis that is 1 in ``shape``, keeping it."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    for axis, n in enumerate(shape):
        if n == 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def against_numpy():
    rng = numpy.random.default_rng(10)
    for g_shape, shape in CASES:
        g = rng.standard_normal(g_shape)
        assert_close(f"sum_to(g {g_shape}, {shape})", sum_to(g.copy(), shape), reference_sum_to(g, shape))


def broadcasting_gradcheck():
    rng = numpy.random.default_rng(11)
    cases = [("a + b", lambda a, b: a + b, (3, 4), (4,)),
             ("a * b", lambda a, b: a * b, (2, 1, 3), (4, 3)),
             ("a - b", lambda a, b: a - b, (3, 1), (1, 4)),
             ("a / b", lambda a, b: a / b, (2, 3), (1,))]
    for what, fn, a_shape, b_shape in cases:
        inputs = {"a": rng.standard_normal(a_shape), "b": 2.0 + rng.random(b_shape)}
        try:
            check_gradients(fn, inputs)
        except Wrong as error:
            raise Wrong(f"{what} with a {a_shape}, b {b_shape}: {error}") from None


def against_torch():
    rng = numpy.random.default_rng(12)
    inputs = {"a": rng.standard_normal((2, 1, 3)), "b": rng.standard_normal((4, 3)),
              "c": rng.standard_normal((3,))}
    return assert_torch_parity(lambda a, b, c: a * b + c, lambda a, b, c: a * b + c, inputs)


CHECKS = {
    "sum_to": [
        (f"{len(CASES)} shapes against NumPy", against_numpy),
        ("gradcheck of +, *, -, / that broadcast", broadcasting_gradcheck),
        ("PyTorch: a (2, 1, 3) * b (4, 3) + c (3,)", against_torch),
    ],
}
