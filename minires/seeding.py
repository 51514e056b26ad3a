"""The seed of parameter initialisation: one host random generator.

Initial weights are drawn on the host with NumPy and then moved to the active
backend, so a seed gives the same model on every backend.

    minires.manual_seed(0)
"""
import numpy


class _InitGenerator:
    generator = numpy.random.default_rng()


_init = _InitGenerator()


def manual_seed(seed):
    """Seed the generator that initialises parameters."""
    _init.generator = numpy.random.default_rng(seed)


def init_generator():
    """The ``numpy.random.Generator`` used for initialisation."""
    return _init.generator
