"""CuPy's fast fusion path as rules: the trace behind the strict stand-in's ``fuse``.

``cupy.fuse`` runs the decorated function once on symbolic variables and writes what they
record into one CUDA kernel (``cupy/_core/fusion.pyx``: an ElementwiseKernel, or a
ReductionKernel with element-wise work before and after its one reduction). What that
trace cannot record raises inside it, and CuPy then silently falls back to its "new
fusion" (``new_fusion.pyx``), whose kernels run on a grid of about one multiprocessor
(cupy#9008). This module traces a function with proxy arrays that record only what the
fast path records, and refuses the rest with one sentence (``FusionRefused``):

1. element-wise work: the operators (``+ - * / // % **``, comparisons, ``& | ^ ~``, unary
   ``-``), in-place operators, the array module's ufuncs with positional arguments and
   ``out=``, ``where(c, x, y)``, ``x.astype(dtype)``, ``x.copy()`` and ``x[...] = v``, each
   with an array among its operands: on numbers alone (arguments or literals, as
   ``1 - momentum``) CuPy computes in the smallest type that holds them, float16 for Python
   floats, so such arithmetic belongs before the call;
2. at most one reduction (``sum``, ``prod``, ``amax``, ``amin``, ``max``, ``min``) of a
   value computed before it, with an int or tuple ``axis`` and no other keyword
   (no ``keepdims``);
3. after the reduction, only its result and numbers written in the function: an argument,
   or a value computed before the reduction, may not meet it (CuPy: "Shape mismatch");
4. a function with a reduction returns its one result and writes into no argument;
5. nothing else: no ``mean``/``var``/``std``, no other function (``reshape``, ``matmul``,
   ``einsum``, ``ones``), no array attribute or method but ``astype`` and ``copy``
   (no ``.shape``, ``x.sum()``, ``.T``), no indexing, no truth value;
6. no number captured from an enclosing function: CuPy would bake it into the kernel and
   compile one kernel per value; pass it as an argument;
7. it returns None, an array, or a tuple of arrays.

The stand-in adds one rule checked on the real arrays: every returned array, and every
argument written into, of an element-wise function has the common shape of the array
arguments (CuPy's kernel broadcasts its outputs to it, cupy#8198).
"""
import numbers

import numpy

REDUCTIONS = ("sum", "prod", "amax", "amin", "max", "min")
STATISTICS = ("mean", "var", "std", "average", "median")
GENERALISED_UFUNCS = ("matmul", "vecdot", "matvec", "vecmat")   # NumPy ufuncs, not element-wise


class FusionRefused(TypeError):
    """A fused function does something CuPy's fast fusion path does not."""


class _Active:
    trace = None        # the Trace being recorded, while a fused function is traced


active = _Active()


class Trace:
    """What a traced function did: whether it reduced, and which arguments it wrote."""

    def __init__(self, name):
        self.name = name
        self.reduced = False
        self.written = set()        # positions of the arguments written into

    def refuse(self, why):
        raise FusionRefused(f"fuse({self.name}): {why}")

    def elementwise(self, op, operands, out=None):
        """The proxy for the result of element-wise ``op`` (rules 1 and 3)."""
        phases = set()
        for operand in (*operands, *(() if out is None else (out,))):
            if isinstance(operand, Proxy):
                phases.add(operand.after_reduction)
            elif not isinstance(operand, (numbers.Number, numpy.generic)):
                self.refuse(f"{op} got a {type(operand).__name__}; a fused function computes "
                            "only on its arguments and numbers")
        if out is None and not any(isinstance(o, Proxy) and not o.scalar for o in operands):
            self.refuse(f"{op} of numbers alone, which CuPy computes in the smallest type that "
                        "holds them (float16 for Python floats); compute it before the call")
        if phases == {False, True}:
            self.refuse(f"{op} combines the reduction's result with an argument or a value "
                        "computed before the reduction, which CuPy's fast path cannot do")
        if out is None:
            return Proxy(self, after_reduction=True in phases)
        if not isinstance(out, Proxy):
            self.refuse(f"{op} writes into a {type(out).__name__}, not an array of the function")
        if out.argument is not None:
            self.written.add(out.argument)
        return out

    def reduce(self, name, args, kwargs):
        """The proxy for a reduction's result (rule 2)."""
        if self.reduced:
            self.refuse(f"a second reduction ({name}); CuPy's fast path fuses one")
        if "keepdims" in kwargs:
            self.refuse(f"{name}(keepdims=...) is not on CuPy's fast path; index the result instead")
        unknown = set(kwargs) - {"axis"}
        if unknown or len(args) > 2:
            self.refuse(f"{name}() takes the array and an axis only, got keywords {sorted(unknown)}")
        axis = args[1] if len(args) == 2 else kwargs.get("axis")
        if not (isinstance(axis, int) or (isinstance(axis, tuple) and axis
                                          and all(isinstance(a, int) for a in axis))):
            self.refuse(f"{name}() needs an int or tuple axis, got {axis!r}")
        if not isinstance(args[0], Proxy) or args[0].after_reduction:
            self.refuse(f"{name}() of something other than an array computed before the reduction")
        self.reduced = True
        return Proxy(self, after_reduction=True)

    def call(self, name, args, kwargs, ufunc):
        """A function of the array module called inside the traced function (rules 1, 2, 5)."""
        if name in REDUCTIONS:
            return self.reduce(name, args, kwargs)
        if name in STATISTICS:
            self.refuse(f"{name}() is not on CuPy's fast path; use sum(x, axis) times 1 / count")
        if (ufunc and name not in GENERALISED_UFUNCS) or name == "where":
            unknown = set(kwargs) - {"out"}
            if unknown:
                self.refuse(f"{name}() with keywords {sorted(unknown)}; only out= is on the fast path")
            return self.elementwise(name, args, kwargs.get("out"))
        self.refuse(f"{name}() is neither an element-wise ufunc nor a reduction")


