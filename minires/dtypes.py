"""PyTorch's dtype names, as NumPy dtypes: ``minires.float32``, ``minires.int64``, ``minires.bool``.

    x = minires.Tensor(values, dtype=minires.float64)
    labels = labels.to(minires.int64)

A minires tensor's ``dtype`` is a NumPy dtype, so ``x.dtype == minires.float32``
holds exactly when PyTorch's ``x.dtype == torch.float32`` would.
"""
import numpy

__all__ = ["bool", "double", "float16", "float32", "float64", "half", "int8", "int16", "int32",
           "int64", "long", "short", "uint8"]

float16 = half = numpy.dtype(numpy.float16)
float32 = numpy.dtype(numpy.float32)
float64 = double = numpy.dtype(numpy.float64)
uint8 = numpy.dtype(numpy.uint8)
int8 = numpy.dtype(numpy.int8)
int16 = short = numpy.dtype(numpy.int16)
int32 = numpy.dtype(numpy.int32)
int64 = long = numpy.dtype(numpy.int64)
bool = numpy.dtype(numpy.bool_)     # torch.bool; hides the builtin in this file only
