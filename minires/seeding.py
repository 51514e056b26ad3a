"""The seed of parameter initialisation: one host random generator.

Initial weights are drawn on the host with NumPy and then moved to the active
backend, so a seed gives the same model on every backend.

    minires.manual_seed(0)
"""
import numbers

import numpy


class _InitGenerator:
    generator = numpy.random.default_rng()


_init = _InitGenerator()


def manual_seed(seed):
    """Seed the generator that initialises parameters; ``seed`` is an int >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"manual_seed: seed must be an int >= 0, got {seed}")
    _init.generator = numpy.random.default_rng(int(seed))


def init_generator():
    """The ``numpy.random.Generator`` used for initialisation."""
    return _init.generator
