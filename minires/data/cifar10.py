"""CIFAR-10 on disk: download, verify, extract and read the official binary version.

The binary archive ``cifar-10-binary.tar.gz`` holds one folder, ``cifar-10-batches-bin/``,
with five training files ``data_batch_1.bin`` .. ``data_batch_5.bin`` (10,000 images each)
and ``test_batch.bin`` (10,000 images). Every file is a plain run of records:

    record = 1 label byte (0..9) + 1,024 red + 1,024 green + 1,024 blue bytes = 3,073 bytes

where each colour plane is a 32x32 image stored row by row, top to bottom. So a file of
N records reshapes to (N, 3073), column 0 is the label and columns 1: reshape to
(N, 3, 32, 32) -- already the (N, C, H, W) layout the network wants. No pickle is
involved anywhere (the "python version" of CIFAR-10 is pickled; we never read it).

Dimensions: N images, C = 3 channels (R, G, B), H = W = 32 pixels.

    data = load_cifar10("data")          # downloads once, then reads from data/
    data["train_images"]                 # uint8 (50000, 3, 32, 32)
    data["train_labels"]                 # int64 (50000,)

Errors: ``DownloadError`` (a ``RuntimeError``) when the archive cannot be fetched or its
checksum is wrong; ``DatasetError`` (a ``ValueError``) when files on disk are malformed
or unsafe. Both messages say what failed and how to proceed.
"""
import gzip
import hashlib
import importlib
import os
import shutil
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path, PurePosixPath

import numpy

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ARCHIVE_NAME = "cifar-10-binary.tar.gz"
FOLDER_NAME = "cifar-10-batches-bin"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")

IMAGE_SHAPE = (3, 32, 32)                           # (C, H, W)
RECORD_BYTES = 1 + 3 * 32 * 32                      # 3,073: label byte + R, G, B planes
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
RECORD_FILES = TRAIN_FILES + (TEST_FILE,)
# Everything the official archive holds; extract() refuses any other name.
ALLOWED_FILES = RECORD_FILES + ("batches.meta.txt", "readme.html")

# Bytes per read while streaming. requests hands over whole chunks only, so a dropped
# connection loses at most the chunk in flight; the .part keeps everything before it.
_CHUNK_BYTES = 1 << 16                              # 64 KiB


class DownloadError(RuntimeError):
    """The archive could not be fetched, or what arrived has the wrong checksum."""


class DatasetError(ValueError):
    """A file on disk is not a valid, safe CIFAR-10 archive or record file."""


class _TransientError(Exception):
    """A failure worth retrying that requests does not raise itself (HTTP 5xx, short body)."""


def download(url, destination, md5, *, progress=True, retries=4, timeout=30, backoff=1.0):
    """Download ``url`` to ``destination``, resuming, retrying and checking its md5.

    Bytes stream into ``<destination>.part``; only a complete file whose md5 matches is
    renamed to ``destination``, so ``destination`` never holds a partial download.
    A ``.part`` left by an earlier attempt (or an earlier run) is resumed with an HTTP
    ``Range: bytes=N-`` request.

    Args:
        url: where to fetch the file (any HTTP(S) mirror of it).
        destination: path of the finished file; its folder is created if needed.
        md5: expected hex digest of the whole file, or ``None`` to skip the check.
        progress: show a tqdm progress bar.
        retries: how many times a transient failure (timeout, connection error or
            dropped connection, HTTP 5xx) is retried after the first attempt.
        timeout: seconds to wait for the server to connect or send the next bytes.
        backoff: the wait before retry k (k = 1, 2, ...) is ``backoff * 2**(k - 1)`` s.

    Returns:
        ``destination`` as a ``Path``.

    Raises:
        DownloadError: the server refused the request (HTTP 4xx), stayed unreachable
            after ``retries`` retries, or sent a file whose md5 is wrong (the file is
            then deleted).
        ImportError: ``requests`` or ``tqdm`` is not installed.
    """
    requests = _require("requests")
    destination = Path(destination)
    partial = destination.with_name(destination.name + ".part")
    destination.parent.mkdir(parents=True, exist_ok=True)
    transient = (requests.exceptions.ConnectionError,       # refused, reset, DNS failure
                 requests.exceptions.Timeout,
                 requests.exceptions.ChunkedEncodingError,  # connection dropped mid-stream
                 _TransientError)                           # HTTP 5xx, short body
    for attempt in range(retries + 1):
        try:
            _fetch(requests, url, partial, timeout, progress)
            break
        except transient as error:
            if attempt == retries:
                message = _unreachable_message(url, destination, attempt + 1, error)
                raise DownloadError(message) from error
            # The .part is kept, so the next attempt resumes where this one stopped.
            wait = backoff * 2 ** attempt
            if progress:
                print(f"download failed ({type(error).__name__}); retrying in {wait:g} s "
                      f"(attempt {attempt + 2} of {retries + 1})", file=sys.stderr, flush=True)
            time.sleep(wait)
    if md5 is not None:
        got = _md5_of(partial)
        if got != md5.lower():
            partial.unlink()
            raise DownloadError(
                f"checksum mismatch for {url}: expected md5 {md5}, got {got}; the downloaded "
                f"file was deleted. Run again to download it afresh, or pass --data-url "
                f"pointing at a mirror that serves the right file.")
    os.replace(partial, destination)
    return destination


