"""CIFAR-10 on disk: download, verify, extract and read the official binary version.

The binary archive ``cifar-10-binary.tar.gz`` holds one folder, ``cifar-10-batches-bin/``,
with five training files ``data_batch_1.bin`` .. ``data_batch_5.bin`` (10,000 images each)
and ``test_batch.bin`` (10,000 images). Every file is a plain run of records:

    record = 1 label byte (0..9) + 1,024 red + 1,024 green + 1,024 blue bytes = 3,073 bytes

where each colour plane is a 32x32 image stored row by row, top to bottom. So a file of
N records reshapes to (N, 3073), column 0 is the label and columns 1: reshape to
(N, 3, 32, 32) -- already the (N, C, H, W) layout the network wants. No pickle is
involved. The "python version" that torchvision downloads (``cifar-10-batches-py/``, pickled
dicts) is read too, by ``cifar10_python``, which never runs the pickles.

Dimensions: N images, C = 3 channels (R, G, B), H = W = 32 pixels.

    data = load_cifar10("data")          # downloads once, then reads from data/
    data["train_images"]                 # uint8 (50000, 3, 32, 32)
    data["train_labels"]                 # int64 (50000,)

Nothing that arrives is trusted for its size: a download may not exceed the size of the
real archive, extraction accepts only the official file names, each no larger than the
real file, and reads the gzip stream to its end so that its checksum is always checked.

Errors: ``DownloadError`` (a ``RuntimeError``) when the archive cannot be fetched, its
checksum is wrong or the URL is not one minires can fetch; ``DatasetError`` (a
``ValueError``) when files on disk are missing, malformed or unsafe, or the data folder
cannot hold them. Both messages are one line that says what failed and how to proceed.
"""
import errno
import gzip
import hashlib
import importlib
import math
import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from pathlib import Path, PurePosixPath

import numpy

from .cifar10_python import (
    PYTHON_FILES,
    PYTHON_FOLDER_NAME,
    PYTHON_META_FILE,
    PYTHON_TEST_FILE,
    PYTHON_TRAIN_FILES,
    read_python_batch,
    read_python_label_names,
)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ARCHIVE_NAME = "cifar-10-binary.tar.gz"
FOLDER_NAME = "cifar-10-batches-bin"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")

IMAGE_SHAPE = (3, 32, 32)                           # (C, H, W)
RECORD_BYTES = 1 + 3 * 32 * 32                      # 3,073: label byte + R, G, B planes
RECORDS_PER_FILE = 10_000                           # the most any official record file holds
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
RECORD_FILES = TRAIN_FILES + (TEST_FILE,)
# Everything the official archive holds, with the most bytes each may have; extract() refuses
# any other name. The two small files are 61 and 88 bytes in the official archive.
MEMBER_LIMITS = {**{name: RECORDS_PER_FILE * RECORD_BYTES for name in RECORD_FILES},
                 "batches.meta.txt": 1 << 16, "readme.html": 1 << 16}
ALLOWED_FILES = tuple(MEMBER_LIMITS)

# The official archive is 170,052,171 bytes and unpacks to a 184,401,920-byte tar stream: a
# download, and the decompressed stream, may not exceed this.
_MAX_ARCHIVE_BYTES = 185 << 20
# The official archive has 9 members (the folder and 8 files); tarfile keeps every member it
# has seen in a list, so a stream of millions of tiny headers must stop early.
_MAX_MEMBERS = 16
# Bytes per read while streaming and copying.
_CHUNK_BYTES = 1 << 16                              # 64 KiB


class DownloadError(RuntimeError):
    """The archive could not be fetched, or what arrived has the wrong checksum."""


class DatasetError(ValueError):
    """A file on disk is missing or is not a valid, safe CIFAR-10 file, or the data folder
    cannot hold the extracted files."""


class _TransientError(Exception):
    """A failure worth retrying that requests does not raise itself (HTTP 5xx, short body)."""


def parse_md5(text):
    """An md5 as a command line gives it: 32 hex digits (returned lower-case) or ``none``.

    ``none`` (any case) returns None, which skips the checksum, for a trusted archive of other
    content. Raises ValueError otherwise; ``argparse`` turns that into a usage error when this
    is an argument's ``type``.
    """
    if text.lower() == "none":
        return None
    if not re.fullmatch(r"[0-9a-fA-F]{32}", text):
        raise ValueError(f"an md5 is 32 hexadecimal digits (or 'none'), not {text!r}")
    return text.lower()


