"""A strict stand-in for CuPy: NumPy underneath, CuPy's rules on top, every operation counted.

Tests (and ``benchmarks/count_ops.py``) install this module as the array module of the
"cupy" backend, so minires runs its device code paths on a machine without a GPU:

    from minires.testing import strict_device
    with strict_device.installed():                 # backend._use("cupy", strict_device)
        with strict_device.counting() as counts:
            ...                                     # a training step
    counts.launches, counts.d2h, counts.h2d, counts.implicit

What it enforces, where CuPy bites:

- Device arrays are ``strict_device.ndarray`` objects wrapping a NumPy array. They refuse
  implicit conversion to the host: ``numpy.asarray(x)``, ``float(x)``, ``int(x)``, ``bool(x)``,
  NumPy functions and ufuncs on them, and mixing them with a NumPy array in one operation
  raise TypeError (CuPy refuses the first and the last on purpose, cupy#589; ``float`` and
  ``bool`` work on CuPy but block until the GPU is done, so minires must not call them inside
  a step). Python numbers and NumPy scalars mix freely, as on CuPy.
- Host and device meet only through ``asarray(host)`` (host to device, counted in ``h2d``)
  and ``asnumpy(x)``, ``x.item()``, ``x.tolist()``, ``x.get()`` (device to host, counted in
  ``d2h``). Index arrays and assigned values must be device arrays too.
- An assignment through an index array that selects an element twice raises ValueError (its
  result is undefined on CuPy); ``add.at`` is the way to sum into repeated indices.
- Ufuncs take only the keywords CuPy's take (``out``, ``dtype``, ``casting``: no ``where``).
- Only names the installed CuPy also has are offered (when CuPy is importable).
- ``fuse(f)``, CuPy's ``cupy.fuse``: traces ``f`` with proxy arrays that allow only what
  CuPy's fast fusion path compiles and refuses the rest with one sentence (the rules are in
  ``strict_fusion.py``); then runs ``f`` on the arrays as one counted launch.

What it counts: each operation that would launch a kernel on CuPy (a function call, an
operator, an in-place operator, an indexing copy, an assignment into a slice, a reduction) is
one launch. Views (slices, ``reshape`` without a copy, ``transpose``, ``broadcast_to``) and
``empty`` allocations launch nothing and are counted apart. A CuPy operation may use a few
kernels (fancy indexing, some reductions), so ``launches`` counts operations, a lower bound.
"""
import collections
import contextlib
import functools
import numbers
import operator
import os
import sys
import types

import numpy

from minires.testing import strict_fusion

try:
    import cupy as _cupy
except ImportError:     # the stand-in works without CuPy; it then offers every NumPy name
    _cupy = None

_MINIRES_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_TESTING_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep     # this stand-in's own frames


def _in_minires(filename):
    """Whether code in ``filename`` is minires's own (the library, not minires.testing)."""
    return filename.startswith(_MINIRES_DIR) and not filename.startswith(_TESTING_DIR)


# --- counting ----------------------------------------------------------------------------
class Counts:
    """What happened inside one counting() block.

    launches  operations that launch a kernel on CuPy
    views     operations that only make a view (no kernel)
    allocs    uninitialised allocations (``empty``: no kernel)
    h2d       host-to-device copies (``asarray`` of host data)
    d2h       device-to-host reads (``asnumpy``, ``item``, ``tolist``, ``get``)
    syncs     waits for the device (``cuda.get_current_stream().synchronize()``)
    implicit  refused implicit conversions (each also raised TypeError)
    by_op     launches per operation name, e.g. ``{"__iadd__": 310, "copyto": 16}``
    by_site   launches per (phase, where, Function name or None), when counting with
              ``sites=True``: ("backward", "Conv2d (functional/conv.py)", "Conv2d")
    """

    def __init__(self, sites=False):
        self.launches = self.views = self.allocs = self.h2d = self.d2h = self.syncs = 0
        self.implicit = 0
        self.by_op = collections.Counter()
        self.by_site = collections.Counter() if sites else None

    def __repr__(self):
        return (f"Counts(launches={self.launches}, views={self.views}, allocs={self.allocs}, "
                f"h2d={self.h2d}, d2h={self.d2h}, syncs={self.syncs}, implicit={self.implicit})")


