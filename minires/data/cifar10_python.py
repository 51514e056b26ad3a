"""CIFAR-10's "python version" (``cifar-10-batches-py/``, what torchvision downloads), read
without running pickle.

The folder holds six batch files and one meta file, each a dict pickled by Python 2 (protocol 2),
whose strings are Python 2 ``str``, so bytes here:

    data_batch_1 .. data_batch_5, test_batch
        {b"batch_label": b"training batch 1 of 5",
         b"labels":      [6, 9, 9, ...]                 N ints in 0..9
         b"data":        uint8 array (N, 3072)          per image 1,024 R, then G, then B bytes
         b"filenames":   [b"leptodactylus_pentadactylus_s_000004.png", ...]}
    batches.meta
        {b"label_names": [b"airplane", ..., b"truck"], b"num_cases_per_batch": 10000,
         b"num_vis": 3072}

Unpickling runs whatever a file names, so these files are never unpickled. A pickle is a program
for a small stack machine; ``pickletools.genops`` reads its instructions without running any, and
``_run`` below carries out only the few that these files use, building the dicts, lists, bytes
and ints itself. The one array is pickled by NumPy as two calls,

    _reconstruct(ndarray, (0,), b"b")          then BUILD with (1, (N, 3072), dtype, False, bytes)
    dtype(b"u1", 0, 1)                         then BUILD with (3, b"|", None, ...)

and the reader accepts exactly these, making the array with ``numpy.frombuffer``. Any other
instruction or name is refused, and a file larger than the real ones is refused before it is read.

Dimensions: N images, C = 3 channels (R, G, B), H = W = 32 pixels.
"""
import os
import pickletools
from collections import namedtuple

import numpy

PYTHON_FOLDER_NAME = "cifar-10-batches-py"
PYTHON_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
PYTHON_TEST_FILE = "test_batch"
PYTHON_META_FILE = "batches.meta"
PYTHON_FILES = PYTHON_TRAIN_FILES + (PYTHON_TEST_FILE, PYTHON_META_FILE)

_MAX_IMAGES = 10_000                 # per batch file, as in the official files
_PIXELS = 3 * 32 * 32                # 3,072 bytes per image
# A batch file is its 30,720,000 pixel bytes plus about 400 KB of labels, file names and opcodes,
# and about 30,000 instructions (a label, a file name and its memo entry per image).
_MAX_FILE_BYTES = _MAX_IMAGES * _PIXELS + (2 << 20)
_MAX_INSTRUCTIONS = 100_000

# What GLOBAL pushes: a name, never the object it names.
_Name = namedtuple("_Name", "module name")
_RECONSTRUCT = _Name("numpy.core.multiarray", "_reconstruct")
_NDARRAY = _Name("numpy", "ndarray")
_DTYPE = _Name("numpy", "dtype")


class _Pending:
    """An array or dtype whose REDUCE was seen; its BUILD that follows gives its content."""

    def __init__(self, kind):
        self.kind = kind       # "array" or "dtype"


def read_python_batch(path):
    """Read one batch file of the python version.

    Args:
        path: the file (``data_batch_1`` .. ``data_batch_5`` or ``test_batch``).

    Returns:
        images: uint8 (N, 3, 32, 32), channels R, G, B, rows top to bottom.
        labels: int64 (N,), values 0..9.

    Raises:
        ValueError: the file is not such a batch; the message names it and what is wrong.
        OSError: the file cannot be read.
    """
    batch = _load(path)
    if not (isinstance(batch, dict) and isinstance(batch.get(b"data"), numpy.ndarray)
            and isinstance(batch.get(b"labels"), list)):
        raise ValueError(f"{path}: not a CIFAR-10 batch (a dict with b'data' and b'labels')")
    data, labels = batch[b"data"], batch[b"labels"]
    if data.ndim != 2 or data.shape[1] != _PIXELS or not 1 <= len(data) <= _MAX_IMAGES:
        raise ValueError(f"{path}: b'data' has shape {data.shape}, expected (N, {_PIXELS}) "
                         f"with N from 1 to {_MAX_IMAGES:,}")
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(labels):,} labels for {len(data):,} images")
    bad = [i for i, label in enumerate(labels) if type(label) is not int or not 0 <= label <= 9]
    if bad:
        raise ValueError(f"{path}: image {bad[0]} has label {labels[bad[0]]!r}, expected "
                         f"0..9 ({len(bad)} bad label(s))")
    images = data.reshape(-1, 3, 32, 32).copy()        # (N, 3, 32, 32); a writable copy
    return images, numpy.array(labels, dtype=numpy.int64)


