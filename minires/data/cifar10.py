"""CIFAR-10 on disk: where it is (a folder, an archive, the python version, a download) and its records.

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

Fetching the archive is ``downloading.py``'s idea, unpacking it safely ``extraction.py``'s; this
file gives them CIFAR-10's facts (its URL, md5, size, file names and sizes) and reads the records.

Errors: ``DownloadError`` (a ``RuntimeError``) when the archive cannot be fetched, its
checksum is wrong or the URL is not one minires can fetch; ``DatasetError`` (a
``ValueError``) when files on disk are missing, malformed or unsafe, or the data folder
cannot hold them. Both messages are one line that says what failed and how to proceed.
"""
import os
import sys
from pathlib import Path

import numpy

from ..arguments import check_bool, check_path
from .cifar10_python import (
    PYTHON_FILES,
    PYTHON_FOLDER_NAME,
    PYTHON_META_FILE,
    PYTHON_TEST_FILE,
    PYTHON_TRAIN_FILES,
    read_python_batch,
    read_python_label_names,
)
from .downloading import checked_url, md5_of, parse_md5
from .downloading import download as _download_file  # load_cifar10's flag ``download`` hides the name
from .extraction import DatasetError, extract_archive

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

# The official archive unpacks to a 184,401,920-byte tar stream: the decompressed stream may not
# exceed this (``download`` caps the archive itself at the same size).
_MAX_ARCHIVE_BYTES = 185 << 20
# The official archive has 9 members (the folder and 8 files); tarfile keeps every member it
# has seen in a list, so a stream of millions of tiny headers must stop early.
_MAX_MEMBERS = 16


def extract(archive_path, data_dir, progress=None):
    """Extract the CIFAR-10 archive into ``data_dir/cifar-10-batches-bin/``, safely.

    Only the names the official archive holds are accepted (``ALLOWED_FILES`` inside
    ``cifar-10-batches-bin/``), each at most as large as the official file
    (``MEMBER_LIMITS``); see ``extraction.extract_archive`` for what else is refused.

    Returns:
        the ``Path`` of the extracted folder.

    Raises:
        DatasetError: the archive is corrupt, holds a refused member, or lacks one of
            the six record files, or ``data_dir`` cannot be written (full, read-only, a
            file). Nothing is left behind in ``data_dir``.
    """
    check_path("extract", "archive_path", archive_path)
    check_path("extract", "data_dir", data_dir)
    return extract_archive(archive_path, data_dir, FOLDER_NAME, MEMBER_LIMITS, RECORD_FILES,
                           _MAX_ARCHIVE_BYTES, _MAX_MEMBERS, progress)


def read_records(path):
    """Read one CIFAR-10 binary file.

    Returns:
        images: uint8 (N, 3, 32, 32), channels R, G, B, rows top to bottom.
        labels: int64 (N,), values 0..9 (indices into ``CLASSES``).

    Raises:
        DatasetError: the file is empty, larger than 10,000 records, its size is not a
            multiple of 3,073 bytes (truncated), or a label is outside 0..9.
    """
    check_path("read_records", "path", path)
    size = os.path.getsize(path)
    if size > RECORDS_PER_FILE * RECORD_BYTES:
        raise DatasetError(f"{path}: {size:,} bytes, more than the {RECORDS_PER_FILE:,} records "
                           f"of a CIFAR-10 file ({RECORDS_PER_FILE * RECORD_BYTES:,} bytes)")
    data = numpy.fromfile(path, dtype=numpy.uint8)                     # (N * 3073,)
    if data.size == 0:
        raise DatasetError(f"{path}: empty file (0 bytes)")
    if data.size % RECORD_BYTES != 0:
        raise DatasetError(f"{path}: {data.size:,} bytes are not a whole number of "
                           f"{RECORD_BYTES:,}-byte records: the file is cut short or has bytes "
                           f"too many")
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
    check_path("load_cifar10", "data_dir", data_dir)
    if not isinstance(url, str):
        raise TypeError(f"load_cifar10: url must be a string, got {type(url).__name__}")
    check_bool("load_cifar10", "download", download)
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
            got = md5_of(archive)
            if got != md5:
                raise DatasetError(
                    f"{archive}: md5 is {got}, expected {md5}. Delete it to download "
                    f"it again, or, if you trust this archive, pass --data-md5 none "
                    f"(md5=None to load_cifar10).")
    elif (data_dir / PYTHON_FOLDER_NAME).is_dir():
        return _read_python_folder(data_dir / PYTHON_FOLDER_NAME)
    elif folder.is_dir():
        raise DatasetError(f"{folder / _missing_files(folder, RECORD_FILES)[0]} is missing or "
                           f"not a file; restore it, or delete {folder} to extract or "
                           "download CIFAR-10 again")
    elif download:
        checked_url(url)        # a malformed URL is one sentence, with no announcement first
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
