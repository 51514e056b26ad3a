"""Comparisons: ==, !=, <, <=, >, >= element-wise, giving bool tensors with no gradient,
and the operators that combine such masks: ~, &, | (bitwise on integer tensors).

    predicted = logits.argmax(1)                        # (N,) int64
    correct = (predicted == labels).sum().item()        # a bool (N,) summed as int64
    accuracy = (predicted == labels).float().mean()

The operands broadcast, and their values are compared whatever their dtypes (an
int tensor < 1.5 compares with 1.5). Labels held on the host are moved to the
device first. ``x == None`` is False, as in PyTorch.
"""
import numpy

from minires import backend
from minires.autograd import Tensor


def _operand(value):
    """A Tensor's array, a number as it is, other data (a host array, a list) on the device."""
    if isinstance(value, Tensor):
        return value.data
    return value if numpy.isscalar(value) else backend.to_device(value)


def eq(input, other):
    """input == other, element-wise."""
    if other is None:
        return False
    return Tensor(input.data == _operand(other))


def ne(input, other):
    """input != other, element-wise."""
    if other is None:
        return True
    return Tensor(input.data != _operand(other))


def lt(input, other):
    """input < other, element-wise."""
    return Tensor(input.data < _operand(other))


def le(input, other):
    """input <= other, element-wise."""
    return Tensor(input.data <= _operand(other))


def gt(input, other):
    """input > other, element-wise."""
    return Tensor(input.data > _operand(other))


def ge(input, other):
    """input >= other, element-wise."""
    return Tensor(input.data >= _operand(other))


def bitwise_not(input):
    """~input: logical not of a bool tensor, bitwise not of an integer one."""
    return Tensor(~input.data)


def bitwise_and(input, other):
    """input & other: logical and of bool tensors, bitwise and of integer ones."""
    return Tensor(input.data & _operand(other))


def bitwise_or(input, other):
    """input | other: logical or of bool tensors, bitwise or of integer ones."""
    return Tensor(input.data | _operand(other))
