"""Extracting a gzipped tar archive safely: only the names and sizes it should hold, no link, no
path outside its folder, its gzip checksum always checked.

    extract_archive(path, "data", folder_name="cifar-10-batches-bin",
                    member_limits={"data_batch_1.bin": 30_730_000, ...},
                    required=("data_batch_1.bin", ...), max_bytes=185 << 20, max_members=16)

Nothing that arrives is trusted for its size: a member may have at most the bytes its limit gives,
the decompressed stream may not exceed ``max_bytes``, and the number of members is capped (tarfile
keeps every header it has read). The stream is read to its end, so gzip checks the CRC and the
length of everything it unpacked even without an md5. Files are written into a temporary folder
and renamed into place at the end, so an interrupted extraction never leaves a folder that looks
complete. ``minires.data.cifar10.extract`` calls it with the facts of CIFAR-10's archive.

Errors: ``DatasetError`` (a ``ValueError``) when files on disk are missing, malformed or unsafe,
or the data folder cannot hold them; the message is one line naming the file.
"""
import gzip
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from .downloading import CHUNK_BYTES, cannot_write, progress_bar


class DatasetError(ValueError):
    """A file on disk is missing or is not a valid, safe dataset file, or the data folder
    cannot hold the extracted files."""


def extract_archive(archive_path, data_dir, folder_name, member_limits, required, max_bytes,
                    max_members, progress=None):
    """Extract the gzipped tar ``archive_path`` into ``data_dir/folder_name/``, safely.

    Only the names of ``member_limits`` inside ``folder_name/`` are accepted, each with at
    most the bytes its limit gives; any member that is a link, a device, an absolute path, a
    path with ``..``, outside that folder, with another name, too large or repeated is refused
    before a byte of it is written. An existing ``folder_name/`` (for example an incomplete
    one) is replaced.

    Args:
        member_limits: {file name: most bytes}, every file the archive may hold.
        required: the file names it must hold.
        max_bytes: the most bytes the decompressed tar stream may have.
        max_members: the most members (files and folders) it may have.
        progress: show a progress bar: True, False, or None for "when stderr is a terminal".

    Returns:
        the ``Path`` of the extracted folder.

    Raises:
        DatasetError: the archive is corrupt, holds a refused member, or lacks a required
            file, or ``data_dir`` cannot be written (full, read-only, a file). Nothing is
            left behind in ``data_dir``.
    """
    archive_path, data_dir = Path(archive_path), Path(data_dir)
    rules = _Rules(folder_name, member_limits, max_bytes, max_members)
    target = data_dir / folder_name
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=data_dir))
    except OSError as error:
        raise DatasetError(cannot_write(data_dir, error)) from error
    try:
        (staging / folder_name).mkdir()
        try:
            written = _unpack(archive_path, staging / folder_name, rules, progress)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise DatasetError(f"{archive_path}: not a readable tar archive ({error})") from error
        missing = [name for name in required if name not in written]
        if missing:
            raise DatasetError(f"{archive_path}: the archive lacks {', '.join(missing)}")
        if target.exists():
            os.replace(target, staging / "replaced")     # deleted with staging below
        os.replace(staging / folder_name, target)
    except OSError as error:
        raise DatasetError(cannot_write(data_dir, error)) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class _Rules:
    """What an archive may hold: its one folder, its files' limits, its size and member count."""

    def __init__(self, folder_name, member_limits, max_bytes, max_members):
        self.folder_name, self.member_limits = folder_name, member_limits
        self.max_bytes, self.max_members = max_bytes, max_members


def _unpack(archive_path, folder, rules, progress):
    """Write the allowed members of the gzipped tar at ``archive_path`` into ``folder``.

    Returns the set of file names written.
    """
    try:
        raw = open(archive_path, "rb")
    except OSError as error:
        raise DatasetError(f"{archive_path}: cannot be read ({error.strerror})") from None
    written, shown = set(), 0
    with raw, progress_bar(os.path.getsize(archive_path), f"extracting {archive_path.name}",
                            progress) as bar:
        stream = _CappedReader(gzip.GzipFile(fileobj=raw), archive_path, rules.max_bytes)
        # "r|": a stream read front to back, with no seeking that could skip the cap.
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for count, member in enumerate(archive, start=1):
                if count > rules.max_members:
                    raise DatasetError(f"{archive_path}: more than {rules.max_members} members, "
                                       "more than the real archive has")
                name = _checked_member_name(member, archive_path, written, rules)
                if member.isfile():
                    # The output path is built from an allowed name only, never from
                    # the member's own path, so nothing can land outside the folder.
                    with archive.extractfile(member) as source, \
                            open(folder / name, "wb") as sink:
                        shutil.copyfileobj(source, sink, CHUNK_BYTES)
                    written.add(name)
                bar.update(raw.tell() - shown)           # in bytes of the compressed archive
                shown = raw.tell()
        # tarfile stops at the end-of-archive blocks, before gzip's trailer: read to the end
        # of the stream, so that gzip checks the CRC and length of everything it unpacked.
        while stream.read(CHUNK_BYTES):
            pass
    return written


class _CappedReader:
    """Reads the decompressed archive for tarfile, refusing to go past the size of a real one."""

    def __init__(self, stream, archive_path, max_bytes):
        self.stream, self.archive_path, self.max_bytes, self.done = stream, archive_path, max_bytes, 0

    def read(self, size=-1):
        if size is None or size < 0:
            size = self.max_bytes + 1 - self.done
        data = self.stream.read(min(size, self.max_bytes + 1 - self.done))
        self.done += len(data)
        if self.done > self.max_bytes:
            raise DatasetError(f"{self.archive_path}: unpacks to more than "
                               f"{self.max_bytes:,} bytes, more than the real archive does")
        return data


def _checked_member_name(member, archive_path, written, rules):
    """The file name of an acceptable archive member ("" for the folder itself)."""
    def refuse(reason):
        raise DatasetError(f"{archive_path}: refusing member {member.name!r}: {reason}")

    if not (member.isfile() or member.isdir()):
        refuse("not a regular file or folder (links and devices are not allowed)")
    path = PurePosixPath(member.name)      # "./a//b" -> parts ("a", "b")
    if path.is_absolute():
        refuse("absolute path")
    if ".." in path.parts:
        refuse("path contains '..'")
    if not path.parts or path.parts[0] != rules.folder_name:
        refuse(f"outside {rules.folder_name}/")
    if member.isdir():
        if len(path.parts) != 1:
            refuse(f"unexpected folder inside {rules.folder_name}/")
        return ""
    if len(path.parts) != 2 or path.name not in rules.member_limits:
        refuse(f"unexpected file (allowed: {', '.join(rules.member_limits)})")
    if path.name in written:
        refuse("it appears twice")
    if member.size > rules.member_limits[path.name]:
        refuse(f"{member.size:,} bytes, more than the official file's "
               f"{rules.member_limits[path.name]:,}")
    return path.name

