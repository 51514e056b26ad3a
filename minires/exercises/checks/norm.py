"""Checks of chapter 6: ``BatchNorm2d.forward`` (training and evaluation) and ``BatchNorm2d.backward``.

N batch, C channels, H/W size, M = N*H*W values per channel. gamma, beta and gy are random:
a backward that used gy where it needed x_hat hides while gamma = 1.
"""
import numpy

import minires
import minires.functional as F

from .compare import (
    SKIPPED_WITHOUT_TORCH,
    Wrong,
    assert_close,
    assert_torch_parity,
    check_gradients,
    each_case,
    gradients_of,
    optional_torch,
    torch_functional,
)

EPS = 1e-5
SHAPES = [("an image batch (2, 3, 3, 4)", (2, 3, 3, 4)), ("BatchNorm1d's (5, 3)", (5, 3)),
          ("BatchNorm1d's (2, 3, 4)", (2, 3, 4))]


def _axes(shape):
    """The axes a channel's statistics run over: all but axis 1."""
    return (0,) + tuple(range(2, len(shape)))


def _per_channel(value, shape):
    return value.reshape((1, -1) + (1,) * (len(shape) - 2))


def reference_forward(x, gamma, beta, mean=None, var=None):
    """gamma * (x - mean) / sqrt(var + eps) + beta, with the batch's mean and biased variance by default."""
    axes = _axes(x.shape)
    if mean is None:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    x_hat = (x - _per_channel(mean, x.shape)) / numpy.sqrt(_per_channel(var, x.shape) + EPS)
    return _per_channel(gamma, x.shape) * x_hat + _per_channel(beta, x.shape)


def reference_backward(x, gamma, gy):
    """Training's three-term gradient, gx = gamma / std * (gy - mean(gy) - x_hat * mean(gy * x_hat))."""
    axes = _axes(x.shape)
    std = numpy.sqrt(_per_channel(x.var(axis=axes), x.shape) + EPS)
    x_hat = (x - _per_channel(x.mean(axis=axes), x.shape)) / std
    gx = _per_channel(gamma, x.shape) / std * (gy - gy.mean(axis=axes, keepdims=True)
                                               - x_hat * (gy * x_hat).mean(axis=axes, keepdims=True))
    return gx, (gy * x_hat).sum(axis=axes), gy.sum(axis=axes)


def _inputs(shape, seed, shift=0.0):
    rng = numpy.random.default_rng(seed)
    return {"input": shift + rng.standard_normal(shape), "weight": rng.standard_normal(shape[1]),
            "bias": rng.standard_normal(shape[1])}


def training(input, weight, bias):
    return F.batch_norm(input, None, None, weight, bias, training=True, eps=EPS)


def evaluation(running_mean, running_var):
    return lambda input, weight, bias: F.batch_norm(input, running_mean, running_var, weight, bias,
                                                    training=False, eps=EPS)


def channels_last(x):
    return numpy.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def forward_in_training():
    def check(what, shape):
        inputs = _inputs(shape, 50)
        expected = reference_forward(inputs["input"], inputs["weight"], inputs["bias"])
        memories = [("", inputs["input"])]
        if len(shape) == 4:
            memories.append((", channels-last memory", channels_last(inputs["input"])))
        for memory, x in memories:
            with minires.no_grad():
                y = training(minires.Tensor(x), minires.Tensor(inputs["weight"]),
                             minires.Tensor(inputs["bias"]))
            assert_close(f"output{memory}", y.data, expected)
    each_case(SHAPES, check)


def running_statistics():
    inputs = _inputs((4, 3, 2, 2), 51, shift=2.0)
    x = inputs["input"]
    running_mean, running_var = numpy.full(3, 0.5), numpy.full(3, 2.0)
    with minires.no_grad():
        F.batch_norm(minires.Tensor(x), running_mean, running_var, minires.Tensor(inputs["weight"]),
                     minires.Tensor(inputs["bias"]), training=True, momentum=0.1, eps=EPS)
    # the running variance moves towards the unbiased variance, as PyTorch's
    assert_close("running_mean after a training step", running_mean,
                 0.9 * 0.5 + 0.1 * x.mean(axis=(0, 2, 3)))
    assert_close("running_var after a training step", running_var,
                 0.9 * 2.0 + 0.1 * x.var(axis=(0, 2, 3), ddof=1))
    before = running_mean.copy(), running_var.copy()
    with minires.no_grad():
        y = evaluation(running_mean, running_var)(**{n: minires.Tensor(v) for n, v in inputs.items()})
    assert_close("output in evaluation", y.data,
                 reference_forward(x, inputs["weight"], inputs["bias"], *before))
    if not (numpy.array_equal(running_mean, before[0]) and numpy.array_equal(running_var, before[1])):
        raise Wrong("evaluation changed the running statistics")


def training_gradcheck():
    each_case(SHAPES[:2], lambda what, shape: check_gradients(training, _inputs(shape, 52)))
    try:
        check_gradients(training, _inputs((3, 2, 2, 2), 53, shift=30.0))
    except Wrong as error:
        raise Wrong(f"a mean of 30, far from 0: {error}") from None


def evaluation_gradcheck():
    rng = numpy.random.default_rng(54)
    fn = evaluation(rng.standard_normal(3), 0.5 + rng.random(3))
    check_gradients(fn, _inputs((2, 3, 2, 2), 55))


def backward_against_numpy():
    def check(what, shape):
        inputs = _inputs(shape, 56)
        gy = numpy.random.default_rng(57).standard_normal(shape)
        got = gradients_of(training, inputs, gy)
        expected = reference_backward(inputs["input"], inputs["weight"], gy)
        for (name, value), wanted in zip(inputs.items(), expected):
            if got[name] is None:
                raise Wrong(f"no gradient reached {name}")
            assert_close(f"gradient of {name} {value.shape}", got[name], wanted)
    each_case(SHAPES, check)


def against_torch():
    torch = optional_torch()
    if torch is None:
        return SKIPPED_WITHOUT_TORCH
    each_case(SHAPES, lambda what, shape: assert_torch_parity(training, torch_training, _inputs(shape, 58)))
    x = _inputs((4, 3, 2, 2), 59)["input"]
    ours = numpy.zeros(3), numpy.ones(3)
    theirs = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    with minires.no_grad():
        F.batch_norm(minires.Tensor(x), *ours, training=True, momentum=0.1, eps=EPS)
    torch_functional().batch_norm(torch.tensor(x), *theirs, training=True, momentum=0.1, eps=EPS)
    assert_close("running_mean against PyTorch", ours[0], theirs[0].numpy())
    assert_close("running_var against PyTorch", ours[1], theirs[1].numpy())
    return None


def torch_training(input, weight, bias):
    return torch_functional().batch_norm(input, None, None, weight, bias, training=True, eps=EPS)


CHECKS = {
    "BatchNorm2d.forward": [
        ("training output against NumPy (images, both memory layouts, BatchNorm1d)", forward_in_training),
        ("running statistics (unbiased variance), evaluation output", running_statistics),
        ("gradcheck in training (backward reads what forward kept)", training_gradcheck),
        ("PyTorch: output, gradients, running statistics", against_torch),
    ],
    "BatchNorm2d.backward": [
        ("gradcheck in training: input, gamma, beta (also a mean of 30)", training_gradcheck),
        ("gradcheck in evaluation", evaluation_gradcheck),
        ("the three-term gradient and ggamma, gbeta against NumPy", backward_against_numpy),
        ("PyTorch", against_torch),
    ],
}
