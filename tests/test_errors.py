"""minires.errors: shape mismatches are caught as PyTorch code catches them (issue 17, idiom 7).

PyTorch raises RuntimeError where shapes do not fit; minires raises ShapeError, both a
ValueError and a RuntimeError, with its own message.
"""
import numpy
import pytest

import minires
import minires.functional
from minires import ShapeError, Tensor

# each case: (make(T, F) with T a tensor constructor and F the functional module, minires's message)
MISMATCHES = {
    "matmul": (lambda T, F: T(numpy.ones((2, 3))) @ T(numpy.ones((4, 5))), "cannot be multiplied"),
    "matmul of a 0-d tensor": (lambda T, F: T(numpy.ones(3)) @ T(numpy.float64(2.0)),
                               "at least one dimension"),
    "linear": (lambda T, F: F.linear(T(numpy.ones((2, 3))), T(numpy.ones((4, 5)))), "Linear"),
    "reshape": (lambda T, F: T(numpy.ones((2, 3))).reshape(4, 2), "size 6"),
    "view": (lambda T, F: T(numpy.ones((2, 3))).view(4, -1), "size 6"),
    "permute twice the same": (lambda T, F: T(numpy.ones((2, 3))).permute(0, 0), "permutation"),
    "permute too few": (lambda T, F: T(numpy.ones((2, 3, 4))).permute(1, 0), "permutation"),
    "conv kernel larger than its padded input": (
        lambda T, F: F.conv2d(T(numpy.ones((1, 1, 2, 2))), T(numpy.ones((1, 1, 5, 5))), padding=1),
        "too small"),
    "pooling kernel larger than its input": (
        lambda T, F: F.max_pool2d(T(numpy.ones((1, 1, 2, 2))), 3), "too small"),
    "conv channels": (lambda T, F: F.conv2d(T(numpy.ones((1, 4, 2, 2))), T(numpy.ones((2, 3, 1, 1)))),
                      "expected input"),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_shape_mismatches_are_runtime_and_value_errors(case):
    make, message = MISMATCHES[case]
    with pytest.raises(RuntimeError, match=message) as caught:     # as PyTorch code catches it
        make(Tensor, minires.functional)
    assert isinstance(caught.value, ValueError) and type(caught.value) is ShapeError


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_torch_raises_runtime_error_for_the_same_mismatches(case):
    """The oracle: each case above is a RuntimeError in PyTorch too."""
    torch = pytest.importorskip("torch")
    make, _ = MISMATCHES[case]
    with pytest.raises(RuntimeError):
        make(torch.tensor, torch.nn.functional)
