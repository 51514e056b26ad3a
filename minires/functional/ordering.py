"""Ordering along a dimension: sort, argsort and topk.

    values, indices = scores.sort(dim=1, descending=True)
    best, where = scores.topk(5, dim=1)                    # the 5 largest of each row

The values are the input read at the sorted indices (``selection.Gather``), so
their gradient goes back to the places they came from.
"""
from collections import namedtuple

from minires import backend
from minires.arguments import check_bool, check_int, check_tensor
from minires.autograd import Tensor
from minires.functional.selection import Gather
from minires.functional.shaping import wrap_dim

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])     # torch.return_types.sort


def _check_order(where, input, dim, flags):
    """input, dim and the True/False options of sort, argsort and topk; returns the axis."""
    check_tensor(where, "input", input, floating=False)
    for argument, value in flags.items():
        check_bool(where, argument, value)
    return wrap_dim(dim, input.ndim, where)


def _order(input, axis, descending):
    """int64 indices that sort ``input`` along ``axis``; equal values keep their order."""
    xp = backend.get_array_module()
    data = input.data
    if descending:      # the order of the negated values (ties stay in place, as a stable sort)
        if data.dtype.kind == "u":
            data = data.astype(xp.int64)
        data = ~data if data.dtype.kind == "b" else -data
    return xp.argsort(data, axis=axis, kind="stable").astype(xp.int64)


def sort(input, dim=-1, descending=False, stable=False):
    """PyTorch's ``torch.sort``: (values, indices) along ``dim``; equal values keep their order."""
    axis = _check_order("sort()", input, dim, dict(descending=descending, stable=stable))
    indices = _order(input, axis, descending)
    return ValuesIndices(Gather(indices, axis)(input), Tensor(indices))


def argsort(input, dim=-1, descending=False, stable=False):
    """The indices of ``sort`` (int64, no gradient)."""
    axis = _check_order("argsort()", input, dim, dict(descending=descending, stable=stable))
    return Tensor(_order(input, axis, descending))


def topk(input, k, dim=-1, largest=True, sorted=True):
    """PyTorch's ``torch.topk``: the ``k`` largest (``largest=False``: smallest) along ``dim``, as
    (values, indices), in sorted order."""
    axis = _check_order("topk()", input, dim, dict(largest=largest, sorted=sorted))
    if not 0 <= check_int("topk()", "k", k) <= input.shape[axis]:
        raise ValueError(f"topk(): k = {k} is out of range for dimension {dim} of size "
                         f"{input.shape[axis]}")
    indices = _order(input, axis, descending=largest)
    indices = indices[(slice(None),) * axis + (slice(0, k),)]
    return ValuesIndices(Gather(indices, axis)(input), Tensor(indices))