def download(url, destination, md5, *, progress=None, retries=4, timeout=30, backoff=1.0,
             deadline=3600):
    """Download ``url`` to ``destination``, resuming, retrying and checking its md5.

    Bytes stream into ``<destination>.part``; only a complete file whose md5 matches is
    renamed to ``destination``, so ``destination`` never holds a partial download.
    A ``.part`` left by an earlier attempt (or an earlier run) is resumed with an HTTP
    ``Range: bytes=N-`` request. A ``file://`` URL is copied the same way.

    Args:
        url: where to fetch the file: any HTTP(S) mirror of it, or ``file:///path``.
        destination: path of the finished file; its folder is created if needed.
        md5: expected hex digest of the whole file, or ``None`` to skip the check.
        progress: show a progress bar: True, False, or None for "when stderr is a terminal".
            Retries are reported on stderr unless it is False.
        retries: how many times a transient failure (timeout, connection error or
            dropped connection, HTTP 5xx) is retried after the first attempt. A host name
            that does not resolve is not retried.
        timeout: seconds to wait for the server to connect or send the next bytes.
        backoff: the wait before retry k (k = 1, 2, ...) is ``backoff * 2**(k - 1)`` s.
        deadline: seconds the whole download may take, retries included (checked between
            reads, so it may run over by up to ``timeout``); None for no limit.

    Returns:
        ``destination`` as a ``Path``.

    Raises:
        DownloadError: the URL is not an http(s) or file URL or is malformed; the server
            refused the request (HTTP 4xx, a redirect loop or a redirect elsewhere than
            http(s)), sent a malformed answer or more than a CIFAR-10 archive; the host name
            does not resolve; it stayed unreachable after ``retries`` retries or past the
            deadline (the ``.part`` is kept, to resume); the file arrived with the wrong md5
            (it is then deleted); or the destination folder cannot be written.
        ValueError: ``md5`` is neither None nor 32 hexadecimal digits.
        ImportError: ``requests`` is not installed (http and https URLs only).
    """
    md5 = None if md5 is None else parse_md5(md5)
    parts = _checked_url(url)
    destination = Path(destination)
    partial = destination.with_name(destination.name + ".part")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        if parts.scheme == "file":
            _copy_local(url, parts, partial, progress)
        else:
            _download_with_retries(url, partial, destination, progress, retries, timeout,
                                   backoff, deadline)
        if md5 is not None:
            got = _md5_of(partial)
            if got != md5:
                partial.unlink()
                raise DownloadError(
                    f"checksum mismatch for {url}: expected md5 {md5}, got {got}; the "
                    f"downloaded file was deleted. Run again to download it afresh, or pass "
                    f"--data-url pointing at a mirror that serves the right file.")
        os.replace(partial, destination)
    except OSError as error:
        # requests' own exceptions are OSErrors too, but _download_with_retries turns them
        # into DownloadError: what is left is the disk (full, read-only, a file as folder).
        raise DownloadError(_cannot_write(destination, error)) from error
    return destination


# load_cifar10 takes a flag named ``download`` (as torchvision does), which hides the
# function of the same name inside it; it calls the function by this second name.
_download_file = download


