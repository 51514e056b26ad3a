"""Inputs for ``minires.gradcheck``: float64 leaves on tiny shapes, and the tolerances.

All checks run in float64 with a random upstream gradient (``minires.gradcheck`` draws one),
on tiny shapes: gradcheck runs two forwards per input element.
"""
import numpy

from minires import Tensor

TOL = dict(eps=1e-6, atol=1e-6, rtol=1e-4)


def leaf(rng, *shape, low=None):
    """A float64 leaf that requires a gradient; ``low`` shifts values into (low, low + 1)."""
    values = rng.standard_normal(shape) if low is None else low + rng.random(shape)
    return Tensor(numpy.asarray(values, dtype=numpy.float64), requires_grad=True)


def distinct(rng, *shape):
    """float64 values without ties (a shuffled ramp), so every max has a unique winner."""
    values = rng.permutation(int(numpy.prod(shape))).reshape(shape) / 10.0 - 3.0
    return Tensor(values.astype(numpy.float64), requires_grad=True)
