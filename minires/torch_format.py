"""Read and write PyTorch state-dict files (``torch.save(model.state_dict(), path)``) without torch.

The format (PyTorch >= 1.6) is an uncompressed zip archive whose entries all sit in one top folder,
the *prefix*: the file's base name when torch saved to a path, ``archive`` when it saved to a
stream.

    <prefix>/data.pkl      a pickle of the state dict: an OrderedDict from names to tensors
    <prefix>/data/0, 1, …  one record per storage: the raw bytes of a flat run of elements
    <prefix>/byteorder     ``little`` or ``big`` (files from older torch lack it: read as little)
    <prefix>/version       the format version; torch refuses a file without it

A pickle is a small stack-machine program: ``GLOBAL module name`` pushes a Python object found by
its name, ``REDUCE`` calls it with the tuple above it, ``BUILD`` sets attributes on an object. The
pickle does not hold the tensors' bytes. Each tensor is the call

    torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)

whose ``storage`` is a *persistent id*: a tuple the pickle hands to the loader in place of an
object, ``('storage', torch.FloatStorage, '0', 'cpu', numel)`` meaning "numel float32 values in
data/0". Element [i, j] of a 2-D tensor is storage[offset + i * stride[0] + j * stride[1]], so
views (a transposed weight, a slice of a bigger tensor) share one storage.

Unpickling can call any function a file names (``os.system`` too), so the reader resolves only the
few globals a state dict needs and refuses every other name before anything is called.

Files from PyTorch < 1.6 use the legacy format (several pickles back to back, the first one a magic
number); they are detected and refused.
"""
import collections
import io
import os
import pickle
import pickletools
import zipfile

import numpy
from numpy.lib.stride_tricks import as_strided

# Storage types under the names torch pickles them, and the NumPy dtype of their elements.
_STORAGE_DTYPES = {
    "FloatStorage": numpy.dtype(numpy.float32),
    "DoubleStorage": numpy.dtype(numpy.float64),
    "HalfStorage": numpy.dtype(numpy.float16),
    "LongStorage": numpy.dtype(numpy.int64),
    "IntStorage": numpy.dtype(numpy.int32),
    "ShortStorage": numpy.dtype(numpy.int16),
    "CharStorage": numpy.dtype(numpy.int8),
    "ByteStorage": numpy.dtype(numpy.uint8),
    "BoolStorage": numpy.dtype(numpy.bool_),
}
_STORAGE_NAMES = {dtype: name for name, dtype in _STORAGE_DTYPES.items()}

# A legacy file starts with pickle.dumps(_LEGACY_MAGIC): the LONG1 opcode, the length 10, then the
# number's ten little-endian bytes.
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_SIGNATURE = pickle.LONG1 + bytes([10]) + _LEGACY_MAGIC.to_bytes(10, "little")


class UnsafeCheckpointError(ValueError):
    """The pickle names a global a state dict never needs; it was refused before any call ran."""