def _checked_url(url):
    """The URL split into parts, if minires can fetch it; DownloadError otherwise."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port             # raises ValueError for a port out of range or not a number
    except (ValueError, TypeError, AttributeError) as error:
        raise DownloadError(f"{url!r} is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https", "file"):
        raise DownloadError(f"{url!r} is not a URL minires can download from: use http://, "
                            "https:// or file:///path/to/" + ARCHIVE_NAME)
    if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
        raise DownloadError(f"{url!r} names the host {parts.netloc!r}; a file URL is "
                            "file:///absolute/path on this machine")
    if parts.scheme != "file" and not parts.hostname:
        raise DownloadError(f"{url!r} names no host")
    if parts.scheme == "file" and not Path(urllib.request.url2pathname(parts.path)).is_file():
        raise DownloadError(f"could not copy {url}: {urllib.request.url2pathname(parts.path)} "
                            "does not exist or is not a file")
    return parts


def _copy_local(url, parts, partial, progress):
    """``file://`` URLs: copy the file into ``partial``, within the size of a real archive."""
    source = Path(urllib.request.url2pathname(parts.path))     # a file: see _checked_url
    size = source.stat().st_size
    if size > _MAX_ARCHIVE_BYTES:
        raise DownloadError(f"could not copy {url}: {size:,} bytes is more than a CIFAR-10 "
                            f"archive ({_MAX_ARCHIVE_BYTES:,})")
    try:
        reader = open(source, "rb")
    except OSError as error:
        raise DownloadError(f"could not copy {url}: {error.strerror}") from None
    with reader, open(partial, "wb") as sink, \
            _progress_bar(size, partial.name, progress) as bar:
        for chunk in iter(lambda: reader.read(_CHUNK_BYTES), b""):
            sink.write(chunk)
            bar.update(len(chunk))


def _download_with_retries(url, partial, destination, progress, retries, timeout, backoff,
                           deadline):
    """Complete ``partial`` from an http(s) URL, retrying transient failures."""
    requests = _require("requests")
    urllib3 = importlib.import_module("urllib3")            # requests' own transport
    give_up_at = time.monotonic() + (math.inf if deadline is None else deadline)
    transient = (requests.exceptions.ConnectionError,       # refused, reset, DNS failure
                 requests.exceptions.Timeout,
                 urllib3.exceptions.ProtocolError,          # connection dropped mid-stream
                 urllib3.exceptions.ReadTimeoutError,       # (raw reads are not wrapped)
                 _TransientError)                           # HTTP 5xx, short body
    for attempt in range(retries + 1):
        try:
            return _fetch(requests, url, partial, timeout, progress, give_up_at, deadline)
        except transient as error:
            host = urllib.parse.urlsplit(url).hostname
            if _is_name_resolution_failure(error):
                raise DownloadError(
                    f"could not download {url}: the host name {host} does not resolve (no "
                    f"network, or a mistyped URL), so retrying cannot help. "
                    f"{_how_to_proceed(destination)}") from error
            if attempt == retries:
                message = _unreachable_message(url, destination, attempt + 1, error)
                raise DownloadError(message) from error
            # The .part is kept, so the next attempt resumes where this one stopped.
            wait = backoff * 2 ** attempt
            if time.monotonic() + wait > give_up_at:
                raise DownloadError(_deadline_message(url, deadline, partial)) from error
            if progress is not False:
                print(f"download failed ({type(error).__name__}); retrying in {wait:g} s "
                      f"(attempt {attempt + 2} of {retries + 1})", file=sys.stderr, flush=True)
            time.sleep(wait)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as error:
            # Not worth retrying: an invalid URL, a redirect loop, a redirect to file:, ...
            raise DownloadError(f"could not download {url}: {type(error).__name__}: "
                                f"{error}") from error


