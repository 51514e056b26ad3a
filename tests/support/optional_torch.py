"""PyTorch, the oracle, if it is installed: tests that compare with it carry ``requires_torch``
and skip one by one without it (the rest of their file still runs)."""
import pytest

try:
    import torch
except ImportError:
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="needs PyTorch (pip install torch==2.13.0)")