_counting = []      # the Counts of every open counting() block, innermost last


# Every name and keyword minires used on this module and on its arrays, with where it was used:
# usage[("function", "zeros")] = {"keywords": {"dtype"}, "sites": {"minires/optim.py:27"}}.
usage = collections.defaultdict(lambda: {"keywords": set(), "sites": set()})


@contextlib.contextmanager
def counting(sites=False):
    """Count from zero inside the block; yields the Counts (read it after the block).

    Blocks nest: an operation counts in every open block.
    """
    counts = Counts(sites)
    _counting.append(counts)
    try:
        yield counts
    finally:
        _counting.remove(counts)


@contextlib.contextmanager
def installed():
    """Make this module the array module of minires's "cupy" backend inside the block."""
    from minires import backend
    previous = backend.get_backend(), backend.get_array_module()
    backend._use("cupy", sys.modules[__name__])
    try:
        yield sys.modules[__name__]
    finally:
        backend._use(*previous)


def _count(field):
    for counts in _counting:
        setattr(counts, field, getattr(counts, field) + 1)


def _launch(op):
    site = None
    for counts in _counting:
        counts.launches += 1
        counts.by_op[op] += 1
        if counts.by_site is not None:
            site = site or _site()
            counts.by_site[site] += 1


def _implicit(message):
    _count("implicit")
    raise TypeError(f"strict_device: {message}")


def _note(kind, name, keywords):
    entry = usage[(kind, name)]
    entry["keywords"].update(keywords)
    caller = _minires_frame()
    if caller is not None:
        entry["sites"].add(f"{_relative(caller.f_code.co_filename)}:{caller.f_lineno}")


