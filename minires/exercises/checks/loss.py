"""Checks of chapter 7: ``LogSoftmax.backward`` and ``CrossEntropy.backward``.

N batch, K classes; p = softmax(x), q the target distribution (one-hot by default).
"""
import numpy

import minires.functional as F

from .compare import (
    assert_close,
    assert_torch_parity,
    check_gradients,
    each_case,
    gradients_of,
    torch_functional,
)

LOG_SOFTMAX_CASES = [("(3, 5) along dim -1", (3, 5), -1), ("(4, 3) along dim 0", (4, 3), 0),
                     ("(2, 3, 4) along dim 1", (2, 3, 4), 1)]
TARGET = numpy.array([1, 0, 3, 3, 2])           # N = 5 examples of K = 4 classes
IGNORED = numpy.array([1, -100, 3, 3, -100])    # two rows ignored
WEIGHT = numpy.array([0.5, 2.0, 1.0, 1.5])
# (what, target, keyword arguments of cross_entropy)
CROSS_ENTROPY_CASES = [
    ("reduction='mean'", TARGET, {}),
    ("reduction='sum'", TARGET, {"reduction": "sum"}),
    ("reduction='none'", TARGET, {"reduction": "none"}),
    ("class weights", TARGET, {"weight": WEIGHT}),
    ("label_smoothing=0.1", TARGET, {"label_smoothing": 0.1}),
    ("ignore_index", IGNORED, {}),
    ("weights, label smoothing and ignore_index", IGNORED, {"weight": WEIGHT, "label_smoothing": 0.2}),
]


def softmax(x, axis):
    e = numpy.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(dim):
    return lambda input: F.log_softmax(input, dim)


def torch_log_softmax(dim):
    return lambda input: torch_functional().log_softmax(input, dim)


def log_softmax_gradcheck():
    rng = numpy.random.default_rng(60)
    each_case(LOG_SOFTMAX_CASES, lambda what, shape, dim: check_gradients(
        log_softmax(dim), {"input": rng.standard_normal(shape)}))


def log_softmax_against_numpy():
    rng = numpy.random.default_rng(61)

    def check(what, shape, dim):
        x, gy = 5 * rng.standard_normal(shape), rng.standard_normal(shape)
        got = gradients_of(log_softmax(dim), {"input": x}, gy)["input"]
        # gx = gy - softmax(x) * sum(gy) along dim
        assert_close(f"gradient of input {shape}", got,
                     gy - softmax(x, dim) * gy.sum(axis=dim, keepdims=True))
    each_case(LOG_SOFTMAX_CASES, check)


def log_softmax_against_torch():
    rng = numpy.random.default_rng(62)
    for _, shape, dim in LOG_SOFTMAX_CASES:
        skipped = assert_torch_parity(log_softmax(dim), torch_log_softmax(dim),
                                      {"input": rng.standard_normal(shape)})
    return skipped


def cross_entropy(target, options):
    return lambda input: F.cross_entropy(input, target, **options)


def torch_cross_entropy(target, options):
    def loss(input):
        import torch
        weight = options.get("weight")
        return torch_functional().cross_entropy(
            input, torch.tensor(target), None if weight is None else torch.tensor(weight),
            **{key: value for key, value in options.items() if key != "weight"})
    return loss


def cross_entropy_gradcheck():
    rng = numpy.random.default_rng(63)
    each_case(CROSS_ENTROPY_CASES, lambda what, target, options: check_gradients(
        cross_entropy(target, options), {"input": rng.standard_normal((5, 4))}))


def cross_entropy_against_numpy():
    rng = numpy.random.default_rng(64)
    x = 3 * rng.standard_normal((5, 4))
    p_minus_one_hot = softmax(x, 1) - numpy.eye(4)[TARGET]
    got = gradients_of(cross_entropy(TARGET, {}), {"input": x}, numpy.array(0.7))["input"]
    assert_close("gradient of input (5, 4), reduction 'mean': 0.7 (p - one_hot) / N", got,
                 0.7 * p_minus_one_hot / 5)
    gy = rng.standard_normal(5)
    got = gradients_of(cross_entropy(TARGET, {"reduction": "none"}), {"input": x}, gy)["input"]
    assert_close("gradient of input (5, 4), reduction 'none': gy_n (p_n - one_hot_n)", got,
                 gy[:, None] * p_minus_one_hot)


def cross_entropy_against_torch():
    rng = numpy.random.default_rng(65)
    for _, target, options in CROSS_ENTROPY_CASES:
        skipped = assert_torch_parity(cross_entropy(target, options), torch_cross_entropy(target, options),
                                      {"input": rng.standard_normal((5, 4))})
    return skipped


CHECKS = {
    "LogSoftmax.backward": [
        (f"gradcheck, {len(LOG_SOFTMAX_CASES)} shapes and dims", log_softmax_gradcheck),
        ("gy - softmax * sum(gy) against NumPy", log_softmax_against_numpy),
        ("PyTorch", log_softmax_against_torch),
    ],
    "CrossEntropy.backward": [
        (f"gradcheck, {len(CROSS_ENTROPY_CASES)} cases (reductions, weights, smoothing, ignore_index)",
         cross_entropy_gradcheck),
        ("(p - one_hot) * gy against NumPy", cross_entropy_against_numpy),
        ("PyTorch", cross_entropy_against_torch),
    ],
}