def _fetch(requests, url, partial, timeout, progress, give_up_at, deadline):
    """One HTTP request that completes ``partial``, resuming from its current size."""
    offset = partial.stat().st_size if partial.exists() else 0
    # "identity": we want the archive's bytes exactly as stored, so that the md5 and the
    # Range offsets refer to the same bytes (a server may otherwise gzip the .tar.gz again).
    headers = {"Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
        status = response.status_code
        if status == 416 and offset > 0:
            # Range Not Satisfiable: the .part already holds the whole file (the server
            # tells its size as "bytes */SIZE"), or it holds something else: start over.
            if response.headers.get("Content-Range") == f"bytes */{offset}":
                return
            return _restart(requests, url, partial, timeout, progress, give_up_at, deadline)
        if status >= 500:
            raise _TransientError(f"HTTP {status} {response.reason}")
        if status >= 400:
            raise DownloadError(
                f"could not download {url}: the server answered HTTP {status} "
                f"{response.reason}. The dataset may have moved: pass --data-url pointing "
                f"at a mirror, or put {ARCHIVE_NAME} or the extracted {FOLDER_NAME}/ into "
                f"the data folder {partial.parent.resolve()}.")
        if status not in (200, 206):
            raise DownloadError(f"could not download {url}: unexpected HTTP {status} "
                                f"{response.reason}")
        if status == 206 and _range_start(response.headers.get("Content-Range")) != offset:
            # The server sent another part of the file than the one asked for.
            if offset == 0:
                raise DownloadError(f"could not download {url}: the server answered a request "
                                    "for the whole file with part of it (HTTP 206)")
            return _restart(requests, url, partial, timeout, progress, give_up_at, deadline)
        if status == 200:
            offset = 0          # a full answer (the server ignored or got no Range): restart
        length = _content_length(response, url)
        total = offset + length if length is not None else None
        if total is not None and total > _MAX_ARCHIVE_BYTES:
            raise DownloadError(f"could not download {url}: the server announces {total:,} "
                                f"bytes, more than a CIFAR-10 archive ({_MAX_ARCHIVE_BYTES:,})")
        with open(partial, "ab" if offset > 0 else "wb") as file, \
                _progress_bar(total, partial.name, progress, initial=offset) as bar:
            while chunk := response.raw.read1(_CHUNK_BYTES, decode_content=True):
                # read1 returns what has arrived: a slow server's bytes reach the .part.
                file.write(chunk)
                bar.update(len(chunk))
                if offset + file.tell() > _MAX_ARCHIVE_BYTES:
                    file.truncate(0)
                    raise DownloadError(f"could not download {url}: the server sent more than "
                                        f"a CIFAR-10 archive ({_MAX_ARCHIVE_BYTES:,} bytes)")
                if time.monotonic() > give_up_at:
                    raise DownloadError(_deadline_message(url, deadline, partial))
        # Content-Length counts the bytes as sent; tell() counts them before any
        # Content-Encoding is undone, so a gzip-encoded answer is not taken for a short one.
        sent = response.raw.tell()
    if length is not None and sent < length:
        raise _TransientError(f"connection closed after {offset + sent:,} of {total:,} bytes")


def _restart(requests, url, partial, timeout, progress, give_up_at, deadline):
    """Delete the .part and fetch the whole file (once: a request without Range follows)."""
    partial.unlink()
    return _fetch(requests, url, partial, timeout, progress, give_up_at, deadline)


def _content_length(response, url):
    """The Content-Length header as an int, None if absent; DownloadError if malformed."""
    text = response.headers.get("Content-Length")
    if text is None:
        return None
    if not text.strip().isdigit():
        raise DownloadError(f"could not download {url}: the server sent the malformed header "
                            f"Content-Length: {text!r}")
    return int(text)


def _range_start(content_range):
    """The first byte of ``Content-Range: bytes START-END/SIZE``; None if malformed."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (content_range or "").strip())
    return int(match.group(1)) if match else None


def _is_name_resolution_failure(error):
    """True if the connection failed because the host name did not resolve (DNS).

    requests wraps urllib3's errors, which wrap the socket.gaierror of the lookup: follow the
    causes, the ``reason`` of urllib3's MaxRetryError and the exceptions among the arguments.
    """
    seen, pending = set(), [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        if isinstance(current, socket.gaierror):
            return True
        seen.add(id(current))
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None),
                    *current.args]
    return False


def _how_to_proceed(destination):
    return (f"To continue without this server, put {ARCHIVE_NAME} or the extracted "
            f"{FOLDER_NAME}/ into the data folder {destination.parent.resolve()}, "
            f"or pass --data-url pointing at a mirror.")


def _unreachable_message(url, destination, attempts, error):
    return (f"could not download {url} after {attempts} attempt(s): "
            f"{type(error).__name__}: {error}. {_how_to_proceed(destination)}")


def _deadline_message(url, deadline, partial):
    received = partial.stat().st_size if partial.exists() else 0
    return (f"could not download {url} within the deadline of {deadline:g} s ({received:,} "
            f"bytes arrived and are kept in {partial}: run again to resume)")


def _cannot_write(path, error):
    full = error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return (f"cannot write {error.filename or path}: {error.strerror or error}; "
            f"{'free some space or ' if full else ''}choose another data folder (--data-dir)")


def _require(name):
    """Import an optional dependency of the download, with advice when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(f"downloading CIFAR-10 needs the '{name}' package: pip install "
                          f"{name} (or install minires with its 'train' extra)") from None


def _progress_bar(total, description, show, initial=0):
    """A tqdm bar counting bytes when ``show`` is True, or None and stderr is a terminal (and
    tqdm is installed); otherwise a stand-in that draws nothing."""
    if show is None:
        show = sys.stderr.isatty()
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:
        show = False
    if not show:
        return _NoBar()
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=description)


