"""A finite-difference gradient checker.

For a function f of tensors x_1..x_k with output y, it draws a random upstream
gradient gy (a seed of ones hides some errors) and compares, for every element
of every input that requires a gradient,

    analytic:  d(sum(y * gy))/dx  from backward()
    numeric:   (sum(f(x + eps) * gy) - sum(f(x - eps) * gy)) / (2 eps)

Use float64 inputs: in float32 the numeric side is too noisy to trust.
"""
import numpy

from minires import backend
from minires.autograd import Tensor, no_grad


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check the gradients of ``fn(*inputs)`` against central differences.

    Args:
        fn: a function of Tensors returning one Tensor.
        inputs: a list of Tensors; those with ``requires_grad`` are checked.
        eps: the finite-difference step.
        atol, rtol: pass when |analytic - numeric| <= atol + rtol * |numeric| everywhere.
        seed: for the random upstream gradient.
    Returns:
        True.
    Raises:
        GradcheckError naming the worst element (input, index, both values).
    """
    if not callable(fn):
        raise TypeError(f"gradcheck: fn must be a function of Tensors, got {type(fn).__name__}")
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"gradcheck: inputs must be a list of Tensors, got {type(inputs).__name__}")
    for position, analytic, numeric in compare_gradients(fn, inputs, eps, seed):
        error = numpy.abs(analytic - numeric) - (atol + rtol * numpy.abs(numeric))
        if error.size and error.max() > 0:
            worst = numpy.unravel_index(numpy.argmax(error), error.shape)
            raise GradcheckError(
                f"gradcheck: input {position} {tuple(analytic.shape)} at {tuple(int(i) for i in worst)}: "
                f"analytic {analytic[worst]:.8g}, numeric {numeric[worst]:.8g} "
                f"({int((error > 0).sum())} of {error.size} elements out of tolerance)")
    return True


def compare_gradients(fn, inputs, eps=1e-6, seed=0):
    """The analytic and numeric gradients of every input that requires one.

    Returns:
        a list of (position in ``inputs``, analytic, numeric), the two gradients as host arrays of
        the input's shape.
    """
    checked = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires a gradient")
    for x in checked:
        x.grad = None
    y = fn(*inputs)
    rng = numpy.random.default_rng(seed)
    gy = backend.to_device(rng.standard_normal(y.shape), dtype=y.dtype)
    y.backward(gy)

    def weighted_output():
        with no_grad():
            return float((backend.to_host(fn(*inputs).data) * backend.to_host(gy)).sum())

    gradients = []
    for position, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        analytic = backend.to_host(x.grad) if x.grad is not None else numpy.zeros(x.shape)
        numeric = numpy.zeros(x.shape)
        original = backend.to_host(x.data).copy()
        for index in numpy.ndindex(*x.shape):
            for sign in (+1, -1):
                shifted = original.copy()
                shifted[index] += sign * eps
                x.data[...] = backend.to_device(shifted, dtype=x.dtype)
                numeric[index] += sign * weighted_output() / (2 * eps)
            x.data[...] = backend.to_device(original, dtype=x.dtype)
        gradients.append((position, analytic, numeric))
    return gradients