def load_torch_state_dict(path_or_file):
    """Read a ``torch.save(model.state_dict(), ...)`` file into NumPy arrays, without torch.

    Args:
        path_or_file: a path (str or os.PathLike), or a seekable binary file object such as
            ``open(path, "rb")`` or ``io.BytesIO``.

    Returns:
        dict[str, numpy.ndarray]: the entries in file order, each a C-contiguous array with the
        tensor's shape and dtype (0-d for scalars such as ``num_batches_tracked``).

    Raises:
        UnsafeCheckpointError: the pickle names a global a state dict does not need (a whole
            pickled model, or a malicious file); nothing from the file was run.
        ValueError: the file is in the legacy pre-1.6 format, is truncated or corrupt, holds
            bfloat16 tensors, or holds something other than a dict of tensors. The message names
            the file.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as file:
            return _load(file, os.fspath(path_or_file))
    return _load(path_or_file, getattr(path_or_file, "name", "<stream>"))


def _load(file, name):
    """load_torch_state_dict on an open binary file; name is used in error messages."""
    start = file.tell()
    head = file.read(32)
    file.seek(start)
    if _LEGACY_SIGNATURE in head:
        raise ValueError(
            f"{name}: this is PyTorch's legacy checkpoint format (saved before PyTorch 1.6), which "
            "minires does not read; convert it by loading and re-saving it with a recent PyTorch: "
            "torch.save(torch.load(old_path), new_path)")
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{name}: not a readable PyTorch zip checkpoint ({err}); "
                         "the file is truncated or corrupt") from None
    with archive:
        if not archive.namelist():
            raise ValueError(f"{name}: the zip archive is empty")
        prefix = archive.namelist()[0].split("/")[0]
        unpickler = _StateDictUnpickler(archive, prefix, name)
        try:
            state_dict = unpickler.load()
        except ValueError:  # ours, already naming the file (UnsafeCheckpointError too)
            raise
        except Exception as err:  # a damaged pickle fails in many ways: EOFError, KeyError, ...
            raise ValueError(f"{name}: {prefix}/data.pkl is corrupt ({err!r})") from err
    return _as_plain_dict(state_dict, name)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles ``<prefix>/data.pkl``, resolving only the globals a state dict needs."""

    def __init__(self, archive, prefix, name):
        self.archive, self.prefix, self.name = archive, prefix, name
        super().__init__(io.BytesIO(self.read_record("data.pkl")))
        byteorder = "little"
        if f"{prefix}/byteorder" in archive.namelist():
            byteorder = self.read_record("byteorder").decode()
        if byteorder not in ("little", "big"):
            raise ValueError(f"{name}: unknown byte order {byteorder!r}")
        self.byteorder = "<" if byteorder == "little" else ">"
        self.storages = {}  # key -> 1-D array, read once: views of one storage share it

    def read_record(self, record):
        """The bytes of ``<prefix>/<record>``; ValueError if the zip lacks it or it is damaged."""
        where = f"{self.name}: the record {self.prefix}/{record}"
        try:
            return self.archive.read(f"{self.prefix}/{record}")
        except KeyError:
            raise ValueError(f"{where} is missing") from None
        except zipfile.BadZipFile as err:
            raise ValueError(f"{where} is corrupt ({err})") from None

    def find_class(self, module, name):
        """The object ``GLOBAL module name`` pushes, for the few names a state dict uses."""
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self.rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):  # state_dict(keep_vars=True)
            return self.rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ("torch", "BFloat16Storage"):
            raise ValueError(f"{self.name}: holds bfloat16 tensors, which NumPy has no dtype for; "
                             "convert them in PyTorch (tensor.float()) and save again")
        raise UnsafeCheckpointError(
            f"{self.name}: refused the global {module}.{name}; a state dict needs only "
            "OrderedDict, tensors and storages, and nothing from the file was run. If the file "
            "holds a whole pickled model, save its weights instead: "
            "torch.save(model.state_dict(), path)")

    def persistent_load(self, pid):
        """The storage ``('storage', dtype, key, location, numel)`` as a 1-D array of numel."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], numpy.dtype) and isinstance(pid[4], int) and pid[4] >= 0):
            raise ValueError(f"{self.name}: unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        if key not in self.storages:
            data = self.read_record(f"data/{key}")
            needed = numel * dtype.itemsize
            if len(data) < needed:
                raise ValueError(f"{self.name}: the record {self.prefix}/data/{key} holds "
                                 f"{len(data)} bytes but its storage needs {needed}")
            stored = numpy.frombuffer(data, dtype.newbyteorder(self.byteorder), count=numel)
            self.storages[key] = stored.astype(dtype, copy=False)  # to native byte order
        return self.storages[key]

    def rebuild_tensor(self, storage, offset, size, stride, *_requires_grad_and_hooks):
        """``torch._utils._rebuild_tensor_v2`` for NumPy: a C-contiguous copy of the view."""
        size, stride = tuple(size), tuple(stride)
        # as_strided trusts its arguments and would read memory past the storage: check the extent.
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if (len(size) != len(stride) or min((offset,) + size + stride) < 0
                or (0 not in size and last >= storage.size)):
            raise ValueError(f"{self.name}: a tensor of size {size}, stride {stride} at offset "
                             f"{offset} does not fit in its storage of {storage.size} elements")
        strides = [s * storage.itemsize for s in stride]  # NumPy counts strides in bytes
        view = as_strided(storage[offset:], shape=size, strides=strides)
        return view.copy()

    def rebuild_parameter(self, data, *_requires_grad_and_hooks):
        """``torch._utils._rebuild_parameter``: a Parameter is just its data here."""
        return data


def _as_plain_dict(state_dict, name):
    """The unpickled OrderedDict as a plain dict (torch's ``_metadata`` attribute dropped)."""
    if not isinstance(state_dict, dict):
        raise ValueError(f"{name}: holds an object of type {type(state_dict).__name__}, not a "
                         "state dict; save one with torch.save(model.state_dict(), path)")
    for key, value in state_dict.items():
        if not (isinstance(key, str) and isinstance(value, numpy.ndarray)):
            raise ValueError(f"{name}: the entry {key!r} is of type {type(value).__name__}, "
                             "not a tensor; minires reads plain state dicts, saved with "
                             "torch.save(model.state_dict(), path)")
    return dict(state_dict)


def save_torch_state_dict(state_dict, path):
    """Write arrays as a PyTorch state-dict file that ``torch.load(path)`` reads.

    The file loads with ``torch.load(path, weights_only=True)`` (torch's default) and feeds
    ``model.load_state_dict``. It is written to a temporary file in the same folder, then renamed
    over ``path``: a crash never leaves a half-written checkpoint under that name.

    Args:
        state_dict: a mapping from names (str) to arrays (anything ``numpy.asarray`` accepts) of
            dtype float32, float64, float16, int64, int32, int16, int8, uint8 or bool.
        path: the file to write (str or os.PathLike). The zip's top folder is its base name
            without extension, as ``torch.save`` names it.

    Raises:
        ValueError: an array has another dtype; nothing is written.
    """
    arrays = {name: numpy.asarray(value) for name, value in state_dict.items()}
    for name, array in arrays.items():
        if array.dtype not in _STORAGE_NAMES:
            raise ValueError(f"cannot save {name!r}: dtype {array.dtype} is not one of "
                             f"{', '.join(dtype.name for dtype in _STORAGE_NAMES)}")
    path = os.fspath(path)
    prefix = os.path.splitext(os.path.basename(path))[0]
    temporary = f"{path}.{os.getpid()}.tmp"
    file = open(temporary, "xb")  # "x": fail rather than overwrite another writer's temporary
    try:
        with file:
            with zipfile.ZipFile(file, "w") as archive:  # stored uncompressed, as torch does
                archive.writestr(f"{prefix}/data.pkl", _state_dict_pickle(arrays))
                for key, array in enumerate(arrays.values()):
                    little_endian = array.astype(array.dtype.newbyteorder("<"), copy=False)
                    archive.writestr(f"{prefix}/data/{key}", little_endian.tobytes())  # C order
                archive.writestr(f"{prefix}/byteorder", "little")
                archive.writestr(f"{prefix}/version", "3\n")
            file.flush()
            os.fsync(file.fileno())  # the bytes reach the disk before the rename makes them visible
        os.replace(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise


def _state_dict_pickle(arrays):
    """The bytes of ``data.pkl`` for arrays: one OrderedDict of ``_rebuild_tensor_v2`` calls.

    ``pickle.Pickler`` writes a global only after importing it to check the name, and minires never
    imports torch, so the program is assembled opcode by opcode. The key of array number k is
    ``str(k)``, its storage record ``data/<k>``. Plain values come from ``_value``. The program:

        OrderedDict()  MARK  name_0 tensor_0  name_1 tensor_1 ...  SETITEMS  STOP
        tensor_k = _rebuild_tensor_v2(persistent id of storage k, 0, shape, strides, False,
                                      OrderedDict())
    """
    ordered_dict = _global("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
    program = pickle.PROTO + bytes([2]) + ordered_dict + pickle.MARK
    for key, (name, array) in enumerate(arrays.items()):
        storage = (pickle.MARK + _value("storage") + _global("torch", _STORAGE_NAMES[array.dtype])
                   + _value(str(key)) + _value("cpu") + _value(array.size) + pickle.TUPLE)
        arguments = (storage + pickle.BINPERSID + _value(0) + _value(array.shape)
                     + _value(_c_strides(array.shape)) + _value(False) + ordered_dict)
        program += (_value(str(name)) + _global("torch._utils", "_rebuild_tensor_v2")
                    + pickle.MARK + arguments + pickle.TUPLE + pickle.REDUCE)
    return program + pickle.SETITEMS + pickle.STOP


def _global(module, name):
    """The GLOBAL opcode: push the object ``module.name`` (resolved by the reader)."""
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _value(obj):
    """Opcodes that push one plain value (a str, an int, False or a tuple of ints)."""
    # optimize drops the unused memo PUTs; [2:-1] drops the PROTO header and the STOP
    return pickletools.optimize(pickle.dumps(obj, protocol=2))[2:-1]


def _c_strides(shape):
    """Element strides of a C-contiguous array: each axis steps over the product of later sizes."""
    return tuple(int(numpy.prod(shape[axis + 1:])) for axis in range(len(shape)))
