"""Joining tensors: ``cat`` along an existing dimension, ``stack`` along a new one.

Backward hands each input its own part of the gradient: the slice of gy its
values went to. Inputs of different dtypes are first cast to PyTorch's common
dtype (``casting.promote``).
"""
import itertools

from minires import backend
from minires.arguments import check_int, check_tensor
from minires.autograd import Function, Tensor
from minires.functional.casting import promote
from minires.functional.shaping import wrap_dim


class Cat(Function):
    """x_1: (..., K_1, ...), ..., x_n: (..., K_n, ...) -> y: (..., K_1 + ... + K_n, ...)."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        xp = backend.get_array_module()
        ends = itertools.accumulate(x.shape[self.axis] for x in xs)
        self.parts = [slice(end - x.shape[self.axis], end) for x, end in zip(xs, ends)]   # x_i in y
        return xp.concatenate(xs, axis=self.axis)                # (..., K_1 + ... + K_n, ...)

    def backward(self, gy):
        before = (slice(None),) * self.axis                     # the dimensions before axis
        return tuple(gy[before + (part,)] for part in self.parts)   # (..., K_i, ...) each


class Stack(Function):
    """n inputs of one shape (...) -> y: (n, ...) with the new dimension at ``axis``."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        return backend.get_array_module().stack(xs, axis=self.axis)

    def backward(self, gy):
        xp = backend.get_array_module()
        return tuple(xp.moveaxis(gy, self.axis, 0))             # input i gets slice i: (...)


def _tensors(name, tensors):
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError(f"{name}(): tensors must be a non-empty list or tuple of tensors, got "
                        f"{type(tensors).__name__}")
    for index, tensor in enumerate(tensors):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name}(): tensors[{index}] must be a Tensor, got "
                            f"{type(tensor).__name__}")
    return promote(*tensors)


def cat(tensors, dim=0):
    """PyTorch's ``torch.cat``: join tensors along ``dim``; all other dimensions must agree."""
    tensors = _tensors("cat", tensors)
    if tensors[0].ndim == 0:
        raise ValueError("cat(): 0-d tensors have no dimension to join along; use stack()")
    axis = wrap_dim(dim, tensors[0].ndim, "cat()")
    if len({t.shape[:axis] + t.shape[axis + 1:] for t in tensors}) > 1:
        raise ValueError(f"cat(): tensors must have the same shape except in dimension {dim}, "
                         f"got {[tuple(t.shape) for t in tensors]}")
    return Cat(axis)(*tensors)


def stack(tensors, dim=0):
    """PyTorch's ``torch.stack``: join tensors of one shape along a new dimension ``dim``."""
    tensors = _tensors("stack", tensors)
    shapes = [tuple(t.shape) for t in tensors]
    if len(set(shapes)) > 1:
        raise ValueError(f"stack(): tensors must all have the same shape, got {shapes}")
    return Stack(wrap_dim(dim, tensors[0].ndim + 1, "stack()"))(*tensors)


def split(tensor, split_size_or_sections, dim=0):
    """PyTorch's ``torch.split``: parts of ``split_size`` along ``dim`` (the last may be shorter), or
    of the sizes in a list. Each part is ``tensor[..., start:stop]``, a view; gradients add up."""
    check_tensor("split()", "tensor", tensor, floating=False)
    axis = wrap_dim(dim, tensor.ndim, "split()")
    size = tensor.shape[axis]
    if not isinstance(split_size_or_sections, (tuple, list)):
        step = check_int("split()", "split_size_or_sections", split_size_or_sections, least=1)
        sizes = [min(step, size - start) for start in range(0, size, step)] or [0]
    else:
        sizes = [check_int("split()", "split_size_or_sections", n, least=0) for n in split_size_or_sections]
        if sum(sizes) != size:
            raise ValueError(f"split(): split_size_or_sections {sizes} must add up to the size {size} "
                             f"of dimension {dim}")
    ends = list(itertools.accumulate(sizes))
    before = (slice(None),) * axis
    return tuple(tensor[before + (slice(end - n, end),)] for n, end in zip(sizes, ends))


def chunk(input, chunks, dim=0):
    """PyTorch's ``torch.chunk``: at most ``chunks`` parts of ceil(size / chunks) along ``dim``."""
    check_tensor("chunk()", "input", input, floating=False)
    check_int("chunk()", "chunks", chunks, least=1)
    size = input.shape[wrap_dim(dim, input.ndim, "chunk()")]
    return split(input, max(-(-size // chunks), 1), dim)
