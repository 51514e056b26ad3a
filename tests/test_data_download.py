"""Tests of minires.data.cifar10: download (resume, retry, checksum), safe extraction, reading.

A local HTTP server on 127.0.0.1 serves archives built here from synthetic records and,
when ../shared/data is present, from real CIFAR-10 records of the course's sample.
"""
import hashlib
import io
import os
import shutil
import socket
import sys
import tarfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy
import pytest

from minires.data import cifar10
from minires.data.cifar10 import (
    ARCHIVE_NAME,
    FOLDER_NAME,
    RECORD_BYTES,
    RECORD_FILES,
    DatasetError,
    DownloadError,
    download,
    extract,
    load_cifar10,
    read_records,
)

SAMPLE_NAME = "cifar-10-binary-sample.tar.gz"
SAMPLE_MD5 = "0861a71c4b121b56eccb6d2e8b61e6c6"


# ---------------------------------------------------------------- archives built for the tests

def records_bytes(images, labels):
    """The CIFAR-10 binary layout of uint8 images (N, 3, 32, 32) and labels (N,)."""
    rows = numpy.concatenate([labels.astype(numpy.uint8)[:, None],
                              images.reshape(len(images), -1)], axis=1)   # (N, 3073)
    return rows.tobytes()


def synthetic_split(seed, sizes=(7, 5, 6, 4, 3), test_size=9):
    """Random records for the five training files and the test file.

    Returns {file name: (images uint8 (n, 3, 32, 32), labels int64 (n,))}.
    """
    rng = numpy.random.default_rng(seed)
    split = {}
    for name, n in zip(RECORD_FILES, sizes + (test_size,)):
        images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=numpy.uint8)
        labels = rng.integers(0, 10, size=n).astype(numpy.int64)
        split[name] = (images, labels)
    return split


def shared_data_dir():
    return Path(os.environ.get("MINIRES_SHARED_DATA",
                               Path(__file__).resolve().parents[2] / "shared" / "data"))


def sample_archive():
    path = shared_data_dir() / SAMPLE_NAME
    if not path.is_file():
        pytest.skip(f"real CIFAR-10 sample not found at {path} (set MINIRES_SHARED_DATA)")
    return path


def real_split(per_file=12):
    """The first ``per_file`` real records of each file of the sample archive."""
    split = {}
    with tarfile.open(sample_archive()) as archive:
        for name in RECORD_FILES:
            data = archive.extractfile(f"{FOLDER_NAME}/{name}").read(per_file * RECORD_BYTES)
            rows = numpy.frombuffer(data, dtype=numpy.uint8).reshape(per_file, RECORD_BYTES)
            images = rows[:, 1:].reshape(-1, 3, 32, 32).copy()               # (n, 3, 32, 32)
            split[name] = (images, rows[:, 0].astype(numpy.int64))
    return split


def add_file(archive, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))


