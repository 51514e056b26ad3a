"""minires.backend: choosing NumPy or CuPy, and the advice when CuPy or a GPU is missing.

The CuPy code paths themselves are proven without a GPU in test_cupy_backend.py.
"""
import sys

import numpy
import pytest

import minires
from minires import backend


def test_unknown_backend():
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'.*numpy.*cupy"):
        minires.set_backend("tpu")
    assert minires.get_backend() == "numpy"


def test_cupy_without_a_usable_gpu_is_explained():
    if backend.cupy_problem() is None:
        pytest.skip("a usable GPU is present")
    with pytest.raises(Exception) as caught:
        minires.set_backend("cupy")
    assert type(caught.value) is RuntimeError          # not ImportError or a CUDA error type
    message = str(caught.value)
    assert "--backend numpy" in message
    assert "Traceback" not in message and "\n" not in message
    assert minires.get_backend() == "numpy"


def test_set_backend_cupy_without_a_usable_gpu_says_what_is_missing():
    cupy = pytest.importorskip("cupy")
    if cupy.is_available():
        pytest.skip("a usable CUDA device is present")
    with pytest.raises(RuntimeError) as error:
        minires.set_backend("cupy")
    message = str(error.value)
    assert "no CUDA device is usable" in message and "--backend numpy" in message, message
    assert minires.get_backend() == "numpy" and backend.get_array_module() is numpy


def test_set_backend_cupy_without_cupy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)      # makes `import cupy` raise ImportError
    with pytest.raises(RuntimeError) as error:
        minires.set_backend("cupy")
    message = str(error.value)
    assert 'pip install -e ".[cuda]"' in message and "--backend numpy" in message, message
    assert minires.get_backend() == "numpy"
