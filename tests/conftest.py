"""Shared fixtures: every test starts on the NumPy backend with seeded generators."""
import numpy
import pytest

import minires


@pytest.fixture(autouse=True)
def _numpy_backend_and_seed():
    """NumPy backend, seeded parameter initialisation, gradients on; restored afterwards."""
    minires.set_backend("numpy")
    minires.manual_seed(0)
    yield
    minires.set_backend("numpy")


@pytest.fixture
def rng():
    """A seeded NumPy generator for test data."""
    return numpy.random.default_rng(1234)
