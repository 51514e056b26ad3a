"""The host random generator behind parameter initialisation.

Initial weights are drawn on the host with NumPy and then moved to the active
backend, so a seed gives the same model on every backend.

    minires.manual_seed(0)
"""
import numpy


class _HostRandom:
    generator = numpy.random.default_rng()


_host = _HostRandom()


def manual_seed(seed):
    """Seed the generator that initialises parameters."""
    _host.generator = numpy.random.default_rng(seed)


def host_generator():
    """The ``numpy.random.Generator`` used for initialisation."""
    return _host.generator