def _minires_frame():
    frame = sys._getframe(1)
    while frame is not None and not _in_minires(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def _relative(path):
    return "minires/" + path[len(_MINIRES_DIR):].replace(os.sep, "/")


def _site():
    """(phase, where, Function class name or None) for the operation being counted.

    phase: "backward" inside ``Tensor.backward``, "optimizer" inside ``Optimizer.step`` or
    ``zero_grad``, else "forward". where: the Function whose forward or backward runs the
    operation (``Conv2d (functional/conv.py)``), else the innermost minires function
    (``Adam._update (optim.py)``).
    """
    from minires.autograd import Function
    phase, function, innermost = "forward", None, None
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if _in_minires(code.co_filename):
            file = _relative(code.co_filename)[len("minires/"):]
            name = getattr(code, "co_qualname", code.co_name)
            if innermost is None and name != "_Fused.__call__":     # charge a fused function's caller
                innermost = f"{name} ({file})"
            owner = frame.f_locals.get("self")
            if function is None and isinstance(owner, Function):
                function = (f"{type(owner).__name__} ({file})", type(owner).__name__)
            if name == "Tensor.backward":
                phase = "backward"
            elif name in ("Optimizer.step", "Optimizer.zero_grad"):
                phase = "optimizer"
        frame = frame.f_back
    if function is not None:
        return (phase,) + function
    return phase, innermost or "outside minires", None


# --- wrapping and unwrapping -------------------------------------------------------------
def _unwrap(value, what):
    """The NumPy array behind a device array; NumPy arrays are refused (no implicit copies)."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, numpy.ndarray):
        _implicit(f"{what}: got a NumPy array {value.shape} {value.dtype} where a device array "
                  "is needed (CuPy refuses implicit host-to-device conversion); move it with "
                  "asarray() first")
    if isinstance(value, (tuple, list)):
        return type(value)(_unwrap(v, what) for v in value)
    return value


def _wrap(value):
    if isinstance(value, numpy.ndarray):
        return ndarray(value)
    if isinstance(value, numpy.generic):    # CuPy gives 0-d arrays where NumPy gives scalars
        return ndarray(numpy.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def _arrays(values):
    for value in values:
        if isinstance(value, numpy.ndarray):
            yield value
        elif isinstance(value, (tuple, list)):
            yield from _arrays(value)


def _finish(op, result, inputs, out=None):
    """Count ``result`` of operation ``op`` as a launch or a view, and wrap it."""
    if out is not None or result is None:
        _launch(op)                             # written in place
    elif isinstance(result, numpy.ndarray) and any(
            numpy.may_share_memory(result, a) for a in _arrays(inputs)):
        _count("views")
    elif isinstance(result, (numpy.ndarray, numpy.generic, tuple)):
        _launch(op)
    return _wrap(result)


def _operand(value, op):
    """The NumPy side of an operator's other operand, or NotImplemented for foreign types."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, (numbers.Number, numpy.generic)):
        return value
    if isinstance(value, numpy.ndarray):
        _implicit(f"{op}: a device array and a NumPy array {value.shape} {value.dtype} in one "
                  "operation (CuPy raises TypeError); move the NumPy array with asarray() first")
    return NotImplemented


# --- the device array --------------------------------------------------------------------
class ndarray:
    """A device array: a NumPy array that refuses to leave the device implicitly."""
    __slots__ = ("_a", "__weakref__")
    __hash__ = None

    def __init__(self, array):
        self._a = array

    # refusals: every implicit way out to the host
    def __array__(self, dtype=None, copy=None):
        _implicit(f"implicit conversion of a device array {self.shape} to NumPy; "
                  "use asnumpy() (an explicit device-to-host copy)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _implicit(f"NumPy ufunc {ufunc.__name__}.{method} on a device array; "
                  "use the backend's array module (xp)")

    def __array_function__(self, func, types, args, kwargs):
        _implicit(f"NumPy function {func.__name__} on a device array; "
                  "use the backend's array module (xp)")

    def _refuse_scalar(self, kind):
        _implicit(f"{kind}() of a device array {self.shape}: a hidden device-to-host read "
                  "and synchronisation; read explicitly with asnumpy() or .item()")

    def __float__(self):
        self._refuse_scalar("float")

    def __int__(self):
        self._refuse_scalar("int")

    def __complex__(self):
        self._refuse_scalar("complex")

    def __bool__(self):
        self._refuse_scalar("bool")

    # explicit reads, counted
    def item(self):
        _note("method", "item", ())
        _count("d2h")
        return self._a.item()

    def tolist(self):
        _note("method", "tolist", ())
        _count("d2h")
        return self._a.tolist()

    def get(self):
        _note("method", "get", ())
        _count("d2h")
        return self._a.copy()

    # facts (no data access)
    shape = property(lambda self: self._a.shape)
    ndim = property(lambda self: self._a.ndim)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)

    @property
    def T(self):
        _count("views")
        return ndarray(self._a.T)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):     # no read: printing must not sync
        return f"strict_device.ndarray(shape={self.shape}, dtype={self.dtype})"

    # indexing
    def __getitem__(self, index):
        _note("method", "__getitem__", ())
        index = _unwrap(index, "index")
        result = self._a[index]
        if isinstance(result, numpy.generic):   # one element: CuPy gives a 0-d view
            result = self._a[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
        return _finish("__getitem__", result, [self._a])

    def __setitem__(self, index, value):
        _note("method", "__setitem__", ())
        index = _unwrap(index, "index")
        target = self._a[index]
        source = _operand(value, "__setitem__")
        if source is NotImplemented:
            raise TypeError(f"strict_device: cannot assign {type(value).__name__} into a device array")
        if _same_memory(target, source):
            return      # x[s] += y writes back the view it just updated; CuPy skips that copy
        _refuse_repeated(self._a.shape, index)
        self._a[index] = source
        _launch("__setitem__")


def _refuse_repeated(shape, index):
    """``x[idx] = v`` with an element selected twice is undefined on CuPy (PITFALLS): refuse it."""
    parts = index if isinstance(index, tuple) else (index,)
    if not any(isinstance(p, numpy.ndarray) and p.dtype.kind in "iu" for p in parts):
        return
    selected = numpy.arange(numpy.prod(shape)).reshape(shape)[index]   # flat position of each
    if numpy.unique(selected).size != selected.size:
        raise ValueError("strict_device: assignment through an index array that selects an "
                         "element twice; CuPy leaves the result undefined (use add.at to sum)")


def _same_memory(a, b):
    return (isinstance(a, numpy.ndarray) and isinstance(b, numpy.ndarray) and a.shape == b.shape
            and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _method(name):
    def method(self, *args, **kwargs):
        _note("method", name, kwargs)
        args, kwargs = _unwrap(args, name), {k: _unwrap(v, name) for k, v in kwargs.items()}
        result = getattr(self._a, name)(*args, **kwargs)
        if result is self._a:       # astype(copy=False) with the same dtype: no copy, same array
            return self
        return _finish(name, result, [self._a], out=kwargs.get("out"))
    method.__name__ = name
    return method


_METHODS = ("all", "any", "argmax", "argmin", "argsort", "astype", "clip", "copy", "cumsum",
            "diagonal", "dot", "fill", "flatten", "max", "mean", "min", "nonzero", "prod",
            "ravel", "repeat", "reshape", "round", "sort", "squeeze", "std", "sum", "swapaxes",
            "take", "transpose", "var", "view")
for _name in _METHODS:
    setattr(ndarray, _name, _method(_name))


def _binary(name, function, reflected=False):
    def method(self, other):
        _note("method", name, ())
        other_a = _operand(other, name)
        if other_a is NotImplemented:
            return NotImplemented       # e.g. a Tensor: let its reflected operator run
        result = function(other_a, self._a) if reflected else function(self._a, other_a)
        _launch(name)
        return _wrap(result)
    method.__name__ = name
    return method


def _inplace(name, function):
    def method(self, other):
        _note("method", name, ())
        other_a = _operand(other, name)
        if other_a is NotImplemented:
            return NotImplemented
        function(self._a, other_a)
        _launch(name)
        return self
    method.__name__ = name
    return method


def _unary(name, function):
    def method(self):
        _note("method", name, ())
        _launch(name)
        return _wrap(function(self._a))
    method.__name__ = name
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
              "xor", "lshift", "rshift"):
    _operator = getattr(operator, _name if hasattr(operator, _name) else _name + "_")
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__", _operator))
    setattr(ndarray, f"__r{_name}__", _binary(f"__r{_name}__", _operator, reflected=True))
    if _name != "matmul":     # CuPy has no in-place matmul: ``a @= b`` makes a new array there
        setattr(ndarray, f"__i{_name}__", _inplace(f"__i{_name}__", getattr(operator, f"i{_name}")))
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__", getattr(operator, _name)))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", _unary(f"__{_name}__", getattr(operator, _name)))


