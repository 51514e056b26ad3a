"""minires training checkpoints: one ``.npz`` file, readable without pickle.

A checkpoint holds everything needed to continue a run exactly:

    model/<key>        every entry of model.state_dict() (PyTorch's keys and shapes)
    optimizer/<name>   the optimizer's state arrays (Adam's exp_avg and exp_avg_sq)
    meta               one JSON string: format version, epoch, step, learning rate,
                       optimizer and scheduler numbers, the run's settings and the
                       data generator's state

Arrays are moved to the host to be saved and to the active backend when loaded,
so a checkpoint written on a GPU resumes on a CPU and back. The file is written
to a temporary name and renamed (``atomic_file``), so a crash or a full disk never
leaves a half-written checkpoint under the real name.

A checkpoint is a state to come back to, so by default arrays holding nan or inf
(a diverged run) are refused both when saving and when loading.

Reading trusts nothing in the file. An ``.npz`` is a zip of ``.npy`` files, each a
small text header (dtype and shape) followed by the raw elements. Before any array
is read, every entry's name, header and size are checked against the zip's own
record of its size and against the file's size on disk: a small file cannot make
the reader allocate gigabytes, and no pickle is ever run.
"""
import io
import json
import math
import os
import zipfile

import numpy

from minires import backend
from minires.atomic_file import write_atomically

FORMAT = "minires-checkpoint"
# optimizer state that checkpoints of the first format lack: per-parameter step counts
# (all parameters had every step then, so ``step_count`` stands for them)
NEWER_OPTIMIZER_ENTRIES = ("steps",)
VERSION = 1

# The entries a checkpoint holds: "meta.npy", "model/<key>.npy", "optimizer/<name>.npy".
_GROUPS = ("model/", "optimizer/")
# How zipfile fails on a damaged archive: BadZipFile, EOFError for an entry cut short,
# NotImplementedError and RuntimeError for flags of features minires never writes (encryption, ...),
# ValueError and OverflowError for offsets and names that make no sense.
_ZIP_ERRORS = (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, ValueError,
               OverflowError)
# The bit generators of numpy.random whose state meta["rng_state"] may hold.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class NonFiniteError(ValueError):
    """Arrays hold nan or inf: a diverged state, not one to save or to resume from."""


def nonfinite_keys(state):
    """The keys of the floating-point arrays of ``state`` that hold a nan or an inf, in order.

    Args:
        state: a mapping from names to host arrays or arrays of the active backend, such as
            ``model.state_dict()`` or the result of ``load_torch_state_dict``. (On a GPU each
            check reads one boolean back: a sync per array, fine at a checkpoint, not per step.)
    """
    def finite(array):
        xp = numpy if isinstance(array, numpy.ndarray) else backend.get_array_module()
        return bool(xp.isfinite(array).all())
    return [key for key, array in state.items() if array.dtype.kind == "f" and not finite(array)]