def build_archive(split, extra_members=()):
    """A .tar.gz (bytes) with the folder, the six record files and any extra (name, bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        folder = tarfile.TarInfo(FOLDER_NAME)
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        add_file(archive, f"{FOLDER_NAME}/batches.meta.txt", b"airplane\nautomobile\n")
        for name, (images, labels) in split.items():
            add_file(archive, f"{FOLDER_NAME}/{name}", records_bytes(images, labels))
        for name, payload in extra_members:
            add_file(archive, name, payload)
    return buffer.getvalue()


def md5_of(payload):
    return hashlib.md5(payload).hexdigest()


def assert_loaded_equals(data, split):
    train = [split[name] for name in RECORD_FILES[:5]]
    numpy.testing.assert_array_equal(data["train_images"], numpy.concatenate([i for i, _ in train]))
    numpy.testing.assert_array_equal(data["train_labels"], numpy.concatenate([l for _, l in train]))
    numpy.testing.assert_array_equal(data["test_images"], split[RECORD_FILES[5]][0])
    numpy.testing.assert_array_equal(data["test_labels"], split[RECORD_FILES[5]][1])
    assert data["train_images"].dtype == numpy.uint8 and data["train_labels"].dtype == numpy.int64


# ---------------------------------------------------------------- a scriptable HTTP server

class Script:
    """What the server serves and how it misbehaves; it records each request's Range header."""

    def __init__(self, payload):
        self.payload = payload
        self.cut_after = None         # first request: send only this many body bytes, then close
        self.fail_first = None        # first request: answer this status (e.g. 500) instead
        self.always = None            # every request: answer this status (e.g. 404)
        self.ignore_range = False     # answer 200 with the whole file even to a Range request
        self.ranges = []              # the Range header of every request (None if absent)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):   # keep the test output quiet
        pass

    def do_GET(self):
        script = self.server.script
        first = not script.ranges
        requested = self.headers.get("Range")
        script.ranges.append(requested)
        if script.always is not None or (first and script.fail_first is not None):
            self.send_error(script.always or script.fail_first)
            return
        body, start = script.payload, 0
        if requested is not None and not script.ignore_range:
            start = int(requested.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if first and script.cut_after is not None:
            self.wfile.write(body[start:start + script.cut_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body[start:])


@pytest.fixture
def serve():
    """serve(payload) -> (url, script): a server on 127.0.0.1 at a free port."""
    servers = []

    def start(payload):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.script = Script(payload)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}/{ARCHIVE_NAME}", server.script

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def closed_url():
    """A URL on a port nobody listens to."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/{ARCHIVE_NAME}"


@pytest.fixture(autouse=True)
def no_proxy_for_localhost(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# ---------------------------------------------------------------- download

@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_download_extract_load(serve, tmp_path, source):
    split = synthetic_split(seed=0) if source == "synthetic" else real_split()
    payload = build_archive(split)
    url, script = serve(payload)
    data = load_cifar10(tmp_path / "data", url=url, md5=md5_of(payload), progress=False)
    assert_loaded_equals(data, split)
    assert script.ranges == [None]
    assert (tmp_path / "data" / ARCHIVE_NAME).read_bytes() == payload
    assert not (tmp_path / "data" / (ARCHIVE_NAME + ".part")).exists()


def test_resume_after_cut_connection(serve, tmp_path):
    payload = build_archive(synthetic_split(seed=1, sizes=(20, 20, 20, 20, 20)))
    # Cut at a whole number of chunks: requests hands over whole chunks only.
    cut = 2 * cifar10._CHUNK_BYTES
    assert len(payload) > cut + cifar10._CHUNK_BYTES
    url, script = serve(payload)
    script.cut_after = cut
    destination = tmp_path / ARCHIVE_NAME
    download(url, destination, md5_of(payload), progress=False, retries=2, backoff=0)
    assert script.ranges == [None, f"bytes={cut}-"]
    assert md5_of(destination.read_bytes()) == md5_of(payload)


def test_existing_part_is_resumed(serve, tmp_path):
    payload = build_archive(synthetic_split(seed=2))
    url, script = serve(payload)
    destination = tmp_path / ARCHIVE_NAME
    (tmp_path / (ARCHIVE_NAME + ".part")).write_bytes(payload[:1000])
    download(url, destination, md5_of(payload), progress=False, retries=0)
    assert script.ranges == ["bytes=1000-"]
    assert destination.read_bytes() == payload


def test_server_ignoring_range_restarts_from_zero(serve, tmp_path):
    payload = build_archive(synthetic_split(seed=3))
    url, script = serve(payload)
    script.ignore_range = True
    destination = tmp_path / ARCHIVE_NAME
    (tmp_path / (ARCHIVE_NAME + ".part")).write_bytes(b"stale bytes of another file")
    download(url, destination, md5_of(payload), progress=False, retries=0)
    assert script.ranges == ["bytes=27-"]
    assert destination.read_bytes() == payload


def test_complete_part_answered_416_is_kept(serve, tmp_path):
    payload = build_archive(synthetic_split(seed=4))
    url, script = serve(payload)
    destination = tmp_path / ARCHIVE_NAME
    (tmp_path / (ARCHIVE_NAME + ".part")).write_bytes(payload)
    download(url, destination, md5_of(payload), progress=False, retries=0)
    assert script.ranges == [f"bytes={len(payload)}-"]
    assert destination.read_bytes() == payload


def test_oversized_part_answered_416_restarts(serve, tmp_path):
    payload = build_archive(synthetic_split(seed=4))
    url, script = serve(payload)
    destination = tmp_path / ARCHIVE_NAME
    (tmp_path / (ARCHIVE_NAME + ".part")).write_bytes(payload + b"junk")
    download(url, destination, md5_of(payload), progress=False, retries=0)
    assert script.ranges == [f"bytes={len(payload) + 4}-", None]
    assert destination.read_bytes() == payload


def test_server_error_is_retried(serve, tmp_path, capsys):
    payload = build_archive(synthetic_split(seed=5))
    url, script = serve(payload)
    script.fail_first = 500
    destination = tmp_path / ARCHIVE_NAME
    download(url, destination, md5_of(payload), progress=True, retries=3, backoff=0)
    assert len(script.ranges) == 2
    assert destination.read_bytes() == payload
    assert "retrying in 0 s (attempt 2 of 4)" in capsys.readouterr().err   # the user is told


def test_not_found_fails_at_once(serve, tmp_path):
    url, script = serve(b"unused")
    script.always = 404
    with pytest.raises(DownloadError, match="404") as raised:
        download(url, tmp_path / ARCHIVE_NAME, None, progress=False, retries=3, backoff=0)
    assert len(script.ranges) == 1
    assert "--data-url" in str(raised.value)


def test_checksum_mismatch_deletes_the_file(serve, tmp_path):
    payload = build_archive(synthetic_split(seed=6))
    corrupted = bytearray(payload)
    corrupted[len(payload) // 2] ^= 0xFF
    url, _ = serve(bytes(corrupted))
    destination = tmp_path / ARCHIVE_NAME
    with pytest.raises(DownloadError) as raised:
        download(url, destination, md5_of(payload), progress=False, retries=0)
    message = str(raised.value)
    assert md5_of(payload) in message and md5_of(bytes(corrupted)) in message
    assert "deleted" in message
    assert list(tmp_path.iterdir()) == []          # neither the file nor its .part


def test_unreachable_server_explains_how_to_proceed(tmp_path, closed_url):
    data_dir = tmp_path / "data"
    with pytest.raises(DownloadError) as raised:
        download(closed_url, data_dir / ARCHIVE_NAME, None, progress=False, retries=1, backoff=0)
    message = str(raised.value)
    assert closed_url in message
    assert "2 attempt" in message
    assert str(data_dir.resolve()) in message
    assert "--data-url" in message and FOLDER_NAME in message and ARCHIVE_NAME in message


def test_missing_requests_is_explained(tmp_path, monkeypatch, closed_url):
    monkeypatch.setitem(sys.modules, "requests", None)     # "import requests" now fails
    with pytest.raises(ImportError, match="pip install requests"):
        download(closed_url, tmp_path / ARCHIVE_NAME, None, progress=False)


# ---------------------------------------------------------------- load_cifar10 without network

def test_extracted_folder_is_used_without_network(tmp_path, monkeypatch, closed_url):
    split = synthetic_split(seed=7)
    folder = tmp_path / FOLDER_NAME
    folder.mkdir()
    for name, (images, labels) in split.items():
        (folder / name).write_bytes(records_bytes(images, labels))
    monkeypatch.setitem(sys.modules, "requests", None)     # any download attempt would fail
    data = load_cifar10(tmp_path, url=closed_url, progress=False)
    assert_loaded_equals(data, split)


def test_local_archive_is_verified_and_extracted(tmp_path, monkeypatch, closed_url):
    split = synthetic_split(seed=8)
    payload = build_archive(split)
    (tmp_path / ARCHIVE_NAME).write_bytes(payload)
    monkeypatch.setitem(sys.modules, "requests", None)
    data = load_cifar10(tmp_path, url=closed_url, md5=md5_of(payload), progress=False)
    assert_loaded_equals(data, split)
    assert sorted(p.name for p in (tmp_path / FOLDER_NAME).iterdir()) == sorted(
        list(RECORD_FILES) + ["batches.meta.txt"])


def test_local_archive_with_wrong_md5_is_refused_and_kept(tmp_path, closed_url):
    payload = build_archive(synthetic_split(seed=9))
    (tmp_path / ARCHIVE_NAME).write_bytes(payload)
    with pytest.raises(DatasetError, match=md5_of(payload)):
        load_cifar10(tmp_path, url=closed_url, md5="0" * 32, progress=False)
    assert (tmp_path / ARCHIVE_NAME).read_bytes() == payload
    assert not (tmp_path / FOLDER_NAME).exists()
    # md5=None trusts the archive.
    assert len(load_cifar10(tmp_path, url=closed_url, md5=None)["test_labels"]) == 9


def test_no_data_and_no_download_is_explained(tmp_path, closed_url):
    with pytest.raises(DatasetError, match=ARCHIVE_NAME):
        load_cifar10(tmp_path, url=closed_url, download=False)


def test_real_sample_archive(tmp_path, closed_url):
    shutil.copyfile(sample_archive(), tmp_path / ARCHIVE_NAME)
    data = load_cifar10(tmp_path, url=closed_url, md5=SAMPLE_MD5, progress=False)
    assert data["train_images"].shape == (4660, 3, 32, 32)
    assert data["test_images"].shape == (846, 3, 32, 32)
    assert set(numpy.unique(data["train_labels"])) == set(range(10))
    # Real photographs use the whole range of each channel, unlike a layout mix-up would.
    assert data["train_images"].min() == 0 and data["train_images"].max() == 255


# ---------------------------------------------------------------- extraction safety

def symlink_member(name, target):
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def hardlink_member(name, target):
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize("kind, reason", [
    ("parent", "contains '..'"),
    ("absolute", "absolute path"),
    ("symlink", "not a regular file"),
    ("hardlink", "not a regular file"),
    ("unexpected name", "unexpected file"),
    ("outside folder", f"outside {FOLDER_NAME}/"),
    ("nested folder", "unexpected file"),
])
def test_extract_refuses_unsafe_members(tmp_path, kind, reason):
    outside = tmp_path / "evil.bin"
    data_dir = tmp_path / "data"
    archive_path = tmp_path / "archives" / ARCHIVE_NAME
    archive_path.parent.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, (images, labels) in synthetic_split(seed=10).items():
            add_file(archive, f"{FOLDER_NAME}/{name}", records_bytes(images, labels))
        if kind == "parent":
            add_file(archive, f"{FOLDER_NAME}/../../evil.bin", b"evil")
        elif kind == "absolute":
            add_file(archive, str(outside), b"evil")
        elif kind == "symlink":
            archive.addfile(symlink_member(f"{FOLDER_NAME}/readme.html", str(outside)))
        elif kind == "hardlink":
            archive.addfile(hardlink_member(f"{FOLDER_NAME}/readme.html",
                                            f"{FOLDER_NAME}/test_batch.bin"))
        elif kind == "unexpected name":
            add_file(archive, f"{FOLDER_NAME}/evil.py", b"import os")
        elif kind == "outside folder":
            add_file(archive, "other/data_batch_1.bin", b"evil")
        elif kind == "nested folder":
            add_file(archive, f"{FOLDER_NAME}/sub/data_batch_1.bin", b"evil")
    archive_path.write_bytes(buffer.getvalue())
    with pytest.raises(DatasetError, match="refusing member") as raised:
        extract(archive_path, data_dir)
    assert reason in str(raised.value)
    assert not outside.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archives", "data"]
    assert list(data_dir.iterdir()) == []          # no folder, no leftover staging folder


def test_extract_refuses_an_incomplete_archive(tmp_path):
    split = synthetic_split(seed=11)
    del split["test_batch.bin"]
    archive_path = tmp_path / ARCHIVE_NAME
    archive_path.write_bytes(build_archive(split))
    with pytest.raises(DatasetError, match="lacks test_batch.bin"):
        extract(archive_path, tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


def test_interrupted_extraction_leaves_nothing_that_looks_valid(tmp_path, monkeypatch):
    archive_path = tmp_path / ARCHIVE_NAME
    archive_path.write_bytes(build_archive(synthetic_split(seed=12)))
    copies = []

    def crash_on_fourth_file(source, sink, length=0):
        copies.append(sink.name)
        if len(copies) == 4:
            raise KeyboardInterrupt("simulated crash")
        sink.write(source.read())

    monkeypatch.setattr(shutil, "copyfileobj", crash_on_fourth_file)
    with pytest.raises(KeyboardInterrupt):
        extract(archive_path, tmp_path / "data")
    assert len(copies) == 4
    assert list((tmp_path / "data").iterdir()) == []


def test_extract_replaces_an_incomplete_folder(tmp_path):
    split = synthetic_split(seed=13)
    archive_path = tmp_path / ARCHIVE_NAME
    archive_path.write_bytes(build_archive(split))
    folder = tmp_path / "data" / FOLDER_NAME
    folder.mkdir(parents=True)
    (folder / "data_batch_1.bin").write_bytes(b"half")
    assert extract(archive_path, tmp_path / "data") == folder
    images, labels = read_records(folder / "data_batch_1.bin")
    numpy.testing.assert_array_equal(images, split["data_batch_1.bin"][0])
    assert [p.name for p in (tmp_path / "data").iterdir()] == [FOLDER_NAME]


def test_extract_refuses_a_corrupt_archive(tmp_path):
    archive_path = tmp_path / ARCHIVE_NAME
    archive_path.write_bytes(build_archive(synthetic_split(seed=14))[:500])
    with pytest.raises(DatasetError, match="not a readable tar archive"):
        extract(archive_path, tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


# ---------------------------------------------------------------- reading records

def test_read_records_layout(tmp_path):
    images, labels = synthetic_split(seed=15)["data_batch_1.bin"]
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(records_bytes(images, labels))
    got_images, got_labels = read_records(path)
    numpy.testing.assert_array_equal(got_images, images)
    numpy.testing.assert_array_equal(got_labels, labels)
    assert got_images.dtype == numpy.uint8 and got_labels.dtype == numpy.int64
    # Byte 1 of a record is the red pixel at row 0, column 0; byte 1025 the green one.
    raw = path.read_bytes()
    assert got_images[0, 0, 0, 0] == raw[1] and got_images[0, 1, 0, 0] == raw[1025]
    assert got_images[0, 0, 0, 1] == raw[2] and got_images[0, 0, 1, 0] == raw[33]


def test_truncated_record_file(tmp_path):
    images, labels = synthetic_split(seed=16)["data_batch_1.bin"]
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(records_bytes(images, labels)[:-100])
    size = len(images) * RECORD_BYTES - 100
    expected = f"truncated: {size:,} bytes is not a multiple of 3,073"
    with pytest.raises(DatasetError, match=expected) as raised:
        read_records(path)
    assert str(path) in str(raised.value)


def test_empty_record_file(tmp_path):
    path = tmp_path / "test_batch.bin"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match="empty"):
        read_records(path)


def test_label_out_of_range(tmp_path):
    images, labels = synthetic_split(seed=17)["data_batch_1.bin"]
    labels = labels.copy()
    labels[3] = 10
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(records_bytes(images, labels))
    with pytest.raises(DatasetError, match="record 3 has label 10") as raised:
        read_records(path)
    assert str(path) in str(raised.value)
