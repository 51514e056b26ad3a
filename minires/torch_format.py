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

A file can also ask for memory it does not hold, so nothing in it is trusted for sizes:

- torch stores every record uncompressed, so a compressed record (which could expand to
  gigabytes) is refused, and the records together may not claim more bytes than the file has;
- a storage's record must hold its numel x itemsize bytes, and only those bytes are read;
- the tensors together may not copy the storages' bytes more than ``_MAX_COPIES`` times (tied
  weights copy them twice), nor more than ``_COPY_ALLOWANCE`` bytes if that is more: a stride-0
  view (``x.expand(4, 3)``) is legitimate, but one of a single number could otherwise ask for
  40000 x 40000 copies of it;
- the pickle is read opcode by opcode (``pickletools.genops``, which runs nothing) before it is
  run, because the unpickler sizes its memo table from the index a PUT opcode names: the 9-byte
  program ``PROTO 2, NONE, LONG_BINPUT 30000000, STOP`` takes 480 MB, and a larger index more.

An optimizer's state (``torch.save(optimizer.state_dict(), path)``) is the same archive holding
plain dicts, lists and numbers around its tensors: ``load_torch_optimizer_state`` reads it with the
same unpickler and checks, then checks its layout (``state`` by parameter index, ``param_groups``).

Files from PyTorch < 1.6 use the legacy format (several pickles back to back, the first one a magic
number); they are detected and refused.
"""
import collections
import io
import math
import os
import pickle
import pickletools
import re
import reprlib
import zipfile

import numpy
from numpy.lib.stride_tricks import as_strided

from minires.atomic_file import write_atomically

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
# Legitimate torch dtypes minires does not read, as a file names them: the typed storages of
# bfloat16 and complex numbers, and the dtypes newer torch pickles by name (torch.uint16,
# torch.float8_e4m3fn, ...) for its _rebuild_tensor_v3.
_UNSUPPORTED_STORAGES = {"BFloat16Storage": "bfloat16", "ComplexHalfStorage": "complex32",
                         "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128"}
_TORCH_DTYPE_NAME = re.compile(r"(u?int|float|complex|bits)[0-9]\w*")

# A legacy file starts with pickle.dumps(_LEGACY_MAGIC): the LONG1 opcode, the length 10, then the
# number's ten little-endian bytes.
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_SIGNATURE = pickle.LONG1 + bytes([10]) + _LEGACY_MAGIC.to_bytes(10, "little")
# A zip archive starts with a local file header, or with the end record when it is empty.
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")

# Tied weights (one storage under two names) make the tensors copy a storage twice; a file whose
# tensors copy its storages more often than this asks for memory its data does not account for.
_MAX_COPIES = 4
# Stride-0 views (``x.expand(4, 3)``, saved as is) make more elements than their storage holds, and
# are legitimate: the tensors together may materialise this many bytes whatever their storages hold.
_COPY_ALLOWANCE = 64 << 20
_MAX_DIMENSIONS = 64                 # NumPy's limit
# How zipfile fails on a damaged archive: BadZipFile, EOFError for a record cut short,
# NotImplementedError and RuntimeError for flags of features torch never uses (encryption, ...),
# ValueError and OverflowError for offsets and names that make no sense.
_ZIP_ERRORS = (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, ValueError,
               OverflowError)


class TorchFormatError(ValueError):
    """The file is not a state dict minires can read; the message names the file and the part."""


class UnsafeCheckpointError(TorchFormatError):
    """The pickle names a global a state dict never needs; it was refused before any call ran."""


def load_torch_state_dict(path_or_file):
    """Read a ``torch.save(model.state_dict(), ...)`` file into NumPy arrays, without torch.

    Args:
        path_or_file: a path (str or os.PathLike), or a seekable binary file object such as
            ``open(path, "rb")`` or ``io.BytesIO``.

    Returns:
        dict[str, numpy.ndarray]: the entries in file order, each a C-contiguous array with the
        tensor's shape and dtype (0-d for scalars such as ``num_batches_tracked``). Arrays are
        returned as stored, nan and inf included: ``checkpoint.require_finite`` refuses them.

    Raises:
        UnsafeCheckpointError: the pickle names a global a state dict does not need (a whole
            pickled model, or a malicious file); nothing from the file was run.
        TorchFormatError: (a ValueError, as is UnsafeCheckpointError) the file is not a zip
            archive, is in the legacy pre-1.6 format, is truncated or corrupt, asks for more memory
            than its data accounts for, holds tensors of a dtype NumPy or minires does not read
            (bfloat16, complex, uint16, float8, ...), or holds something other than a dict of
            tensors. The message names the file and the record or field at fault.
        OSError: the file cannot be opened (missing, a folder, no permission).
    """
    return _open_and_load(path_or_file, "load_torch_state_dict", _as_plain_dict)


def load_torch_optimizer_state(path_or_file):
    """Read a ``torch.save(optimizer.state_dict(), ...)`` file without torch, by the same safe
    reader as ``load_torch_state_dict`` (the same few globals; nothing else in it is run).

    Returns:
        dict: PyTorch's layout, ``{"state": {index: {"step": array, "exp_avg": array, ...}},
        "param_groups": [{"lr": ..., "params": [index, ...]}, ...]}``, its tensors as NumPy
        arrays and its hyper-parameters as Python numbers; ``optimizer.load_state_dict`` takes it.

    Raises:
        UnsafeCheckpointError, TorchFormatError, OSError: as ``load_torch_state_dict``; also
        TorchFormatError when the file holds something other than an optimizer's state dict.
    """
    return _open_and_load(path_or_file, "load_torch_optimizer_state", _as_optimizer_state)


def _open_and_load(path_or_file, where, as_result):
    """``as_result(the unpickled object, name)`` for a path or a seekable binary file."""
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as file:
            return as_result(_load(file, os.fspath(path_or_file)), os.fspath(path_or_file))
    if not all(hasattr(path_or_file, method) for method in ("read", "seek", "tell")):
        raise TypeError(f"{where}: path_or_file must be a path or a seekable binary "
                        f"file, got {type(path_or_file).__name__}")
    name = getattr(path_or_file, "name", "<stream>")
    return as_result(_load(path_or_file, name), name)


def _load(file, name):
    """load_torch_state_dict on an open binary file; name is used in error messages."""
    start = file.tell()
    head = file.read(32)
    size = file.seek(0, io.SEEK_END) - start
    file.seek(start)
    if _LEGACY_SIGNATURE in head:
        raise TorchFormatError(
            f"{name}: this is PyTorch's legacy checkpoint format (saved before PyTorch 1.6), which "
            "minires does not read; convert it by loading and re-saving it with a recent PyTorch: "
            "torch.save(torch.load(old_path), new_path)")
    if not head.startswith(_ZIP_SIGNATURES):
        raise TorchFormatError(f"{name}: not a minires checkpoint or a PyTorch state dict (it is "
                               "not a zip archive)")
    try:
        archive = zipfile.ZipFile(file)
    except _ZIP_ERRORS as err:
        raise TorchFormatError(f"{name}: not a readable zip archive ({err}); the file is "
                               "truncated or corrupt") from None
    with archive:
        if not archive.namelist():
            raise TorchFormatError(f"{name}: the zip archive is empty")
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise TorchFormatError(f"{name}: the record {info.filename} is compressed; torch "
                                       "stores every record uncompressed, so the file was not "
                                       "written by torch.save")
        claimed = sum(info.file_size for info in archive.infolist())
        if claimed > size:
            raise TorchFormatError(f"{name}: its records claim {claimed:,} bytes but the file has "
                                   f"only {size:,}; the file is corrupt")
        prefix = archive.namelist()[0].split("/")[0]
        unpickler = _StateDictUnpickler(archive, prefix, name)
        try:
            state_dict = unpickler.load()
        except (TorchFormatError, MemoryError):  # ours, already naming the file
            raise
        except Exception as err:  # a damaged pickle fails in many ways: EOFError, KeyError, ...
            raise TorchFormatError(f"{name}: {prefix}/data.pkl is corrupt ({err!r})") from err
    return state_dict


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles ``<prefix>/data.pkl``, resolving only the globals a state dict needs."""

    def __init__(self, archive, prefix, name):
        self.archive, self.prefix, self.name = archive, prefix, name
        program = self.read_record("data.pkl")
        self.check_program(program)
        super().__init__(io.BytesIO(program))
        byteorder = b"little"
        if f"{prefix}/byteorder" in archive.namelist():
            byteorder = self.read_record("byteorder", limit=16)
        if byteorder not in (b"little", b"big"):
            raise TorchFormatError(f"{name}: the record {prefix}/byteorder holds {byteorder!r}, "
                                   "not b'little' or b'big'")
        self.byteorder = "<" if byteorder == b"little" else ">"
        self.storages = {}       # key -> 1-D array, read once: views of one storage share it
        self.storage_ids = set()  # id() of each of those arrays, to recognise them as arguments
        self.storage_bytes = 0   # bytes of all storages read
        self.copied_bytes = 0    # bytes of all tensors made from them

    def read_record(self, record, limit=None):
        """The bytes of ``<prefix>/<record>``, at most ``limit`` of them; TorchFormatError if the
        zip lacks it or it is damaged."""
        where = f"{self.name}: the record {self.prefix}/{record}"
        try:
            info = self.archive.getinfo(f"{self.prefix}/{record}")
        except KeyError:
            raise TorchFormatError(f"{where} is missing") from None
        try:
            with self.archive.open(info) as record_file:
                return record_file.read(limit)   # read(None) reads it all
        except _ZIP_ERRORS as err:
            raise TorchFormatError(f"{where} is corrupt ({err})") from None

    def check_program(self, program):
        """Read the pickle without running it: memo indices in range, every global resolvable."""
        memo_size = 0
        try:
            for opcode, argument, _position in pickletools.genops(program):
                if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    # The pickler numbers memo entries 0, 1, 2, ...; a larger index only sizes
                    # the unpickler's memo table.
                    if argument > memo_size:
                        raise TorchFormatError(f"{self.name}: {self.prefix}/data.pkl stores memo "
                                               f"entry {argument:,} after only {memo_size:,}")
                    memo_size = max(memo_size, argument + 1)
                elif opcode.name == "MEMOIZE":
                    memo_size += 1
                elif opcode.name == "GLOBAL":
                    self.find_class(*argument.split(" ", 1))   # refuses now, before any call
        except TorchFormatError:
            raise
        except Exception as err:   # genops: an unknown opcode, a truncated argument, ...
            raise TorchFormatError(f"{self.name}: {self.prefix}/data.pkl is corrupt "
                                   f"({err!r})") from None

    def find_class(self, module, name):
        """The object ``GLOBAL module name`` pushes, for the few names a state dict uses."""
        if (module, name) == ("collections", "OrderedDict"):
            return self.empty_ordered_dict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self.rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):  # state_dict(keep_vars=True)
            return self.rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) in (("torch._utils", "_rebuild_tensor_v3"),
                              ("torch.storage", "UntypedStorage")):
            # Newer torch saves dtypes without a typed storage this way; the GLOBAL torch.<dtype>
            # that follows says which dtype, and is refused below.
            return self.refuse_untyped
        unsupported = _UNSUPPORTED_STORAGES.get(name) if module == "torch" else None
        if unsupported is None and module == "torch" and (name.endswith("Storage")
                                                          or _TORCH_DTYPE_NAME.fullmatch(name)):
            unsupported = name
        if unsupported is not None:
            self.refuse_dtype(unsupported)
        raise UnsafeCheckpointError(
            f"{self.name}: refused the global {module}.{name}; a state dict needs only "
            "OrderedDict, tensors and storages, and nothing from the file was run. If the file "
            "holds a whole pickled model, save its weights instead: "
            "torch.save(model.state_dict(), path)")

    def refuse_untyped(self, *_arguments):
        """Stands for _rebuild_tensor_v3 and UntypedStorage: a tensor of a dtype newer than those
        with a typed storage, named by a later global (reached only if the file names none)."""
        self.refuse_dtype("uint16, uint32, uint64, float8 or other untyped-storage")

    def refuse_dtype(self, dtype):
        """Refuse tensors of a torch dtype minires does not read, naming it."""
        supported = ", ".join(dtype.name for dtype in _STORAGE_NAMES)
        raise TorchFormatError(
            f"{self.name}: holds {dtype} tensors: dtype unsupported (minires reads {supported}); "
            "convert them in PyTorch (for example tensor.float()) and save again")

    def empty_ordered_dict(self, *arguments):
        """``collections.OrderedDict()``: torch pickles it empty, then sets its items."""
        if arguments:   # OrderedDict(many_pairs) could rebuild a large list many times over
            raise TorchFormatError(f"{self.name}: {self.prefix}/data.pkl calls OrderedDict with "
                                   "arguments, which torch never does")
        return collections.OrderedDict()

    def persistent_load(self, pid):
        """The storage ``('storage', dtype, key, location, numel)`` as a 1-D array of numel."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], numpy.dtype) and isinstance(pid[2], str)
                and type(pid[4]) is int and pid[4] >= 0):
            raise TorchFormatError(f"{self.name}: unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        record = f"data/{key}"
        if key in self.storages:
            stored = self.storages[key]
            if (stored.dtype, stored.size) != (dtype, numel):
                raise TorchFormatError(
                    f"{self.name}: the storage {self.prefix}/{record} is read as {numel} "
                    f"{dtype} and as {stored.size} {stored.dtype}; one storage has one dtype")
            return stored
        needed = numel * dtype.itemsize
        data = self.read_record(record, limit=needed)
        if len(data) < needed:
            raise TorchFormatError(f"{self.name}: the record {self.prefix}/{record} holds "
                                   f"{len(data)} bytes but its storage needs {needed}")
        stored = numpy.frombuffer(data, dtype.newbyteorder(self.byteorder))
        stored = self.storages[key] = stored.astype(dtype, copy=False)  # to native byte order
        self.storage_ids.add(id(stored))
        self.storage_bytes += needed
        return stored

    def rebuild_tensor(self, storage, offset, size, stride, *_requires_grad_and_hooks):
        """``torch._utils._rebuild_tensor_v2`` for NumPy: a C-contiguous copy of the view."""
        where = (f"{self.name}: a tensor of size {reprlib.repr(size)}, stride "
                 f"{reprlib.repr(stride)} at offset {reprlib.repr(offset)}")
        if id(storage) not in self.storage_ids:
            raise TorchFormatError(f"{where} is not built on a storage of the file")
        size, stride = tuple(size), tuple(stride)
        if not (all(type(n) is int for n in (offset,) + size + stride)
                and len(size) == len(stride) <= _MAX_DIMENSIONS):
            raise TorchFormatError(f"{where} is malformed")
        # as_strided trusts its arguments and would read memory past the storage: check the extent.
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if min((offset,) + size + stride) < 0 or (0 not in size and last >= storage.size):
            raise TorchFormatError(f"{where} does not fit in its storage of {storage.size} "
                                   "elements")
        # The copy below allocates numel elements whatever the strides, so a view with a stride of
        # 0 (an expanded tensor) makes more elements than its storage holds: what is bounded is the
        # bytes all tensors materialise, counted before each copy is made.
        self.copied_bytes += math.prod(size) * storage.itemsize
        if self.copied_bytes > max(_MAX_COPIES * self.storage_bytes, _COPY_ALLOWANCE):
            raise TorchFormatError(f"{self.name}: its tensors copy the storages' "
                                   f"{self.storage_bytes:,} bytes more than {_MAX_COPIES} times "
                                   f"over (and more than {_COPY_ALLOWANCE:,} bytes in all); the "
                                   "file is corrupt or crafted")
        strides = [s * storage.itemsize for s in stride]  # NumPy counts strides in bytes
        view = as_strided(storage[offset:], shape=size, strides=strides)
        return view.copy()

    def rebuild_parameter(self, data, *_requires_grad_and_hooks):
        """``torch._utils._rebuild_parameter``: a Parameter is just its data here."""
        return data


def _as_plain_dict(state_dict, name):
    """The unpickled OrderedDict as a plain dict (torch's ``_metadata`` attribute dropped)."""
    if not isinstance(state_dict, dict):
        raise TorchFormatError(f"{name}: holds an object of type {type(state_dict).__name__}, not "
                               "a state dict; save one with torch.save(model.state_dict(), path)")
    for key, value in state_dict.items():
        if not (isinstance(key, str) and isinstance(value, numpy.ndarray)):
            raise TorchFormatError(f"{name}: the entry {key!r} is of type {type(value).__name__}, "
                                   "not a tensor; minires reads plain state dicts, saved with "
                                   "torch.save(model.state_dict(), path)")
    return dict(state_dict)


def _as_optimizer_state(state, name):
    """The unpickled object as an optimizer's state dict: plain dicts, lists and numbers."""
    def refuse(field, what):
        raise TorchFormatError(f"{name}: {field} is {what}; an optimizer's state dict (saved with "
                               "torch.save(optimizer.state_dict(), path)) was expected")

    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        refuse("the object", f"a {type(state).__name__} with the keys "
               f"{sorted(map(repr, state)) if isinstance(state, dict) else 'none'}")
    if not isinstance(state["state"], dict):
        refuse("state", f"a {type(state['state']).__name__}, not a dict by parameter index")
    for index, entry in state["state"].items():
        if type(index) is not int or not isinstance(entry, dict) or not all(
                isinstance(key, str) and (isinstance(value, numpy.ndarray) or _is_plain(value))
                for key, value in entry.items()):
            refuse(f"state[{index!r}]", "not a dict from names to tensors and numbers")
    if not isinstance(state["param_groups"], list):
        refuse("param_groups", f"a {type(state['param_groups']).__name__}, not a list")
    for number, group in enumerate(state["param_groups"]):
        if not (isinstance(group, dict) and all(isinstance(key, str) and _is_plain(value)
                                                for key, value in group.items())
                and isinstance(group.get("params"), list)
                and all(type(index) is int for index in group["params"])):
            refuse(f"param_groups[{number}]", "not a dict of numbers with a list of parameter "
                   "indices under 'params'")
    return {"state": {index: dict(entry) for index, entry in state["state"].items()},
            "param_groups": [dict(group) for group in state["param_groups"]]}


def _is_plain(value):
    """A hyper-parameter: None, a bool, number or string, or a list or tuple of them."""
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    return value is None or isinstance(value, (bool, int, float, str))


def save_torch_state_dict(state_dict, path):
    """Write arrays as a PyTorch state-dict file that ``torch.load(path)`` reads.

    The file loads with ``torch.load(path, weights_only=True)`` (torch's default) and feeds
    ``model.load_state_dict``. It is written to a temporary file in the same folder, then renamed
    over ``path`` (``atomic_file``): a crash or a full disk never leaves a half-written checkpoint
    under that name.

    Args:
        state_dict: a mapping from names (str) to arrays (anything ``numpy.asarray`` accepts) of
            dtype float32, float64, float16, int64, int32, int16, int8, uint8 or bool.
        path: the file to write (str or os.PathLike). The zip's top folder is its base name
            without extension, as ``torch.save`` names it.

    Raises:
        ValueError: an array has another dtype; nothing is written.
        OSError: the file could not be written (its errno kept, ``filename`` is ``path``); no
            temporary file is left and an earlier file at ``path`` is unchanged.
    """
    if not hasattr(state_dict, "items"):
        raise TypeError(f"save_torch_state_dict: state_dict must be a mapping from names to arrays, "
                        f"got {type(state_dict).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"save_torch_state_dict: path must be a path, got {type(path).__name__}")
    arrays = {name: numpy.asarray(value) for name, value in state_dict.items()}
    for name, array in arrays.items():
        if array.dtype not in _STORAGE_NAMES:
            raise ValueError(f"cannot save {name!r}: dtype {array.dtype} is not one of "
                             f"{', '.join(dtype.name for dtype in _STORAGE_NAMES)}")
    prefix = os.path.splitext(os.path.basename(os.fspath(path)))[0]

    def write(file):
        with zipfile.ZipFile(file, "w") as archive:  # stored uncompressed, as torch does
            archive.writestr(f"{prefix}/data.pkl", _state_dict_pickle(arrays))
            for key, array in enumerate(arrays.values()):
                little_endian = array.astype(array.dtype.newbyteorder("<"), copy=False)
                archive.writestr(f"{prefix}/data/{key}", little_endian.tobytes())  # C order
            archive.writestr(f"{prefix}/byteorder", "little")
            archive.writestr(f"{prefix}/version", "3\n")

    write_atomically(path, write)


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