# load_cifar10 takes a flag named ``download`` (as torchvision does), which hides the
# function of the same name inside it; it calls the function by this second name.
_download_file = download


def _fetch(requests, url, partial, timeout, progress):
    """One HTTP request that completes ``partial``, resuming from its current size."""
    tqdm = _require("tqdm").tqdm
    offset = partial.stat().st_size if partial.exists() else 0
    # "identity": we want the archive's bytes exactly as stored, so that the md5 and the
    # Range offsets refer to the same bytes (a server may otherwise gzip the .tar.gz again).
    headers = {"Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
        status = response.status_code
        if status == 416:
            # Range Not Satisfiable: the .part already holds the whole file (the server
            # tells its size as "bytes */SIZE"), or it holds something else: start over.
            if response.headers.get("Content-Range") == f"bytes */{offset}":
                return
            partial.unlink()
            return _fetch(requests, url, partial, timeout, progress)
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
        if status == 200:
            offset = 0          # a full answer (the server ignored or got no Range): restart
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(partial, "ab" if offset > 0 else "wb") as file, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=partial.name, disable=not progress) as bar:
            for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
                file.write(chunk)
                bar.update(len(chunk))
    received = partial.stat().st_size
    if total is not None and received < total:
        raise _TransientError(f"connection closed after {received:,} of {total:,} bytes")


def _unreachable_message(url, destination, attempts, error):
    return (f"could not download {url} after {attempts} attempt(s): "
            f"{type(error).__name__}: {error}\n"
            f"To continue without this server, put {ARCHIVE_NAME} or the extracted "
            f"{FOLDER_NAME}/ into the data folder {destination.parent.resolve()}, "
            f"or pass --data-url pointing at a mirror.")