# --- crossing between host and device ----------------------------------------------------
def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    """Host data -> device array (counted in h2d); a device array passes through (cast if asked)."""
    _note("function", "asarray", [k for k, v in (("dtype", dtype), ("order", order),
                                                  ("copy", copy)) if v is not None])
    if isinstance(a, ndarray):
        return a if dtype is None else a.astype(dtype, copy=False)
    _count("h2d")
    # CuPy copies a host array that is neither C- nor F-contiguous into C order
    host = numpy.asarray(a, dtype=dtype)
    kept = "F" if host.flags.f_contiguous and not host.flags.c_contiguous else "C"
    return ndarray(numpy.array(host, order=order or kept))


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    """A new device array: a device copy of a device array, or a host-to-device copy."""
    _note("function", "array", ())
    if isinstance(a, ndarray):
        _launch("array")
        return ndarray(numpy.array(a._a, dtype=dtype, order=order, ndmin=ndmin))
    _count("h2d")
    return ndarray(numpy.array(a, dtype=dtype, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """Device array -> NumPy array: the explicit device-to-host read (counted in d2h)."""
    _note("function", "asnumpy", ())
    if not isinstance(a, ndarray):
        return numpy.asarray(a, order=order)
    _count("d2h")
    return numpy.array(a._a, order=order)


# --- allocation ----------------------------------------------------------------------------
def empty(shape, dtype=float, order="C"):
    _note("function", "empty", ["dtype"] if dtype is not float else [])
    _count("allocs")
    return ndarray(numpy.empty(shape, dtype=dtype, order=order))


def empty_like(a, dtype=None, order="K", subok=None, shape=None):
    _note("function", "empty_like", ())
    _count("allocs")
    return ndarray(numpy.empty_like(_unwrap(a, "empty_like"), dtype=dtype, order=order, shape=shape))


class _MemoryPool:
    """Enough of CuPy's memory pools for ``minires.backend.free_memory``."""

    def free_all_blocks(self):
        pass

    def used_bytes(self):
        return 0


def get_default_memory_pool():
    return _MemoryPool()


def get_default_pinned_memory_pool():
    return _MemoryPool()


class _Stream:
    def synchronize(self):
        _count("syncs")


cuda = types.SimpleNamespace(get_current_stream=_Stream)    # enough for backend.synchronize


# --- everything else: NumPy's function under CuPy's name ----------------------------------
_UFUNC_KEYWORDS = {"out", "dtype", "casting"}    # cupy/_core/_kernel.pyx, ufunc.__call__


class _Ufunc:
    """A NumPy ufunc taking and returning device arrays, with CuPy's keywords only."""

    def __init__(self, ufunc, name):
        self._ufunc, self.__name__ = ufunc, name

    def __call__(self, *args, **kwargs):
        if strict_fusion.active.trace is not None:
            return strict_fusion.active.trace.call(self.__name__, args, kwargs, ufunc=True)
        _note("function", self.__name__, kwargs)
        unknown = set(kwargs) - _UFUNC_KEYWORDS
        if unknown:
            raise TypeError(f"strict_device: {self.__name__}() got {sorted(unknown)}; CuPy ufuncs "
                            f"take only {sorted(_UFUNC_KEYWORDS)}")
        if any(isinstance(arg, (list, tuple)) for arg in args):
            _implicit(f"{self.__name__}() of a Python sequence (CuPy ufuncs take arrays and "
                      "scalars only); move it with asarray() first")
        args = _unwrap(args, self.__name__)
        kwargs = {k: _unwrap(v, self.__name__) for k, v in kwargs.items()}
        return _finish(self.__name__, self._ufunc(*args, **kwargs), args, out=kwargs.get("out"))

    def at(self, a, indices, b=None):
        if strict_fusion.active.trace is not None:
            return strict_fusion.active.trace.call(f"{self.__name__}.at", (a,), {}, ufunc=False)
        _note("function", f"{self.__name__}.at", ())
        self._ufunc.at(_unwrap(a, "at"), _unwrap(indices, "at"), _unwrap(b, "at"))
        _launch(f"{self.__name__}.at")

    def __getattr__(self, name):      # reduce, accumulate, outer, reduceat
        return _function(getattr(self._ufunc, name), f"{self.__name__}.{name}")


def _function(function, name):
    @functools.wraps(function)
    def call(*args, **kwargs):
        if strict_fusion.active.trace is not None:
            return strict_fusion.active.trace.call(name, args, kwargs, ufunc=False)
        _note("function", name, kwargs)
        args = _unwrap(args, name)
        kwargs = {k: _unwrap(v, name) for k, v in kwargs.items()}
        return _finish(name, function(*args, **kwargs), args, out=kwargs.get("out"))
    return call


class _Namespace(types.ModuleType):
    """A NumPy submodule (``random``, ``linalg``, ...) with the same wrapping."""

    def __init__(self, module, prefix):
        super().__init__(prefix.rstrip("."))
        self._module, self._prefix = module, prefix

    def __getattr__(self, name):
        return _forward(self._module, self._prefix, name)


def _forward(module, prefix, name):
    if name.startswith("__"):
        raise AttributeError(name)
    if _cupy is not None and not _has_path(_cupy, prefix + name):
        raise AttributeError(f"strict_device: CuPy {_cupy.__version__} has no {prefix + name}")
    value = getattr(module, name)
    if isinstance(value, numpy.ufunc):
        return _Ufunc(value, prefix + name)
    if isinstance(value, types.ModuleType):
        return _Namespace(value, prefix + name + ".")
    if callable(value) and not isinstance(value, type):
        return _function(value, prefix + name)
    return value        # constants (inf, pi) and types (float32, dtype)


def _has_path(root, dotted):
    try:
        functools.reduce(getattr, dotted.split("."), root)
    except AttributeError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def __getattr__(name):
    return _forward(numpy, "", name)


# --- fusion --------------------------------------------------------------------------------
def fuse(function):
    """CuPy's ``cupy.fuse``: ``function`` as one kernel, if CuPy's fast fusion path takes it.

    Called with no device array among the arguments it calls ``function`` unchanged, as
    CuPy does. Otherwise it traces ``function`` (once per kind of arguments) and raises
    ``strict_fusion.FusionRefused`` for what the fast path would not compile, then runs it
    on the arrays, counted as one launch, ``fuse(name)`` in ``by_op``.
    """
    return _Fusion(function)


class _Fusion:
    def __init__(self, function):
        self.function, self.__name__ = function, function.__name__
        self.traces = {}        # (kind, ndim) of every argument -> its Trace, as CuPy caches kernels

    def __call__(self, *args):
        if not any(isinstance(a, ndarray) for a in args):
            return self.function(*args)
        key = tuple((type(a), a.ndim) if isinstance(a, ndarray) else type(a) for a in args)
        if key not in self.traces:
            self.traces[key] = strict_fusion.trace(self.function, args,
                                                   lambda a: isinstance(a, ndarray))
        trace = self.traces[key]
        outer = _counting[:]
        _counting.clear()       # the operations inside are one kernel: count none of them ...
        try:
            result = self.function(*args)
        finally:
            _counting.extend(outer)
        _launch(f"fuse({self.__name__})")      # ... and the kernel once
        if not trace.reduced:
            _check_fused_shapes(trace, args, result)
        return result


def _check_fused_shapes(trace, args, result):
    """Every output of an element-wise kernel has the arguments' common shape (cupy#8198)."""
    shape = numpy.broadcast_shapes(*(a.shape for a in args if isinstance(a, ndarray)))
    written = [args[i] for i in sorted(trace.written)]
    returned = [] if result is None else list(result) if isinstance(result, tuple) else [result]
    for array in written + returned:
        if array.shape != shape:
            trace.refuse(f"an output of shape {array.shape} where CuPy's kernel writes the "
                         f"arguments' common shape {shape} (cupy#8198)")


# --- device memory by address, for minires.distributed's NCCL path -------------------------
# NCCL (cupy.cuda.nccl) takes raw device addresses, ``array.data.ptr``; DistributedDataParallel
# finds the optimizer's flat gradient buffer through ``.base`` and ``__cuda_array_interface__``.
# Every address handed out is recorded, so a stand-in NCCL (tests/mpi_programs/nccl_stand_in.py)
# can check that what it reduces is the memory of a device array.
handed_out = {}     # address -> bytes of the device array whose .data gave it


class MemoryPointer:
    """CuPy's ``ndarray.data``: ``ptr`` is the address of the array's first element."""

    def __init__(self, array):
        self.ptr = array.ctypes.data
        handed_out[self.ptr] = array.nbytes


def _cuda_array_interface(self):
    return {"version": 3, "shape": self.shape, "typestr": self.dtype.str, "strides": self.strides,
            "data": (self._a.ctypes.data, False)}


ndarray.data = property(lambda self: MemoryPointer(self._a))
ndarray.base = property(lambda self: None if self._a.base is None else ndarray(self._a.base))
ndarray.__cuda_array_interface__ = property(_cuda_array_interface)


class Device:
    """``cuda.Device(i).use()``: the devices used, in order, are in ``devices_used``."""

    def __init__(self, device_id=0):
        self.id = device_id

    def use(self):
        devices_used.append(self.id)


devices_used = []
cuda.Device = Device
_Stream.ptr = 0     # the default stream
