"""Write a file so that a crash or a full disk never leaves it half-written.

    write_atomically("checkpoints/last.npz", lambda file: numpy.savez(file, **arrays))

The bytes go to a temporary file beside the target (the same folder, so the same file system),
are flushed to the disk, and only then renamed over the target. A rename within one file system
is atomic: the target holds the old file or the new one, whole, never a mixture. When the write
fails (a full disk, an exception, Ctrl-C) the temporary file is deleted and the target keeps its
previous content.

A process killed outright (SIGKILL, the out-of-memory killer) cannot delete its temporary file.
The next write of the same target deletes every ``<target>.*.tmp`` beside it: two processes
writing one file at the same time would garble it anyway, so any such file is a leftover. A
program can delete those of all its files at its start (``remove_leftovers``).
"""
import contextlib
import glob
import os


def write_atomically(path, write):
    """Create or replace ``path`` with what ``write(file)`` writes to an open binary file.

    Args:
        path: the file (str or os.PathLike); its folder is created if needed.
        write: a function of one argument, the binary file to write the content to.

    Raises:
        OSError: the folder or the file cannot be written (a full or read-only disk, a file where
            the folder should be). It keeps the errno of the failure (``ENOSPC``, ``EROFS``, ...)
            and its ``filename`` is ``path``. No temporary file is left and ``path`` is unchanged.
        Whatever ``write`` raises, after the same clean-up.
    """
    path = os.fspath(path)
    # A random part makes the name unique even when every run has the same process id (PID 1 in
    # a container), so a leftover of an earlier run can never block this write.
    temporary = f"{path}.{os.urandom(4).hex()}.tmp"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        remove_leftovers(glob.escape(path))
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())   # on the disk before the rename makes them visible
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):  # the original error is the one to report
            os.remove(temporary)
        if isinstance(error, OSError) and error.errno is not None:
            # Name the file the caller asked for, not the temporary one; OSError(errno, ...) picks
            # the matching subclass (PermissionError for EACCES, ...).
            raise OSError(error.errno, error.strerror, path) from error
        raise


def remove_leftovers(pattern):
    """Delete the temporary files that killed writes of the files matching ``pattern`` left behind.

    ``pattern`` is a glob of targets (``"checkpoints/resnet50_epoch*.npz"``); a write of one
    target does it for that target, and a program can do it at its start for every file it
    writes, so that a file a killed run never wrote again leaves nothing behind either.
    Returns the paths deleted.
    """
    removed = []
    for leftover in glob.glob(os.fspath(pattern) + ".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
            removed.append(leftover)
    return removed