class _NoBar:
    """Stands in for a progress bar that is not shown."""

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        return False

    def update(self, count):
        pass


def _md5_of(path):
    # usedforsecurity=False: md5 here detects corruption, and FIPS systems allow that use.
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def extract(archive_path, data_dir, progress=None):
    """Extract the CIFAR-10 archive into ``data_dir/cifar-10-batches-bin/``, safely.

    Only the names the official archive holds are accepted (``ALLOWED_FILES`` inside
    ``cifar-10-batches-bin/``), each at most as large as the official file
    (``MEMBER_LIMITS``); any member that is a link, a device, an absolute path, a path
    with ``..``, outside that folder, with another name, too large or repeated is refused
    before a byte of it is written. The gzip stream is read to its end, so its checksum
    is checked even without an md5. Files are written into a temporary folder inside
    ``data_dir`` and renamed into place at the end, so an interrupted extraction never
    leaves a folder that looks complete. An existing ``cifar-10-batches-bin/`` (for
    example an incomplete one) is replaced.

    Args:
        progress: show a progress bar: True, False, or None for "when stderr is a terminal".

    Returns:
        the ``Path`` of the extracted folder.

    Raises:
        DatasetError: the archive is corrupt, holds a refused member, or lacks one of
            the six record files, or ``data_dir`` cannot be written (full, read-only, a
            file). Nothing is left behind in ``data_dir``.
    """
    archive_path, data_dir = Path(archive_path), Path(data_dir)
    target = data_dir / FOLDER_NAME
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=data_dir))
    except OSError as error:
        raise DatasetError(_cannot_write(data_dir, error)) from error
    try:
        (staging / FOLDER_NAME).mkdir()
        try:
            written = _unpack(archive_path, staging / FOLDER_NAME, progress)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise DatasetError(f"{archive_path}: not a readable tar archive ({error})") from error
        missing = [name for name in RECORD_FILES if name not in written]
        if missing:
            raise DatasetError(f"{archive_path}: the archive lacks {', '.join(missing)}")
        if target.exists():
            os.replace(target, staging / "replaced")     # deleted with staging below
        os.replace(staging / FOLDER_NAME, target)
    except OSError as error:
        raise DatasetError(_cannot_write(data_dir, error)) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _unpack(archive_path, folder, progress):
    """Write the allowed members of the gzipped tar at ``archive_path`` into ``folder``.

    Returns the set of file names written.
    """
    try:
        raw = open(archive_path, "rb")
    except OSError as error:
        raise DatasetError(f"{archive_path}: cannot be read ({error.strerror})") from None
    written, shown = set(), 0
    with raw, _progress_bar(os.path.getsize(archive_path), f"extracting {archive_path.name}",
                            progress) as bar:
        stream = _CappedReader(gzip.GzipFile(fileobj=raw), archive_path)
        # "r|": a stream read front to back, with no seeking that could skip the cap.
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for count, member in enumerate(archive, start=1):
                if count > _MAX_MEMBERS:
                    raise DatasetError(f"{archive_path}: more than {_MAX_MEMBERS} members; "
                                       "the official archive has 9")
                name = _checked_member_name(member, archive_path, written)
                if member.isfile():
                    # The output path is built from an allowed name only, never from
                    # the member's own path, so nothing can land outside the folder.
                    with archive.extractfile(member) as source, \
                            open(folder / name, "wb") as sink:
                        shutil.copyfileobj(source, sink, _CHUNK_BYTES)
                    written.add(name)
                bar.update(raw.tell() - shown)           # in bytes of the compressed archive
                shown = raw.tell()
        # tarfile stops at the end-of-archive blocks, before gzip's trailer: read to the end
        # of the stream, so that gzip checks the CRC and length of everything it unpacked.
        while stream.read(_CHUNK_BYTES):
            pass
    return written


