"""What every check compares with: central differences and reference arrays, element by element.

The differences are computed here, not by the learner's ``minires.gradcheck`` (itself an
exercise), so that a broken tree cannot vouch for itself. As ``minires.gradcheck``: float64,
a random upstream gradient gy (a seed of ones hides some errors), and for every element of
every input

    analytic:  d(sum(y * gy))/dx  from the learner's backward
    numeric:   (sum(f(x + eps) * gy) - sum(f(x - eps) * gy)) / (2 eps)

A failure is one line naming the input and its worst element.
"""
import numpy

import minires

SKIPPED_WITHOUT_TORCH = "skipped: PyTorch is not installed"


class Wrong(AssertionError):
    """A check failed; the message says what is wrong, in one line."""


def optional_torch():
    """PyTorch, the oracle of the parity checks, or None where it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_functional():
    """``torch.nn.functional``, for the parity checks (called only where PyTorch is installed)."""
    import torch.nn.functional
    return torch.nn.functional


def host(value):
    """A NumPy array of a Tensor, an array or a number."""
    return numpy.asarray(value.data if isinstance(value, minires.Tensor) else value)


def index_text(index):
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def assert_close(what, got, expected, atol=1e-9, rtol=1e-7):
    """Raise Wrong naming the worst element of ``got`` that differs from ``expected``."""
    got, expected = host(got), numpy.asarray(expected)
    if got.shape != expected.shape:
        raise Wrong(f"{what} has shape {got.shape}, expected {expected.shape}")
    error = numpy.asarray(numpy.abs(got - expected) - (atol + rtol * numpy.abs(expected)), dtype=float)
    error[numpy.isnan(got) != numpy.isnan(expected)] = numpy.inf
    error[numpy.isnan(got) & numpy.isnan(expected)] = -1.0
    if error.size and error.max() > 0:
        worst = numpy.unravel_index(numpy.argmax(error), error.shape)
        raise Wrong(f"{what} at {index_text(worst)}: got {got[worst]:.8g}, expected {expected[worst]:.8g} "
                    f"({int((error > 0).sum())} of {error.size} elements differ)")


def each_case(cases, check):
    """``check(*case)`` for every case; a failure's message starts with the case's first item."""
    for case in cases:
        try:
            check(*case)
        except Wrong as error:
            raise Wrong(f"{case[0]}: {error}") from None


def check_gradients(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0):
    """Compare the learner's backward with central differences for every element of every input.

    Args:
        fn: a function of Tensors, called with keywords (``fn(x=..., weight=...)``).
        inputs: {name: float64 array}; each becomes a leaf that requires a gradient.
    Returns:
        {name: the analytic gradient}, and gy, the upstream gradient drawn.
    """
    leaves = {name: minires.Tensor(value.copy(), requires_grad=True) for name, value in inputs.items()}
    y = fn(**leaves)
    gy = numpy.random.default_rng(seed).standard_normal(y.shape)
    y.backward(gy)

    def weighted_output(values):
        with minires.no_grad():
            return float((host(fn(**{n: minires.Tensor(v) for n, v in values.items()})) * gy).sum())

    gradients = {}
    for name, value in inputs.items():
        if leaves[name].grad is None:
            raise Wrong(f"no gradient reached {name} {value.shape}")
        analytic = host(leaves[name].grad)
        if analytic.shape != value.shape:
            raise Wrong(f"the gradient of {name} has shape {analytic.shape}, expected {value.shape}")
        numeric = numpy.zeros(value.shape)
        for index in numpy.ndindex(*value.shape):
            for sign in (+1, -1):
                shifted = dict(inputs, **{name: value.copy()})
                shifted[name][index] += sign * eps
                numeric[index] += sign * weighted_output(shifted) / (2 * eps)
        error = numpy.abs(analytic - numeric) - (atol + rtol * numpy.abs(numeric))
        error[numpy.isnan(analytic)] = numpy.inf
        if error.size and error.max() > 0:
            worst = numpy.unravel_index(numpy.argmax(error), error.shape)
            raise Wrong(f"gradient of {name} {value.shape} at {index_text(worst)}: analytic "
                        f"{analytic[worst]:.8g}, numeric {numeric[worst]:.8g} "
                        f"({int((error > 0).sum())} of {error.size} elements out of tolerance)")
        gradients[name] = analytic
    return gradients, gy


def gradients_of(fn, inputs, gy):
    """{name: the learner's gradient} of sum(fn(**inputs) * gy), by one backward."""
    leaves = {name: minires.Tensor(value.copy(), requires_grad=True) for name, value in inputs.items()}
    fn(**leaves).backward(gy)
    return {name: host(leaf.grad) if leaf.grad is not None else None for name, leaf in leaves.items()}


def torch_gradients(torch, fn, inputs, gy):
    """(y, {name: gradient}) of sum(fn(**inputs) * gy) in PyTorch, float64, as NumPy arrays."""
    leaves = {name: torch.tensor(value, dtype=torch.float64, requires_grad=True)
              for name, value in inputs.items()}
    y = fn(**leaves)
    y.backward(torch.tensor(gy, dtype=torch.float64))
    return y.detach().numpy(), {name: leaf.grad.numpy() for name, leaf in leaves.items()}


def assert_torch_parity(fn, torch_fn, inputs, seed=1):
    """The learner's gradients against PyTorch's for the same inputs and gy."""
    torch = optional_torch()
    if torch is None:
        return SKIPPED_WITHOUT_TORCH
    with minires.no_grad():
        y = host(fn(**{name: minires.Tensor(value) for name, value in inputs.items()}))
    gy = numpy.random.default_rng(seed).standard_normal(y.shape)
    torch_y, expected = torch_gradients(torch, torch_fn, inputs, gy)
    assert_close("output against PyTorch", y, torch_y)
    got = gradients_of(fn, inputs, gy)
    for name in inputs:
        if got[name] is None:
            raise Wrong(f"no gradient reached {name}")
        assert_close(f"gradient of {name} against PyTorch", got[name], expected[name])
    return None