def require_finite(state, where):
    """Raise ``NonFiniteError`` if an array of ``state`` holds nan or inf.

    The message starts with ``where`` (a file name, say) and names how many arrays are
    affected and the first of them:
    ``"last.npz: 214 of 373 arrays hold nan or inf, the first 'model/conv1.weight'"``.
    """
    bad = nonfinite_keys(state)
    if bad:
        raise NonFiniteError(f"{where}: {len(bad)} of {len(state)} arrays hold nan or inf, "
                             f"the first {bad[0]!r}")


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=0, step=0, settings=None,
                    rng_state=None, progress=None, check_finite=True):
    """Write a resumable checkpoint to ``path`` (atomically).

    Args:
        model: a Module. optimizer, scheduler: optional, saved with their state.
        epoch: completed epochs. step: batches done in the next epoch (0 at an epoch end).
        settings: a JSON-serialisable dict (e.g. the command-line arguments).
        rng_state: ``generator.bit_generator.state`` of the data's generator (order and
            augmentation), returned as ``meta["rng_state"]`` by ``load_checkpoint``.
        progress: a JSON-serialisable dict of the caller's own (e.g. the running loss of
            an interrupted epoch); returned under ``meta["progress"]`` by ``load_checkpoint``.
        check_finite: refuse to save when a model or optimizer array holds nan or inf.

    Raises:
        NonFiniteError: (a ValueError) with ``check_finite``, an array holds nan or inf;
            nothing was written.
        OSError: the file could not be written (its errno kept, ``filename`` is ``path``);
            no temporary file is left and an earlier file at ``path`` is unchanged.
    """
    # what load_checkpoint would refuse is refused here, before a byte is written
    for field, value in (("epoch", epoch), ("step", step)):
        if not _is_count(value):
            raise ValueError(f"save_checkpoint: {field} must be an int >= 0, got {value!r}")
    for field, value in (("settings", settings), ("progress", progress)):
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"save_checkpoint: {field} must be a dict or None, got "
                            f"{type(value).__name__}")
    if not hasattr(model, "state_dict"):
        raise TypeError(f"save_checkpoint: model must be a Module, got {type(model).__name__}")
    arrays = {f"model/{key}": backend.to_host(value) for key, value in model.state_dict().items()}
    meta = {"format": FORMAT, "version": VERSION, "epoch": epoch, "step": step,
            "settings": settings or {}}
    if optimizer is not None:
        numbers = {}
        for name, value in optimizer.flat_state_dict().items():
            if hasattr(value, "shape"):
                arrays[f"optimizer/{name}"] = backend.to_host(value)
            else:
                numbers[name] = value
        meta["optimizer"] = numbers
    if scheduler is not None:
        meta["scheduler"] = scheduler.state_dict()
    if rng_state is not None:
        meta["rng_state"] = rng_state
    if progress is not None:
        meta["progress"] = progress
    if check_finite:
        require_finite(arrays, f"{path} not saved")
    arrays["meta"] = numpy.array(json.dumps(meta))
    write_atomically(path, lambda file: numpy.savez(file, **arrays))


def is_checkpoint(path):
    """True if ``path`` is a minires checkpoint (a zip archive holding a ``meta`` entry).

    False for anything else (a PyTorch state dict, a text file, a damaged zip, a folder, a
    file that cannot be opened), so that the caller can go on to ``load_torch_state_dict``,
    whose error then says what the file is not.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return "meta.npy" in archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return False


def load_checkpoint(path, model, optimizer=None, scheduler=None, check_finite=True):
    """Restore ``model`` (and optimizer, scheduler if given) from a checkpoint.

    Everything is checked before the model changes: the file's entries and sizes, the meta
    fields, the optimizer state's shapes and, with ``check_finite``, that no array holds nan
    or inf.

    Returns:
        the meta dict: ``epoch``, ``step`` (ints >= 0), ``settings`` (a dict), ``progress``
        (a dict) if saved, and ``rng_state`` if saved (restore it with
        ``generator.bit_generator.state = meta["rng_state"]``).
    Raises:
        NonFiniteError: (a ValueError) with ``check_finite``, an array holds nan or inf.
        ValueError: the file cannot be read, is not a minires checkpoint, is damaged or does not
            fit the model; the message names the file and the entry or field at fault. Nothing
            was changed.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"load_checkpoint: path must be a path, got {type(path).__name__}")
    if not hasattr(model, "load_state_dict"):
        raise TypeError(f"load_checkpoint: model must be a Module, got {type(model).__name__}")
    contents = _read_arrays(path)
    if "meta" not in contents:
        raise ValueError(f"{path} is a zip archive but not a minires checkpoint (no 'meta' entry)")
    meta = _checked_meta(contents.pop("meta"), path, optimizer, scheduler)
    if check_finite:
        require_finite(contents, path)
    model_state = {key[len("model/"):]: value for key, value in contents.items()
                   if key.startswith("model/")}
    optimizer_state = {key[len("optimizer/"):]: value for key, value in contents.items()
                       if key.startswith("optimizer/")}
    if optimizer is not None:
        _check_optimizer_arrays(optimizer, optimizer_state, path)
    try:
        model.load_state_dict(model_state)
    except RuntimeError as error:   # Module names every missing, unexpected or misshapen key
        raise ValueError(f"{path}: {error}") from None
    if optimizer is not None:
        optimizer.load_flat_state_dict({**meta["optimizer"], **optimizer_state})
    if scheduler is not None and "scheduler" in meta:
        scheduler.load_state_dict(meta["scheduler"])     # checked with the meta
    return meta