class _CappedReader:
    """Reads the decompressed archive for tarfile, refusing to go past the size of a real one."""

    def __init__(self, stream, archive_path):
        self.stream, self.archive_path, self.done = stream, archive_path, 0

    def read(self, size=-1):
        if size is None or size < 0:
            size = _MAX_ARCHIVE_BYTES + 1 - self.done
        data = self.stream.read(min(size, _MAX_ARCHIVE_BYTES + 1 - self.done))
        self.done += len(data)
        if self.done > _MAX_ARCHIVE_BYTES:
            raise DatasetError(f"{self.archive_path}: unpacks to more than "
                               f"{_MAX_ARCHIVE_BYTES:,} bytes, more than CIFAR-10 does")
        return data


def _checked_member_name(member, archive_path, written):
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
    if not path.parts or path.parts[0] != FOLDER_NAME:
        refuse(f"outside {FOLDER_NAME}/")
    if member.isdir():
        if len(path.parts) != 1:
            refuse(f"unexpected folder inside {FOLDER_NAME}/")
        return ""
    if len(path.parts) != 2 or path.name not in ALLOWED_FILES:
        refuse(f"unexpected file (allowed: {', '.join(ALLOWED_FILES)})")
    if path.name in written:
        refuse("it appears twice")
    if member.size > MEMBER_LIMITS[path.name]:
        refuse(f"{member.size:,} bytes, more than the official file's "
               f"{MEMBER_LIMITS[path.name]:,}")
    return path.name


def read_records(path):
    """Read one CIFAR-10 binary file.

    Returns:
        images: uint8 (N, 3, 32, 32), channels R, G, B, rows top to bottom.
        labels: int64 (N,), values 0..9 (indices into ``CLASSES``).

    Raises:
        DatasetError: the file is empty, larger than 10,000 records, its size is not a
            multiple of 3,073 bytes (truncated), or a label is outside 0..9.
    """
    size = os.path.getsize(path)
    if size > RECORDS_PER_FILE * RECORD_BYTES:
        raise DatasetError(f"{path}: {size:,} bytes, more than the {RECORDS_PER_FILE:,} records "
                           f"of a CIFAR-10 file ({RECORDS_PER_FILE * RECORD_BYTES:,} bytes)")
    data = numpy.fromfile(path, dtype=numpy.uint8)                     # (N * 3073,)
    if data.size == 0:
        raise DatasetError(f"{path}: empty file (0 bytes)")
    if data.size % RECORD_BYTES != 0:
        raise DatasetError(f"{path}: truncated: {data.size:,} bytes is not a multiple "
                           f"of {RECORD_BYTES:,}")
    records = data.reshape(-1, RECORD_BYTES)                           # (N, 3073)
    labels = records[:, 0].astype(numpy.int64)                         # (N,)
    bad = numpy.flatnonzero(labels >= len(CLASSES))                    # uint8: never < 0
    if bad.size > 0:
        raise DatasetError(f"{path}: record {bad[0]} has label {labels[bad[0]]}, "
                           f"expected 0..{len(CLASSES) - 1} ({bad.size} bad label(s))")
    images = records[:, 1:].reshape(-1, *IMAGE_SHAPE)                  # (N, 3, 32, 32)
    return numpy.ascontiguousarray(images), labels


