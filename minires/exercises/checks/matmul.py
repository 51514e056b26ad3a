"""Checks of chapter 3: ``MatMul.backward`` and ``Linear.backward``."""
import numpy

import minires.functional as F
from minires.functional.linear import matmul

from .compare import (
    assert_close,
    assert_torch_parity,
    check_gradients,
    each_case,
    gradients_of,
    torch_functional,
)

MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((4,), (4, 5)),
                 ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3))]


def matmul_gradcheck():
    rng = numpy.random.default_rng(20)
    each_case([(f"a {a} @ b {b}", a, b) for a, b in MATMUL_SHAPES],
               lambda what, a, b: check_gradients(matmul,
                                                  {"a": rng.standard_normal(a), "b": rng.standard_normal(b)}))


def matmul_against_numpy():
    rng = numpy.random.default_rng(21)
    a, b = rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((3, 4, 2))
    gy = rng.standard_normal((2, 3, 3, 2))
    got = gradients_of(matmul, {"a": a, "b": b}, gy)
    # dA = dY B^T, dB = A^T dY, summed over the batch dimensions that broadcast
    assert_close("gradient of a (2, 1, 3, 4)", got["a"],
                 (gy @ b.swapaxes(-1, -2)).sum(axis=1, keepdims=True))
    assert_close("gradient of b (3, 4, 2)", got["b"], (a.swapaxes(-1, -2) @ gy).sum(axis=0))


def matmul_against_torch():
    rng = numpy.random.default_rng(22)
    for a, b in [((2, 1, 3, 4), (3, 4, 2)), ((4,), (2, 4, 3))]:
        inputs = {"a": rng.standard_normal(a), "b": rng.standard_normal(b)}
        skipped = assert_torch_parity(lambda a, b: a @ b, lambda a, b: a @ b, inputs)
    return skipped


def linear_gradcheck():
    rng = numpy.random.default_rng(23)
    cases = [("x (4, 3), W (2, 3), b (2,)", (4, 3), True), ("x (4, 3), W (2, 3), no bias", (4, 3), False),
             ("x (2, 3, 3), W (2, 3), b (2,)", (2, 3, 3), True)]

    def check(what, x_shape, with_bias):
        inputs = {"input": rng.standard_normal(x_shape), "weight": rng.standard_normal((2, 3))}
        if with_bias:
            inputs["bias"] = rng.standard_normal(2)
        check_gradients(F.linear, inputs)
    each_case(cases, check)


def linear_against_numpy():
    rng = numpy.random.default_rng(24)
    x, W, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    gy = rng.standard_normal((2, 3, 5))
    got = gradients_of(F.linear, {"input": x, "weight": W, "bias": b}, gy)
    assert_close("gradient of input (2, 3, 4)", got["input"], gy @ W)
    assert_close("gradient of weight (5, 4)", got["weight"], gy.reshape(6, 5).T @ x.reshape(6, 4))
    assert_close("gradient of bias (5,)", got["bias"], gy.sum(axis=(0, 1)))


def linear_against_torch():
    rng = numpy.random.default_rng(25)
    inputs = {"input": rng.standard_normal((2, 3, 4)), "weight": rng.standard_normal((5, 4)),
              "bias": rng.standard_normal(5)}
    return assert_torch_parity(F.linear, lambda **inputs: torch_functional().linear(**inputs), inputs)


CHECKS = {
    "MatMul.backward": [
        (f"gradcheck of {len(MATMUL_SHAPES)} shape pairs (batches, broadcasting, 1-D)", matmul_gradcheck),
        ("dA = dY B^T, dB = A^T dY, NumPy, broadcast batch", matmul_against_numpy),
        ("PyTorch", matmul_against_torch),
    ],
    "Linear.backward": [
        ("gradcheck with a bias, without, and a 3-D input", linear_gradcheck),
        ("gx = gy W, gW = gy^T x, gb = sum(gy), NumPy", linear_against_numpy),
        ("PyTorch", linear_against_torch),
    ],
}
