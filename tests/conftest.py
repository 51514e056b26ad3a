"""Shared fixtures: every test starts on the NumPy backend with seeded generators.

Helpers that are not fixtures live in ``tests/support/``.
"""
import numpy
import pytest

import minires
from tests.support import optional_torch


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


@pytest.fixture(scope="session")
def torch():
    """PyTorch, the oracle of the parity tests; a test that takes it is skipped without it."""
    return pytest.importorskip("torch")


@pytest.fixture
def device():
    """The strict stand-in device as the "cupy" backend for one test (minires.testing)."""
    from minires.testing import strict_device
    with strict_device.installed() as xp:
        yield xp


@pytest.fixture(scope="module")
def resnet():
    """A seeded ResNet50_layer4, shared by the tests of one file that only read it."""
    minires.manual_seed(0)
    return minires.models.ResNet50_layer4()


def pytest_collection_modifyitems(config, items):
    """Without PyTorch, skip the comparisons with it here, all at once."""
    if optional_torch.torch is not None:
        return
    for item in items:
        if optional_torch.reaches_torch(item):
            item.add_marker(pytest.mark.skip(reason=optional_torch.MISSING))


def pytest_report_collectionfinish(config, items):
    """Without PyTorch, one line at the start: how many of the tests to run are comparisons."""
    if optional_torch.torch is None:
        skipped = sum(any(marker.kwargs.get("reason") == optional_torch.MISSING
                          for marker in item.iter_markers("skip")) for item in items)
        return (f"{optional_torch.MISSING}: {skipped:,} of these {len(items):,} tests compare "
                "minires with it and are skipped.")