def _refusing(kind):
    def method(self, *args):
        self.trace.refuse(f"{kind} of an array is not available inside a fused function")
    return method


class Proxy:
    """A symbolic array inside a traced function: records element-wise work, refuses the rest."""
    __slots__ = ("trace", "after_reduction", "argument", "scalar")
    __array_ufunc__ = None      # NumPy scalars defer to the proxy's reflected operators
    __hash__ = None

    def __init__(self, trace, after_reduction=False, argument=None, scalar=False):
        self.trace, self.after_reduction, self.argument = trace, after_reduction, argument
        self.scalar = scalar        # a number argument, not an array

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self.trace.refuse(f"x.{name} is not available inside a fused function (only astype and "
                          f"copy are; reductions are written {REDUCTIONS[0]}(x, axis))")

    def astype(self, dtype):
        return self.trace.elementwise("astype", (self,))

    def copy(self):
        return self.trace.elementwise("copy", (self,))

    def __setitem__(self, key, value):
        if not (key is Ellipsis or key == slice(None)):
            self.trace.refuse(f"x[{key!r}] = v; only x[...] = v is on the fast path")
        self.trace.elementwise("x[...] = v", (value,), out=self)

    __getitem__ = _refusing("indexing")
    __bool__ = _refusing("the truth value")
    __len__ = __iter__ = _refusing("len()/iteration")
    __float__ = __int__ = __index__ = _refusing("a Python number")
    __array__ = _refusing("conversion to NumPy")
    __matmul__ = __rmatmul__ = _refusing("matmul (@)")
    __abs__ = __pos__ = _refusing("abs()/unary +")


def _binary(name, reflected=False):
    def method(self, other):
        return self.trace.elementwise(name, (other, self) if reflected else (self, other))
    return method


def _inplace(name):
    def method(self, other):
        return self.trace.elementwise(name, (self, other), out=self)
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor",
              "lshift", "rshift"):
    setattr(Proxy, f"__{_name}__", _binary(f"__{_name}__"))
    setattr(Proxy, f"__r{_name}__", _binary(f"__r{_name}__", reflected=True))
    setattr(Proxy, f"__i{_name}__", _inplace(f"__i{_name}__"))
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(Proxy, f"__{_name}__", _binary(f"__{_name}__"))
Proxy.__neg__ = lambda self: self.trace.elementwise("__neg__", (self,))
Proxy.__invert__ = lambda self: self.trace.elementwise("__invert__", (self,))


def trace(function, args, is_array):
    """Trace ``function(*args)`` with proxies; returns the Trace, or raises FusionRefused.

    ``is_array(value)`` says which arguments are device arrays; numbers become proxies
    too (CuPy passes them as kernel parameters) and None stays None.
    """
    record = Trace(getattr(function, "__name__", "function"))
    for cell in getattr(function, "__closure__", None) or ():
        if isinstance(cell.cell_contents, (numbers.Number, numpy.generic)):
            record.refuse(f"it captures the number {cell.cell_contents!r} from an enclosing "
                          "function, which CuPy bakes into the kernel; pass it as an argument")
    proxies = []
    for position, arg in enumerate(args):
        if arg is None:
            proxies.append(None)
        elif is_array(arg) or isinstance(arg, (numbers.Number, numpy.generic)):
            proxies.append(Proxy(record, argument=position, scalar=not is_array(arg)))
        else:
            record.refuse(f"argument {position} is a {type(arg).__name__}; fused functions take "
                          "device arrays, numbers and None")
    previous, active.trace = active.trace, record
    try:
        result = function(*proxies)
    finally:
        active.trace = previous
    results = result if isinstance(result, tuple) else (result,)
    if result is not None and not all(isinstance(r, Proxy) for r in results):
        record.refuse(f"it returns {type(result).__name__}; a fused function returns None, an "
                      "array or a tuple of arrays")
    if record.reduced and (not isinstance(result, Proxy) or not result.after_reduction
                           or record.written):
        record.refuse("a function with a reduction must return its result alone and write "
                      "into no argument")
    return record
