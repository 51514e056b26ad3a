"""minires training checkpoints: one ``.npz`` file, readable without pickle.

A checkpoint holds everything needed to continue a run exactly:

    model/<key>        every entry of model.state_dict() (PyTorch's keys and shapes)
    optimizer/<name>   the optimizer's state arrays (Adam's exp_avg and exp_avg_sq)
    meta               one JSON string: format version, epoch, step, learning rate,
                       optimizer and scheduler numbers, the run's settings and the
                       data generator's state

Arrays are moved to the host to be saved and to the active backend when loaded,
so a checkpoint written on a GPU resumes on a CPU and back. ``numpy.load`` reads
it with ``allow_pickle=False``: a checkpoint can hold nothing but arrays and text.
The file is written to a temporary name and renamed, so a crash mid-write never
leaves a half-written checkpoint under the real name.
"""
import json
import os
import zipfile

import numpy

from minires import backend

FORMAT = "minires-checkpoint"
VERSION = 1


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=0, step=0, settings=None,
                    rng_state=None, progress=None):
    """Write a resumable checkpoint to ``path`` (atomically).

    Args:
        model: a Module. optimizer, scheduler: optional, saved with their state.
        epoch: completed epochs. step: batches done in the next epoch (0 at an epoch end).
        settings: a JSON-serialisable dict (e.g. the command-line arguments).
        rng_state: ``generator.bit_generator.state`` of the data's generator (order and
            augmentation), returned as ``meta["rng_state"]`` by ``load_checkpoint``.
        progress: a JSON-serialisable dict of the caller's own (e.g. the running loss of
            an interrupted epoch); returned under ``meta["progress"]`` by ``load_checkpoint``.
    """
    arrays = {f"model/{key}": backend.to_host(value) for key, value in model.state_dict().items()}
    meta = {"format": FORMAT, "version": VERSION, "epoch": epoch, "step": step,
            "settings": settings or {}}
    if optimizer is not None:
        numbers = {}
        for name, value in optimizer.state_dict().items():
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
    arrays["meta"] = numpy.array(json.dumps(meta))
    _atomic_savez(path, arrays)


def _atomic_savez(path, arrays):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as file:
            numpy.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def is_checkpoint(path):
    """True if ``path`` is a minires checkpoint (an .npz zip holding a 'meta' entry)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return "meta.npy" in archive.namelist()


def load_checkpoint(path, model, optimizer=None, scheduler=None):
    """Restore ``model`` (and optimizer, scheduler if given) from a checkpoint.

    Returns:
        the meta dict: ``epoch``, ``step``, ``settings``, and ``rng_state`` if saved
        (restore it with ``generator.bit_generator.state = meta["rng_state"]``).
    Raises:
        ValueError if the file is not a minires checkpoint or does not fit the model.
    """
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable minires checkpoint ({error})") from error
    if "meta" not in contents:
        raise ValueError(f"{path} is an .npz file but not a minires checkpoint (no 'meta' entry)")
    meta = json.loads(str(contents["meta"]))
    if meta.get("format") != FORMAT or meta.get("version", 0) > VERSION:
        raise ValueError(f"{path}: unsupported checkpoint format {meta.get('format')!r} "
                         f"version {meta.get('version')}")
    model.load_state_dict({key[len("model/"):]: value for key, value in contents.items()
                           if key.startswith("model/")})
    if optimizer is not None:
        if "optimizer" not in meta:
            raise ValueError(f"{path} holds no optimizer state")
        state = dict(meta["optimizer"])
        state.update({key[len("optimizer/"):]: value for key, value in contents.items()
                      if key.startswith("optimizer/")})
        optimizer.load_state_dict(state)
    if scheduler is not None and "scheduler" in meta:
        scheduler.load_state_dict(meta["scheduler"])
    return meta