def load_cifar10(data_dir="data", url=CIFAR10_URL, md5=CIFAR10_MD5, download=True,
                 progress=None):
    """CIFAR-10 as host NumPy arrays, fetching it into ``data_dir`` the first time.

    Looks in this order, stopping at the first that applies:
      1. ``data_dir/cifar-10-batches-bin/`` holds the six record files: read them
         (no network access at all);
      2. ``data_dir/cifar-10-binary.tar.gz`` exists: check its md5, extract, read;
      3. ``data_dir/cifar-10-batches-py/`` exists (the python version, as torchvision
         keeps it): read it, without running its pickles;
      4. ``data_dir/cifar-10-batches-bin/`` exists but lacks a file: name the file;
      5. otherwise, if ``download``: fetch the archive from ``url``, extract, read.

    Args:
        data_dir: the data folder (created if needed).
        url: where to download from: a mirror if the official URL fails, or
            ``file:///path/to/cifar-10-binary.tar.gz`` for a copy on this machine.
        md5: expected md5 of the archive (downloaded or found in ``data_dir``);
            ``None`` skips the check, for a trusted archive of other content.
        download: allow step 5.
        progress: show progress bars: True, False, or None for "when stderr is a terminal".

    Returns:
        dict with ``train_images`` uint8 (50000, 3, 32, 32), ``train_labels`` int64
        (50000,), ``test_images`` uint8 (10000, 3, 32, 32), ``test_labels`` int64
        (10000,) for the official archive.

    Raises:
        DownloadError, DatasetError: see ``download``, ``extract`` and ``read_records``;
            also DatasetError when the data is absent and ``download`` is False, a file of
            a data folder is missing or malformed (the message names it), ``data_dir`` is a
            file, or a local archive has the wrong md5 (it is then left in place).
        ValueError: ``md5`` is neither None nor 32 hexadecimal digits.
    """
    md5 = None if md5 is None else parse_md5(md5)
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise DatasetError(f"the data folder {data_dir} is a file, not a folder")
    folder = data_dir / FOLDER_NAME
    if not _missing_files(folder, RECORD_FILES):
        return _read_binary_folder(folder)
    archive = data_dir / ARCHIVE_NAME
    if archive.is_file():
        if md5 is not None:
            got = _md5_of(archive)
            if got != md5:
                raise DatasetError(
                    f"{archive}: md5 is {got}, expected {md5}. Delete it to download "
                    f"it again, or pass md5=None if you trust this archive.")
    elif (data_dir / PYTHON_FOLDER_NAME).is_dir():
        return _read_python_folder(data_dir / PYTHON_FOLDER_NAME)
    elif folder.is_dir():
        raise DatasetError(f"{folder / _missing_files(folder, RECORD_FILES)[0]} is missing or "
                           f"not a file; restore it, or delete {folder} to extract or "
                           "download CIFAR-10 again")
    elif download:
        _checked_url(url)       # a malformed URL is one sentence, with no announcement first
        if progress is not False:
            print(f"Downloading CIFAR-10 from {url} into {data_dir}", file=sys.stderr, flush=True)
        _download_file(url, archive, md5, progress=progress)
    else:
        raise DatasetError(f"CIFAR-10 is not in {data_dir.resolve()}: put {ARCHIVE_NAME} "
                           f"or the extracted {FOLDER_NAME}/ there, or allow the download.")
    extract(archive, data_dir, progress=progress)
    return _read_binary_folder(folder)


def _missing_files(folder, names):
    """The names that are not regular files in ``folder``, in order."""
    return [name for name in names if not (folder / name).is_file()]


def _read_binary_folder(folder):
    train = [read_records(folder / name) for name in TRAIN_FILES]
    test_images, test_labels = read_records(folder / TEST_FILE)
    return {
        "train_images": numpy.concatenate([images for images, _ in train]),  # (50000, 3, 32, 32)
        "train_labels": numpy.concatenate([labels for _, labels in train]),  # (50000,)
        "test_images": test_images,                                          # (10000, 3, 32, 32)
        "test_labels": test_labels,                                          # (10000,)
    }


def _read_python_folder(folder):
    """The python version's six batches, as ``_read_binary_folder`` returns them."""
    missing = _missing_files(folder, PYTHON_FILES)
    if missing:
        raise DatasetError(f"{folder / missing[0]} is missing or not a file")
    try:
        names = read_python_label_names(folder / PYTHON_META_FILE)
        if tuple(names) != CLASSES:
            raise DatasetError(f"{folder / PYTHON_META_FILE}: the label names {names} are not "
                               "CIFAR-10's")
        train = [read_python_batch(folder / name) for name in PYTHON_TRAIN_FILES]
        test_images, test_labels = read_python_batch(folder / PYTHON_TEST_FILE)
    except DatasetError:
        raise
    except ValueError as error:            # the reader's own, naming the file
        raise DatasetError(str(error)) from None
    return {
        "train_images": numpy.concatenate([images for images, _ in train]),  # (50000, 3, 32, 32)
        "train_labels": numpy.concatenate([labels for _, labels in train]),  # (50000,)
        "test_images": test_images,                                          # (10000, 3, 32, 32)
        "test_labels": test_labels,                                          # (10000,)
    }