def _read_arrays(path):
    """Every entry of the checkpoint ``path`` as {name without .npy: host array}."""
    try:
        disk_bytes = os.path.getsize(path)
        archive = zipfile.ZipFile(path)
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error})") from None
    except _ZIP_ERRORS as error:
        raise ValueError(f"{path}: not a readable zip archive ({error}); the file is truncated "
                         "or corrupt") from None
    with archive:
        entries = archive.infolist()
        _check_entries(entries, disk_bytes, path)
        return {entry.filename[:-len(".npy")]: _read_entry(archive, entry, path)
                for entry in entries}


def _check_entries(entries, disk_bytes, path):
    """Names and sizes, from the zip's directory, before a byte of an entry is read."""
    names = set()
    for entry in entries:
        name = entry.filename
        if not (name == "meta.npy" or (name.startswith(_GROUPS) and name.endswith(".npy"))):
            raise ValueError(f"{path}: unexpected entry {name!r}; a minires checkpoint holds "
                             "only meta.npy, model/*.npy and optimizer/*.npy")
        if name in names:
            raise ValueError(f"{path}: the entry {name!r} appears twice")
        names.add(name)
        # numpy.savez stores entries uncompressed, so each entry's bytes lie in the file as they
        # are: a compressed entry could expand to any size when read.
        if entry.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{path}: the entry {name!r} is compressed; minires checkpoints "
                             "are written uncompressed")
        if entry.compress_size != entry.file_size:
            raise ValueError(f"{path}: the entry {name!r} is stored as {entry.compress_size:,} "
                             f"bytes but records a size of {entry.file_size:,}; the file is "
                             "corrupt")
    # Entries may claim sizes their bytes do not have, or point at the same bytes many times.
    claimed = sum(entry.file_size for entry in entries)
    if claimed > disk_bytes:
        raise ValueError(f"{path}: its entries claim {claimed:,} bytes but the file has only "
                         f"{disk_bytes:,}; the file is corrupt")


def _read_entry(archive, entry, path):
    """One ``.npy`` entry as an array, its header checked against the entry's size."""
    where = f"{path}: the entry {entry.filename!r}"
    try:
        # Stored entries that together fit in the file (checked before): at most the file's bytes.
        with archive.open(entry) as file:
            data = file.read()
    except OSError as error:
        raise ValueError(f"{where} cannot be read ({error.strerror or error})") from None
    except _ZIP_ERRORS as error:
        raise ValueError(f"{where} is damaged ({error}); the file is truncated or "
                         "corrupt") from None
    header_bytes, shape, fortran_order, dtype = _read_npy_header(io.BytesIO(data), where)
    is_meta = entry.filename == "meta.npy"
    if dtype.fields is not None or dtype.shape != () or dtype.itemsize == 0 or (
            (dtype.kind != "U" or shape != ()) if is_meta else dtype.kind not in "biuf"):
        expected = "a text string" if is_meta else "an array of numbers"
        raise ValueError(f"{where} holds dtype {dtype} and shape {shape}, not {expected}")
    # after the dtype: an array of Python objects (a pickle) is not a byte-count problem
    data_bytes = math.prod(shape) * dtype.itemsize
    if header_bytes + data_bytes != len(data):
        raise ValueError(f"{where} has a header for {data_bytes:,} bytes of {dtype} {shape} "
                         f"but {len(data) - header_bytes:,} bytes of data")
    array = numpy.frombuffer(data, dtype, offset=header_bytes)
    return array.reshape(shape, order="F" if fortran_order else "C")