def read_python_label_names(path):
    """The ``label_names`` of ``batches.meta``, as str; ValueError if it has none."""
    meta = _load(path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not (isinstance(names, list) and all(isinstance(name, bytes) for name in names)):
        raise ValueError(f"{path}: not CIFAR-10's batches.meta (a dict with a list "
                         "b'label_names')")
    return [name.decode("latin-1") for name in names]


def _load(path):
    """The value the pickle at ``path`` builds, computed without running it."""
    size = os.path.getsize(path)
    if size > _MAX_FILE_BYTES:
        raise ValueError(f"{path}: {size:,} bytes, more than a CIFAR-10 batch file ever "
                         f"holds ({_MAX_FILE_BYTES:,})")
    with open(path, "rb") as file:
        program = file.read(_MAX_FILE_BYTES)
    try:
        return _run(program)
    except _Refused as refusal:
        raise ValueError(f"{path}: {refusal}") from None
    except (ValueError, IndexError, KeyError, TypeError) as failure:
        # genops on a damaged program, an empty stack, an unknown memo key, ...
        raise ValueError(f"{path}: not a readable CIFAR-10 pickle ({failure!r})") from None


class _Refused(Exception):
    """An instruction or name the CIFAR-10 files never use."""


def _run(program):
    """Carry out the pickle ``program`` for the instructions the CIFAR-10 files use."""
    stack, marks, memo = [], [], {}

    def pop_mark():
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    for count, (opcode, argument, _position) in enumerate(pickletools.genops(program)):
        if count == _MAX_INSTRUCTIONS:   # each one may add an item to a list: bound them
            raise _Refused(f"more than {_MAX_INSTRUCTIONS:,} instructions")
        name = opcode.name
        if name == "PROTO":
            continue
        if name == "STOP":
            return stack.pop()
        if name in ("BINSTRING", "SHORT_BINSTRING"):   # a Python 2 str; genops decodes latin-1
            stack.append(argument.encode("latin-1"))
        elif name in ("BININT", "BININT1", "BININT2"):
            stack.append(argument)
        elif name in ("NONE", "NEWTRUE", "NEWFALSE"):
            stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[name])
        elif name in ("EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE"):
            stack.append({"EMPTY_DICT": {}, "EMPTY_LIST": [], "EMPTY_TUPLE": ()}[name])
        elif name == "MARK":
            marks.append(len(stack))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            count = int(name[-1])
            items = tuple(stack[-count:])
            del stack[-count:]
            stack.append(items)
        elif name == "TUPLE":
            stack.append(tuple(pop_mark()))
        elif name in ("BINPUT", "LONG_BINPUT"):
            memo[argument] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET"):
            stack.append(memo[argument])
        elif name in ("APPEND", "APPENDS"):
            items = pop_mark() if name == "APPENDS" else [stack.pop()]
            _of_type(stack[-1], list).extend(items)
        elif name in ("SETITEM", "SETITEMS"):
            items = pop_mark() if name == "SETITEMS" else stack[-2:]
            if name == "SETITEM":
                del stack[-2:]
            _of_type(stack[-1], dict).update(zip(items[::2], items[1::2]))
        elif name == "GLOBAL":
            module, _, attribute = argument.partition(" ")
            if _Name(module, attribute) not in (_RECONSTRUCT, _NDARRAY, _DTYPE):
                raise _Refused(f"refused the global {module}.{attribute}: a CIFAR-10 batch "
                               "holds only bytes, ints, lists and one uint8 array")
            stack.append(_Name(module, attribute))
        elif name == "REDUCE":
            arguments = stack.pop()
            stack[-1] = _reduce(stack[-1], arguments)
        elif name == "BUILD":
            state = stack.pop()
            stack[-1] = _build(stack[-1], state)
        else:
            raise _Refused(f"the instruction {name} is not one a CIFAR-10 batch uses")
    raise _Refused("the pickle has no STOP")


def _of_type(value, kind):
    if type(value) is not kind:
        raise _Refused(f"adds items to a {type(value).__name__}, not a {kind.__name__}")
    return value


def _reduce(function, arguments):
    """The two calls NumPy pickles for an array; the values come with the BUILD that follows."""
    if function == _RECONSTRUCT and arguments == (_NDARRAY, (0,), b"b"):
        return _Pending("array")
    if function == _DTYPE and arguments == (b"u1", 0, 1):
        return _Pending("dtype")
    raise _Refused(f"refused the call {function} with {arguments!r:.80}")


def _build(pending, state):
    """The uint8 dtype or array that BUILD completes."""
    if isinstance(pending, _Pending) and pending.kind == "dtype":
        if not (type(state) is tuple and len(state) == 8 and state[1] in (b"|", b"<", b"=")):
            raise _Refused(f"the uint8 dtype has an unexpected state {state!r:.80}")
        return numpy.dtype(numpy.uint8)
    if isinstance(pending, _Pending) and pending.kind == "array":
        if not (type(state) is tuple and len(state) == 5 and state[2] == numpy.uint8
                and state[3] is False and type(state[4]) is bytes and type(state[1]) is tuple
                and len(state[1]) == 2 and all(type(n) is int and n >= 0 for n in state[1])):
            raise _Refused(f"the array has an unexpected state {state!r:.80}")
        shape, raw = state[1], state[4]
        if shape[0] * shape[1] != len(raw):
            raise _Refused(f"the array of shape {shape} has {len(raw):,} bytes")
        return numpy.frombuffer(raw, dtype=numpy.uint8).reshape(shape)
    raise _Refused(f"BUILD on a {type(pending).__name__}")