def _require(name):
    """Import an optional dependency of the download, with advice when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(f"downloading CIFAR-10 needs the '{name}' package: pip install "
                          f"{name} (or install minires with its 'train' extra)") from None


def _md5_of(path):
    # usedforsecurity=False: md5 here detects corruption, and FIPS systems allow that use.
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def extract(archive_path, data_dir):
    """Extract the CIFAR-10 archive into ``data_dir/cifar-10-batches-bin/``, safely.

    Only the names the official archive holds are accepted (``ALLOWED_FILES`` inside
    ``cifar-10-batches-bin/``); any member that is a link, a device, an absolute path,
    a path with ``..``, outside that folder or with another name is refused before a
    byte of it is written. Files are written into a temporary folder inside
    ``data_dir`` and renamed into place at the end, so an interrupted extraction never
    leaves a folder that looks complete. An existing ``cifar-10-batches-bin/`` (for
    example an incomplete one) is replaced.

    Returns:
        the ``Path`` of the extracted folder.

    Raises:
        DatasetError: the archive is corrupt, holds a refused member, or lacks one of
            the six record files. Nothing is left behind in ``data_dir``.
    """
    archive_path, data_dir = Path(archive_path), Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / FOLDER_NAME
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=data_dir))
    try:
        (staging / FOLDER_NAME).mkdir()
        written = set()
        try:
            with tarfile.open(archive_path, "r:*") as archive:
                for member in archive:
                    name = _checked_member_name(member, archive_path)
                    if member.isfile():
                        # The output path is built from an allowed name only, never from
                        # the member's own path, so nothing can land outside staging.
                        with archive.extractfile(member) as source, \
                                open(staging / FOLDER_NAME / name, "wb") as sink:
                            shutil.copyfileobj(source, sink, _CHUNK_BYTES)
                        written.add(name)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise DatasetError(f"{archive_path}: not a readable tar archive ({error})") from error
        missing = [name for name in RECORD_FILES if name not in written]
        if missing:
            raise DatasetError(f"{archive_path}: the archive lacks {', '.join(missing)}")
        if target.exists():
            os.replace(target, staging / "replaced")     # deleted with staging below
        os.replace(staging / FOLDER_NAME, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _checked_member_name(member, archive_path):
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
    return path.name


def read_records(path):
    """Read one CIFAR-10 binary file.

    Returns:
        images: uint8 (N, 3, 32, 32), channels R, G, B, rows top to bottom.
        labels: int64 (N,), values 0..9 (indices into ``CLASSES``).

    Raises:
        DatasetError: the file is empty, its size is not a multiple of 3,073 bytes
            (truncated), or a label is outside 0..9.
    """
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


def load_cifar10(data_dir="data", url=CIFAR10_URL, md5=CIFAR10_MD5, download=True, progress=True):
    """CIFAR-10 as host NumPy arrays, fetching it into ``data_dir`` the first time.

    Looks in this order, stopping at the first that applies:
      1. ``data_dir/cifar-10-batches-bin/`` holds the six record files: read them
         (no network access at all);
      2. ``data_dir/cifar-10-binary.tar.gz`` exists: check its md5, extract, read;
      3. otherwise, if ``download``: fetch the archive from ``url``, extract, read.

    Args:
        data_dir: the data folder (created if needed).
        url: where to download from; point it at a mirror if the official URL fails.
        md5: expected md5 of the archive (downloaded or found in ``data_dir``);
            ``None`` skips the check, for a trusted archive of other content.
        download: allow step 3.
        progress: show a progress bar while downloading.

    Returns:
        dict with ``train_images`` uint8 (50000, 3, 32, 32), ``train_labels`` int64
        (50000,), ``test_images`` uint8 (10000, 3, 32, 32), ``test_labels`` int64
        (10000,) for the official archive.

    Raises:
        DownloadError, DatasetError: see ``download``, ``extract`` and ``read_records``;
            also DatasetError when the data is absent and ``download`` is False, or a
            local archive has the wrong md5 (it is then left in place).
    """
    data_dir = Path(data_dir)
    folder = data_dir / FOLDER_NAME
    if not all((folder / name).is_file() for name in RECORD_FILES):
        archive = data_dir / ARCHIVE_NAME
        if archive.is_file():
            if md5 is not None:
                got = _md5_of(archive)
                if got != md5.lower():
                    raise DatasetError(
                        f"{archive}: md5 is {got}, expected {md5}. Delete it to download "
                        f"it again, or pass md5=None if you trust this archive.")
        elif download:
            if progress:
                print(f"Downloading CIFAR-10 from {url} into {data_dir}", file=sys.stderr, flush=True)
            _download_file(url, archive, md5, progress=progress)
        else:
            raise DatasetError(f"CIFAR-10 is not in {data_dir.resolve()}: put {ARCHIVE_NAME} "
                               f"or the extracted {FOLDER_NAME}/ there, or allow the download.")
        extract(archive, data_dir)
    train = [read_records(folder / name) for name in TRAIN_FILES]
    test_images, test_labels = read_records(folder / TEST_FILE)
    return {
        "train_images": numpy.concatenate([images for images, _ in train]),  # (50000, 3, 32, 32)
        "train_labels": numpy.concatenate([labels for _, labels in train]),  # (50000,)
        "test_images": test_images,                                          # (10000, 3, 32, 32)
        "test_labels": test_labels,                                          # (10000,)
    }
