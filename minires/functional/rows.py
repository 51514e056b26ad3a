"""Pixels as the rows of a matrix: the shape in which convolution and batch norm compute.

With channels-last memory (see ``windows.py``), the N*H*W pixels of a batch are
the rows of a plain (N*H*W, C) matrix: a 1x1 convolution is ``rows @ W.T`` and a
per-channel statistic is a column sum. ``to_rows`` is a free view for
channels-last memory (a copy otherwise); ``from_rows`` gives the NCHW-shaped view back.

N batch, C channels, H/W size, M = N*H*W rows.
"""
from minires import backend


def to_rows(x):
    """(N, C, H, W) -> (N*H*W, C): one row per pixel."""
    N, C, H, W = x.shape
    return x.transpose(0, 2, 3, 1).reshape(N * H * W, C)      # (N*H*W, C)


def from_rows(rows, N, H, W):
    """(N*H*W, C) -> (N, C, H, W), a view whose memory stays channels-last.

    C is spelled out rather than -1: an empty batch (N = 0) has no size to infer it from.
    """
    return rows.reshape(N, H, W, rows.shape[1]).transpose(0, 3, 1, 2)    # (N, C, H, W)


def column_sums(rows, out=None):
    """(M, C) -> (C,): rows.sum(axis=0), into ``out`` ((C,), contiguous) if given.

    On the CPU it is computed as ones(M) @ rows: a matrix-vector product runs in
    BLAS on every core, about 3x faster than NumPy's axis-0 reduction (0.09 ms
    against 0.27 ms for 6400 x 256). On a GPU the reduction is one kernel, the
    product two (it must make the ones first).
    """
    xp = backend.get_array_module()
    if backend.is_host():
        return xp.matmul(xp.ones(len(rows), dtype=rows.dtype), rows, out=out)   # (C,)
    return xp.sum(rows, axis=0, out=out)                      # (C,)


def column_means(rows):
    """(M, C) -> (C,): rows.mean(axis=0), by BLAS on the CPU as ``column_sums``."""
    xp = backend.get_array_module()
    if backend.is_host():
        return xp.full(len(rows), 1.0 / len(rows), dtype=rows.dtype) @ rows   # (C,)
    return rows.mean(axis=0)                                  # (C,)


def centred_square_sums(rows, mean):
    """(M, C), (C,) -> (C,): ((rows - mean) ** 2).sum(axis=0), the centring first (no cancellation).

    On the CPU the centred copy and ``einsum``; on a GPU one fused kernel that never
    writes the centred values.
    """
    if backend.is_host():
        centred = rows - mean                                 # (M, C)
        return backend.get_array_module().einsum("mc,mc->c", centred, centred)   # (C,)
    return _centred_square_sums(rows, mean)                   # (C,)


@backend.fuse
def _centred_square_sums(rows, mean):
    xp = backend.get_array_module()
    return xp.sum(xp.square(rows - mean), 0)                  # (C,)


def column_sums_and_dots(a, b):
    """(M, C), (M, C) -> (2, C): [a.sum(axis=0), (a * b).sum(axis=0)], with no (M, C) temporary.

    On the CPU by BLAS and ``einsum`` (which never forms a * b); on a GPU by one fused
    reduction over a (2, M, C) broadcast of a * [1, b]: one kernel, not two.
    """
    xp = backend.get_array_module()
    if backend.is_host():
        return xp.stack([column_sums(a), xp.einsum("mc,mc->c", a, b)])   # (2, C)
    return _sums_and_dots(a, b, _which(a.dtype))              # (2, C)


@backend.fuse
def _sums_and_dots(a, b, which):
    # which (2, 1, 1) = [0, 1]: row 0 sums a * 1, row 1 sums a * b
    return backend.get_array_module().sum(a * ((1 - which) + which * b), 1)   # (2, C)


_WHICH = {}     # (array module, dtype) -> the (2, 1, 1) array [0, 1], made once on the device


def _which(dtype):
    xp = backend.get_array_module()
    key = (xp.__name__, dtype)
    if key not in _WHICH:
        _WHICH[key] = xp.arange(2, dtype=dtype).reshape(2, 1, 1)      # (2, 1, 1) [0, 1]
    return _WHICH[key]