def _read_npy_header(file, where):
    """(header length in bytes, shape, fortran_order, dtype) of the .npy file open at its start."""
    try:
        version = numpy.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran_order, dtype = numpy.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, fortran_order, dtype = numpy.lib.format.read_array_header_2_0(file)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as error:
        raise ValueError(f"{where} has no valid .npy header ({error})") from None
    if min(shape, default=0) < 0:
        raise ValueError(f"{where} has a header with the negative shape {shape}")
    return file.tell(), shape, fortran_order, dtype


def _checked_meta(array, path, optimizer, scheduler):
    """The meta dict, every field the loader and its caller use checked for type and range."""
    def refuse(field, problem):
        raise ValueError(f"{path}: meta {field!r} {problem}")

    try:
        meta = json.loads(str(array))
    except (ValueError, RecursionError) as error:   # RecursionError: absurdly deep nesting
        raise ValueError(f"{path}: meta is not valid JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a minires checkpoint (its meta has no format {FORMAT!r})")
    if not _is_count(meta.get("version")) or meta["version"] > VERSION:
        refuse("version", f"is {meta.get('version')!r}; this minires reads up to {VERSION}")
    for field in ("epoch", "step"):
        if not _is_count(meta.get(field)):
            refuse(field, f"is {meta.get(field)!r}, not an integer >= 0")
    for field in ("settings", "progress"):
        if not isinstance(meta.get(field, {}), dict):
            refuse(field, "is not a JSON object")
    meta.setdefault("settings", {})
    if "rng_state" in meta:
        _check_rng_state(meta["rng_state"], refuse)
    if optimizer is not None:
        if "optimizer" not in meta:
            raise ValueError(f"{path} holds no optimizer state")
        _check_numbers(meta["optimizer"], optimizer.flat_state_dict(), "optimizer", refuse)
    if scheduler is not None and "scheduler" in meta:
        _check_numbers(meta["scheduler"], scheduler.state_dict(), "scheduler", refuse)
        try:
            scheduler.check_state_dict(meta["scheduler"])
        except ValueError as error:     # step_size 0, ...: found before the model changes
            refuse("scheduler", f"is refused by {type(scheduler).__name__} ({error})")
    return meta


def _is_count(value):
    return type(value) is int and value >= 0   # type(): True is an int too, but not a count


def _check_numbers(saved, own, field, refuse):
    """``saved`` holds every number of the state dict ``own``, ints as counts, floats finite."""
    if not isinstance(saved, dict):
        refuse(field, "is not a JSON object")
    for name, value in own.items():
        if hasattr(value, "shape"):
            continue                             # arrays are entries of their own
        got = saved.get(name)
        if isinstance(value, int) and not _is_count(got):
            refuse(field, f"has {name} = {got!r}, not an integer >= 0")
        if isinstance(value, float) and not (type(got) in (int, float) and math.isfinite(got)):
            refuse(field, f"has {name} = {got!r}, not a finite number")


def _check_rng_state(state, refuse):
    """The state must be one numpy.random accepts: tried on a fresh generator of its kind."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        refuse("rng_state", f"names the bit generator {name!r}, not one of "
                            f"{', '.join(_BIT_GENERATORS)}")
    try:
        getattr(numpy.random, name)().state = state
    except (ArithmeticError, LookupError, TypeError, ValueError) as error:
        refuse("rng_state", f"is not a valid {name} state ({error!r})")


def _check_optimizer_arrays(optimizer, saved, path):
    """Every state array of the optimizer is in the file with its shape (checked before loading)."""
    for name, value in optimizer.flat_state_dict().items():
        if not hasattr(value, "shape"):
            continue
        if name not in saved:
            if name in NEWER_OPTIMIZER_ENTRIES:
                continue        # a checkpoint of the first format: the optimizer fills it in
            raise ValueError(f"{path}: the entry 'optimizer/{name}' is missing")
        if saved[name].shape != tuple(value.shape):
            raise ValueError(f"{path}: the entry 'optimizer/{name}' has shape "
                             f"{saved[name].shape}, expected {tuple(value.shape)} (a checkpoint "
                             "of another model?)")
