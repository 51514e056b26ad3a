"""The one place that chooses between NumPy (CPU) and CuPy (GPU).

Everything else asks this module for the active array module (``xp``) and never
imports numpy-or-cupy for device arrays itself. Host data (images read from disk,
checkpoints, random numbers for initialisation) is always plain NumPy; it crosses
to the device through ``to_device`` and comes back through ``to_host``.

    import minires
    minires.set_backend("cupy")       # RuntimeError with advice if no usable GPU
    xp = minires.backend.get_array_module()
    x = minires.backend.to_device(numpy_array)

It also owns ``fuse``, the decorator that turns a small element-wise function into one GPU
kernel on CuPy and leaves it the plain function on NumPy (see ``fuse`` for its rules).
"""
import os
import warnings

import numpy

BACKENDS = ("numpy", "cupy")


class _Active:
    """The selected backend: its name and its array module."""
    name = "numpy"
    xp = numpy


_active = _Active()


def get_backend():
    """Name of the active backend: ``"numpy"`` or ``"cupy"``."""
    return _active.name


def get_array_module():
    """The array module of the active backend (``numpy`` or ``cupy``)."""
    return _active.xp


def set_backend(name):
    """Select ``"numpy"`` (default) or ``"cupy"`` for every array made from now on.

    Arrays made before the switch stay where they are: build models and
    optimizers after choosing the backend.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    xp = numpy if name == "numpy" else _import_usable_cupy()
    _use(name, xp)


def _use(name, xp):
    """Make ``xp`` the active array module under ``name`` (tests use it for stand-ins)."""
    _active.name = name
    _active.xp = xp


def cupy_problem():
    """Why CuPy cannot be used here, as one sentence, or ``None`` if it can."""
    try:
        import cupy
    except ImportError:
        return ("CuPy is not installed: install minires with the CUDA extra "
                "(pip install -e \".[cuda]\"), or use --backend numpy")
    try:
        cupy.cuda.runtime.getDeviceCount()
        cupy.zeros(1)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return (f"CuPy is installed but no CUDA device is usable ({reason}); "
                "check the NVIDIA driver and that a GPU is visible, or use --backend numpy")
    return None


def _import_usable_cupy():
    problem = cupy_problem()
    if problem is not None:
        raise RuntimeError(problem)
    import cupy
    return cupy


def is_host():
    """True when arrays live in host memory (the NumPy backend)."""
    return _active.xp is numpy


def to_device(array, dtype=None):
    """``array`` (host data, or already on the device) as an array of the active backend."""
    xp = _active.xp
    if not is_host() and isinstance(array, xp.ndarray):
        return array if dtype is None else array.astype(dtype, copy=False)
    host = numpy.asarray(array, dtype=dtype)
    if host.dtype.kind not in "biuf":     # text, objects: nothing a device array can hold
        raise TypeError(f"to_device: array must hold numbers, got {type(array).__name__} of dtype "
                        f"{host.dtype}")
    return host if is_host() else xp.asarray(host)


def to_host(array):
    """A NumPy array holding the values of ``array`` (a copy when it lives on a device)."""
    if isinstance(array, numpy.ndarray) or numpy.isscalar(array):
        return numpy.asarray(array)
    return _active.xp.asnumpy(array)


def synchronize():
    """Wait until the device has finished its queued work (no-op on NumPy).

    GPU kernels run asynchronously: time GPU work only after synchronising.
    """
    if not is_host() and hasattr(_active.xp, "cuda"):
        _active.xp.cuda.get_current_stream().synchronize()


def free_memory():
    """Give CuPy's cached device memory back to the driver (no-op on NumPy).

    CuPy's memory pool keeps freed blocks for reuse, so nvidia-smi looks full
    even when little is in use; call this between runs to release them.
    """
    if not is_host() and hasattr(_active.xp, "get_default_memory_pool"):
        _active.xp.get_default_memory_pool().free_all_blocks()
        _active.xp.get_default_pinned_memory_pool().free_all_blocks()


DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "xla", "meta", "hip")     # PyTorch's names


class Device:
    """Where arrays live, as PyTorch's ``torch.device``: ``Device("cpu")``, ``Device("cuda:0")``.

    minires keeps every array on the active backend's device (NumPy: "cpu", CuPy:
    "cuda"); ``x.device`` says which, and ``x.to(device)`` accepts that one only.
    """

    def __init__(self, type, index=None):
        if isinstance(type, str) and ":" in type and index is None:
            type, _, index = type.partition(":")
            index = int(index) if index.isdigit() else index
        if type not in ("cpu", "cuda"):
            raise ValueError(f"device: type must be 'cpu', 'cuda' or 'cuda:N', got {type!r}")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise ValueError(f"device: index must be an int >= 0, got {index!r}")
        self.type, self.index = type, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{index})"

    def __eq__(self, other):
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


def active_device():
    """The device of every array: ``cpu`` with NumPy, ``cuda:0`` with CuPy."""
    return Device("cpu") if is_host() else Device("cuda", 0)


def is_device(value):
    """Whether ``value`` names a device: "cpu", "cuda:1", a Device, a torch.device, an int (a GPU)."""
    if isinstance(value, str):
        return value.split(":")[0] in DEVICE_TYPES
    return isinstance(value, (Device, int)) or isinstance(getattr(value, "type", None), str)


def check_device(device, caller):
    """Accept a device that names the active backend's ("cpu" on NumPy, "cuda" or "cuda:N" on
    CuPy, also as a torch.device or an int N); refuse any other in one sentence naming ``caller``.

    All of minires's arrays live on one device, chosen by ``set_backend``; PyTorch
    code that moves a model or a batch there is then a no-op.
    """
    type = "cuda" if isinstance(device, int) else getattr(device, "type", str(device).split(":")[0])
    if type != active_device().type:
        raise ValueError(f"{caller}: minires keeps every array on the active backend's device "
                         f"({active_device().type!r} with {get_backend()}), not {str(device)!r}; "
                         f"call minires.set_backend('numpy' or 'cupy') before building the model")


# --- fusion --------------------------------------------------------------------------------
class _Fusion:
    """Whether ``fuse`` compiles on the device: on unless MINIRES_FUSION=0 (see ``set_fusion``)."""
    enabled = os.environ.get("MINIRES_FUSION", "1") != "0"


_fusion = _Fusion()


def set_fusion(enabled):
    """Turn fusion on or off (``MINIRES_FUSION=0`` starts with it off); returns the previous state.

    Off, a fused function runs unfused on every backend: one kernel per operation, as the
    plain NumPy code. Use it if a fused kernel misbehaves on a GPU.
    """
    previous, _fusion.enabled = _fusion.enabled, bool(enabled)
    return previous


def fusion_enabled():
    """Whether ``fuse`` compiles its functions on the device (see ``set_fusion``)."""
    return _fusion.enabled


def fuse(function):
    """The decorated function as one kernel on CuPy (``cupy.fuse``); the plain function on NumPy.

    On NumPy, or with fusion off, calling it calls ``function`` unchanged, so the NumPy
    code is the reference and the GPU runs the same Python. ``function`` reaches the array
    module through ``get_array_module()`` and must stay on CuPy's fast fusion path, which
    the strict stand-in device (``minires.testing.strict_device.fuse``) checks:
    element-wise work (operators, ufuncs with ``out=``, ``+=``, ``x[...] = v``), at most
    one reduction (``xp.sum(x, 0)``, ``amax``, ... with an int or tuple axis) after which
    only its result and numbers are combined, no ``keepdims``, ``mean``/``var``, method
    forms (``x.sum()``), ``reshape``, ``matmul`` or ``.shape``, and numbers passed as
    arguments rather than captured (a captured number is baked into the kernel).
    Every returned array has the common shape of the array arguments (CuPy broadcasts
    its outputs to it).
    """
    return _Fused(function)


class _Fused:
    """A function run as the active array module's fused kernel, or plainly (see ``fuse``)."""

    def __init__(self, function):
        self.function = function
        self.__name__, self.__doc__ = function.__name__, function.__doc__
        self.kernels = {}       # the array module's fused version of function, by module name

    def __call__(self, *args):
        xp = _active.xp
        if xp is numpy or not _fusion.enabled:
            return self.function(*args)
        kernel = self.kernels.get(xp.__name__)
        if kernel is None:
            kernel = self.kernels[xp.__name__] = xp.fuse(self.function)
        result = kernel(*args)
        if getattr(kernel, "new_fusion", None) is not None:     # cupy.fuse fell back
            warnings.warn(f"fuse: {self.__name__} left CuPy's fast fusion path and runs as a "
                          "slow kernel; please report it, and set MINIRES_FUSION=0 meanwhile",
                          RuntimeWarning, stacklevel=2)
        return result
