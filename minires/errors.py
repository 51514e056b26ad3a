"""The errors that PyTorch code and minires code both catch.

PyTorch raises RuntimeError where shapes do not fit (a matmul or reshape mismatch, a bad permute,
a kernel larger than its padded input) or a state dict does not fit its module, and IndexError for
a dimension out of range; minires's checks raise ValueError for every bad argument. Each error here
is both, so that a script's ``except RuntimeError`` and a caller's ``except ValueError`` catch it
alike:

    try:
        y = model(x)
    except RuntimeError as error:   # a ShapeError, with minires's message
        print(error)
"""


class ShapeError(ValueError, RuntimeError):
    """Shapes that do not fit the operation: a ValueError and a RuntimeError at once."""


class DimensionError(IndexError, ValueError):
    """A dimension out of range: an IndexError, as in PyTorch, and a ValueError."""


class StateDictError(RuntimeError, ValueError):
    """A state dict that does not fit the module: a RuntimeError, as PyTorch raises, and a
    ValueError."""
