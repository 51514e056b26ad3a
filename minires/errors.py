"""The error that PyTorch code and minires code both catch: shapes that do not fit.

PyTorch raises RuntimeError where shapes do not fit (a matmul or reshape
mismatch, a bad permute, a kernel larger than its padded input); minires's
checks raised ValueError there. ``ShapeError`` is both, so that a script's
``except RuntimeError`` and a caller's ``except ValueError`` catch it alike:

    try:
        y = model(x)
    except RuntimeError as error:   # a ShapeError, with minires's message
        print(error)
"""


class ShapeError(ValueError, RuntimeError):
    """Shapes that do not fit the operation: a ValueError and a RuntimeError at once."""
