"""Tests of minires.data's CIFAR-10 on disk: downloading.py (resume, retry, checksum, bad URLs and
servers), extraction.py (safe extraction) and cifar10.py (reading the binary and the python version).

A local HTTP server on 127.0.0.1 serves archives built here from synthetic records and,
when ../shared/data is present, from real CIFAR-10 records of the course's sample. It can
also misbehave (drip-feed, gzip-encode, redirect, send malformed headers). No test uses the
network: a DNS failure is simulated at socket.getaddrinfo.
"""
import gzip
import hashlib
import io
import os
import pickle
import shutil
import socket
import struct
import sys
import tarfile
import threading
import time
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy
import pytest

from minires.data import cifar10, downloading
from minires.data.cifar10 import (
    ARCHIVE_NAME,
    CLASSES,
    FOLDER_NAME,
    RECORD_BYTES,
    RECORD_FILES,
    extract,
    load_cifar10,
    read_records,
)
from minires.data.cifar10_python import PYTHON_FOLDER_NAME
from minires.data.downloading import DownloadError, download, parse_md5
from minires.data.extraction import DatasetError
from tests.support.cifar_sample import sample_archive
from tests.support.full_disk import file_size_limit

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
    numpy.testing.assert_array_equal(data["train_labels"], numpy.concatenate([labels for _, labels in train]))
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
        self.content_length = None    # every answer: send this Content-Length header instead
        self.redirect = None          # every request: answer 302 to this Location instead
        self.drip = None              # send the body one byte every this many seconds
        self.gzip = False             # send the body gzip-encoded (Content-Encoding: gzip)
        self.range_from_zero = False  # answer a Range request with 206 and the whole file
        self.range_lies = False       # a 206 whose Content-Range names the byte asked for, but
                                      # whose Content-Length and body are the whole file


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
        if script.redirect is not None:
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", script.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, start = script.payload, 0
        if script.gzip:
            body = gzip.compress(body)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Encoding", "gzip")
        elif requested is not None and script.range_from_zero:
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
        elif requested is not None and not script.ignore_range:
            start = int(requested.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            if script.range_lies:
                start = 0
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Content-Length", script.content_length or str(len(body) - start))
        self.end_headers()
        if script.drip is not None:
            try:
                for position in range(start, len(body)):
                    self.wfile.write(body[position:position + 1])
                    self.wfile.flush()
                    time.sleep(script.drip)
            except OSError:          # the client gave up
                self.close_connection = True
            return
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
        server.handle_error = lambda request, address: None   # a client that gave up: quiet
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
    cut = 2 * downloading.CHUNK_BYTES
    assert len(payload) > cut + downloading.CHUNK_BYTES
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
    err = capsys.readouterr().err
    assert "download failed (HTTP 500 Internal Server Error); retrying in 0 s (attempt 2 of 4)" in err


def test_a_server_that_keeps_failing_is_described_in_words(serve, tmp_path, capsys):
    """Its message once named an internal class (_TransientError)."""
    url, script = serve(b"unused")
    script.always = 500
    with pytest.raises(DownloadError) as raised:
        download(url, tmp_path / ARCHIVE_NAME, None, progress=True, retries=1, backoff=0)
    message, err = str(raised.value), capsys.readouterr().err
    assert "after 2 attempt(s): HTTP 500 Internal Server Error." in message
    assert "_TransientError" not in message + err


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
    assert "--data-url" in message and ARCHIVE_NAME in message


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


@pytest.mark.parametrize("change", [-100, 100], ids=["cut short", "too long"])
def test_record_file_of_a_wrong_size(tmp_path, change):
    """Once "truncated" even for a file with bytes too many; now it says both."""
    images, labels = synthetic_split(seed=16)["data_batch_1.bin"]
    path = tmp_path / "data_batch_1.bin"
    records = records_bytes(images, labels)
    path.write_bytes(records[:change] if change < 0 else records + bytes(change))
    size = len(images) * RECORD_BYTES + change
    expected = (f"{size:,} bytes are not a whole number of 3,073-byte records: the file is cut "
                "short or has bytes too many")
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


# ---------------------------------------------------------------- bad URLs, servers and folders

def test_dns_failure_fails_at_once_with_advice(tmp_path, monkeypatch):
    lookups = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "cifar-mirror.invalid":
            lookups.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    start = time.monotonic()
    with pytest.raises(DownloadError) as raised:
        download(f"http://cifar-mirror.invalid/{ARCHIVE_NAME}", tmp_path / ARCHIVE_NAME, None,
                 progress=False, retries=4, backoff=10)
    assert time.monotonic() - start < 8 and len(lookups) == 1     # no retry, no 10 s backoff
    message = str(raised.value)
    assert "cifar-mirror.invalid does not resolve" in message and "--data-url" in message
    assert "\n" not in message


@pytest.mark.slow
def test_drip_feeding_server_meets_the_deadline_and_keeps_what_arrived(serve, tmp_path):
    url, script = serve(bytes(range(200)))
    script.drip = 0.02                         # 50 bytes/s: 4 s for the whole file
    destination = tmp_path / ARCHIVE_NAME
    start = time.monotonic()
    with pytest.raises(DownloadError, match="within the deadline of 0.5 s"):
        download(url, destination, None, progress=False, retries=0, deadline=0.5)
    assert time.monotonic() - start < 3.5          # the whole file would take 4 s
    kept = (tmp_path / (ARCHIVE_NAME + ".part")).read_bytes()
    assert 3 < len(kept) < 200 and kept == bytes(range(len(kept)))   # resumable


def test_gzip_encoded_answer_is_not_taken_for_a_short_one(serve, tmp_path):
    payload = build_archive(synthetic_split(seed=20))
    url, script = serve(payload)
    script.gzip = True          # Content-Length is that of the gzip-encoded body
    download(url, tmp_path / ARCHIVE_NAME, md5_of(payload), progress=False, retries=2,
             backoff=0)
    assert script.ranges == [None]                         # one request, no false retry
    assert (tmp_path / ARCHIVE_NAME).read_bytes() == payload


def test_partial_answer_from_the_wrong_offset_restarts(serve, tmp_path):
    payload = build_archive(synthetic_split(seed=21))
    url, script = serve(payload)
    script.range_from_zero = True      # 206 to "bytes=1000-", but with the file from byte 0
    (tmp_path / (ARCHIVE_NAME + ".part")).write_bytes(payload[:1000])
    download(url, tmp_path / ARCHIVE_NAME, md5_of(payload), progress=False, retries=0)
    assert script.ranges == ["bytes=1000-", None]          # the .part was dropped, not appended
    assert (tmp_path / ARCHIVE_NAME).read_bytes() == payload


@pytest.mark.parametrize("lie", ["range_from_zero", "range_lies"])
def test_partial_answer_after_a_dropped_connection_that_disagrees_restarts(serve, tmp_path, lie):
    """A 206 whose Content-Range, offset asked for and Content-Length disagree is no continuation:
    without an md5 to catch it, appending it made an archive of the first bytes twice."""
    payload = build_archive(synthetic_split(seed=22, sizes=(20, 20, 20, 20, 20)))
    url, script = serve(payload)
    cut = 2 * downloading.CHUNK_BYTES
    script.cut_after = cut
    setattr(script, lie, True)
    download(url, tmp_path / ARCHIVE_NAME, None, progress=False, retries=2, backoff=0)
    assert script.ranges == [None, f"bytes={cut}-", None]   # the .part was dropped, not appended
    assert (tmp_path / ARCHIVE_NAME).read_bytes() == payload


@pytest.mark.parametrize("url, message", [
    ("not-a-url", "is not a URL minires can download from"),
    ("ftp://example.org/cifar.tar.gz", "is not a URL minires can download from"),
    ("http://[::1/cifar.tar.gz", "is not a valid URL (Invalid IPv6 URL)"),
    ("http://127.0.0.1:70000/cifar.tar.gz", "is not a valid URL (Port out of range"),
    ("http://127.0.0.1:port/cifar.tar.gz", "is not a valid URL (Port could not be cast"),
    ("http:///cifar.tar.gz", "names no host"),
    ("file://otherhost/cifar.tar.gz", "names the host 'otherhost'"),
])
def test_bad_url_is_one_sentence(tmp_path, url, message):
    with pytest.raises(DownloadError) as raised:
        download(url, tmp_path / ARCHIVE_NAME, None, progress=False, retries=3, backoff=10)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("misbehaviour, message", [
    ("redirect loop", "TooManyRedirects"),
    ("redirect to file:", "InvalidSchema"),
    ("Content-Length: abc", "malformed header Content-Length: 'abc'"),
    ("416 to a fresh request", "HTTP 416"),
    ("announces 1 GB", "announces 1,000,000,000 bytes, more than a CIFAR-10 archive"),
])
def test_misbehaving_server_is_one_sentence(serve, tmp_path, misbehaviour, message):
    url, script = serve(b"0123456789")
    if misbehaviour == "redirect loop":
        script.redirect = url
    elif misbehaviour == "redirect to file:":
        script.redirect = "file:///etc/passwd"
    elif misbehaviour == "Content-Length: abc":
        script.content_length = "abc"
    elif misbehaviour == "416 to a fresh request":
        script.always = 416
    else:
        script.content_length = "1000000000"
    with pytest.raises(DownloadError) as raised:
        download(url, tmp_path / ARCHIVE_NAME, None, progress=False, retries=3, backoff=10)
    assert message in str(raised.value) and "\n" not in str(raised.value), str(raised.value)
    assert url in str(raised.value)
    assert not (tmp_path / ARCHIVE_NAME).exists()



def test_full_disk_during_download_is_one_sentence(serve, tmp_path):
    url, _ = serve(bytes(200_000))
    with pytest.raises(DownloadError) as raised, file_size_limit(100_000):
        download(url, tmp_path / ARCHIVE_NAME, None, progress=False, retries=0)
    message = str(raised.value)
    assert f"cannot write {tmp_path / ARCHIVE_NAME}: File too large; free some space" \
        in message and "--data-dir" in message
    assert not (tmp_path / ARCHIVE_NAME).exists()


def test_data_folder_that_is_a_file(tmp_path, closed_url):
    data_dir = tmp_path / "data"
    data_dir.write_text("")
    with pytest.raises(DatasetError, match=f"the data folder {data_dir} is a file"):
        load_cifar10(data_dir, url=closed_url, progress=False)
    with pytest.raises(DownloadError, match=f"cannot write {data_dir}.*choose another data"):
        download(closed_url, data_dir / ARCHIVE_NAME, None, progress=False)
    with pytest.raises(DatasetError, match=f"cannot write {data_dir}"):
        extract(tmp_path / "any.tar.gz", data_dir)


def test_data_folder_that_cannot_be_written(tmp_path, closed_url):
    """/sys refuses new folders even to root, so this works where chmod would not."""
    data_dir = Path("/sys/minires-test-data")
    if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and _can_create(data_dir):
        pytest.skip("no read-only folder to try")
    with pytest.raises(DownloadError, match=f"cannot write {data_dir}: .*choose another"):
        download(closed_url, data_dir / ARCHIVE_NAME, None, progress=False)


def _can_create(folder):
    try:
        folder.mkdir()
    except OSError:
        return False
    folder.rmdir()
    return True


# ---------------------------------------------------------------- local archives and md5

def test_file_url_is_copied_without_network(tmp_path, monkeypatch):
    split = synthetic_split(seed=22)
    payload = build_archive(split)
    source = tmp_path / "elsewhere" / "my copy.tar.gz"
    source.parent.mkdir()
    source.write_bytes(payload)
    monkeypatch.setitem(sys.modules, "requests", None)     # any HTTP attempt would fail
    data = load_cifar10(tmp_path / "data", url=source.as_uri(), md5=md5_of(payload),
                        progress=False)
    assert_loaded_equals(data, split)


def test_missing_file_url_names_the_file(tmp_path):
    missing = tmp_path / "nowhere.tar.gz"
    with pytest.raises(DownloadError, match=f"{missing} does not exist or is not a file"):
        download(missing.as_uri(), tmp_path / ARCHIVE_NAME, None, progress=False)


def test_md5_override():
    assert parse_md5("none") is None and parse_md5("None") is None
    assert parse_md5("C32A1D4AB5D03F1284B67883E8D87530") == "c32a1d4ab5d03f1284b67883e8d87530"
    for bad in ("", "abc", "g" * 32, "c32a1d4ab5d03f1284b67883e8d8753"):
        with pytest.raises(ValueError, match="32 hexadecimal digits"):
            parse_md5(bad)


def test_archive_accepted_with_md5_none_is_still_crc_checked(tmp_path):
    payload = bytearray(build_archive(synthetic_split(seed=23)))
    payload[-8] ^= 0xFF                               # the gzip trailer's CRC-32
    (tmp_path / ARCHIVE_NAME).write_bytes(payload)
    with pytest.raises(DatasetError, match="not a readable tar archive.*CRC check failed"):
        load_cifar10(tmp_path, md5=None, progress=False)
    assert not (tmp_path / FOLDER_NAME).exists()


@pytest.mark.parametrize("damage", ["missing", "folder"])
def test_missing_record_file_is_named_without_a_download(tmp_path, monkeypatch, closed_url,
                                                         damage):
    folder = tmp_path / FOLDER_NAME
    folder.mkdir()
    for name, (images, labels) in synthetic_split(seed=24).items():
        (folder / name).write_bytes(records_bytes(images, labels))
    (folder / "data_batch_3.bin").unlink()
    if damage == "folder":
        (folder / "data_batch_3.bin").mkdir()
    monkeypatch.setitem(sys.modules, "requests", None)
    with pytest.raises(DatasetError, match=f"{folder / 'data_batch_3.bin'} is missing or not "
                                           "a file"):
        load_cifar10(tmp_path, url=closed_url, progress=False)


def test_oversized_record_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "data_batch_1.bin"
    with open(path, "wb") as file:
        file.truncate(10_001 * RECORD_BYTES)          # sparse: no disk used
    with pytest.raises(DatasetError, match="more than the 10,000 records"):
        read_records(path)


# ---------------------------------------------------------------- hostile archives

def gzip_of_parts(parts):
    """A gzip file whose content is the concatenation of ``parts``; a part may be an int n,
    meaning n zero bytes, compressed by repeating one flushed block (fast and small)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    body, crc, size = b"", 0, 0
    for part in parts:
        if isinstance(part, int):
            body += zeros * (part >> 20)
            size += part
            crc = None                         # not computed: the archive is refused before
        else:
            body += compressor.compress(part) + compressor.flush(zlib.Z_FULL_FLUSH)
            crc = zlib.crc32(part, crc) if crc is not None else None
            size += len(part)
    body += compressor.flush(zlib.Z_FINISH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<LL", (crc or 0) & 0xFFFFFFFF, size & 0xFFFFFFFF)
    return header + body + trailer


def tar_header(name, size):
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


@pytest.mark.parametrize("kind, refusal", [
    ("record larger than the official file",
     "refusing member 'cifar-10-batches-bin/data_batch_1.bin': 1,073,741,824 bytes, more than "
     "the official file's 30,730,000"),
    ("record twice", "'cifar-10-batches-bin/data_batch_1.bin': it appears twice"),
    ("many members", "more than 16 members"),
    ("1 GiB after the tar's end", "unpacks to more than 1,048,576 bytes"),
])
def test_hostile_archive_is_refused_quickly(tmp_path, monkeypatch, kind, refusal):
    record = f"{FOLDER_NAME}/data_batch_1.bin"
    valid = build_archive(synthetic_split(seed=25))
    if kind == "record larger than the official file":       # 1 MB that would unpack to 1 GiB
        parts = [tar_header(record, 1 << 30), 1 << 30]
    elif kind == "record twice":
        parts = [tar_header(record, 3073) + bytes(3584)] * 2
    elif kind == "many members":
        folder = tarfile.TarInfo(FOLDER_NAME)
        folder.type = tarfile.DIRTYPE
        parts = [folder.tobuf(format=tarfile.GNU_FORMAT) * 20]
    else:
        # The cap is the real archive's 185 MiB; 1 MiB here, so that the test need not
        # decompress 185 MiB to reach it.
        monkeypatch.setattr(cifar10, "_MAX_ARCHIVE_BYTES", 1 << 20)
        parts = [gzip.decompress(valid), 1 << 30]
    archive = tmp_path / ARCHIVE_NAME
    archive.write_bytes(gzip_of_parts(parts))
    assert archive.stat().st_size < 2 << 20
    start = time.monotonic()
    with pytest.raises(DatasetError) as raised:
        extract(archive, tmp_path / "data")
    assert refusal in str(raised.value), str(raised.value)
    assert time.monotonic() - start < 15          # unpacking the bomb would take minutes
    assert list((tmp_path / "data").iterdir()) == []


def test_extraction_shows_progress_when_asked(tmp_path, capsys):
    archive = tmp_path / ARCHIVE_NAME
    archive.write_bytes(build_archive(synthetic_split(seed=26)))
    extract(archive, tmp_path / "quiet")                   # stderr is not a terminal: no bar
    assert capsys.readouterr().err == ""
    extract(archive, tmp_path / "shown", progress=True)
    err = capsys.readouterr().err
    assert f"extracting {ARCHIVE_NAME}" in err and "100%" in err


# ---------------------------------------------------------------- the python version

def py2_pickle(value):
    """``value`` pickled as Python 2's cPickle wrote CIFAR-10 (protocol 2, str as bytes).

    Handles dict, list, bytes, int and 2-D uint8 arrays (as NumPy 1 pickled them).
    """
    memo = [0]

    def put():
        memo[0] += 1
        index = memo[0]
        return (pickle.BINPUT + bytes([index]) if index < 256
                else pickle.LONG_BINPUT + struct.pack("<I", index))

    def small(n):
        return pickle.BININT1 + bytes([n]) if n < 256 else pickle.BININT2 + struct.pack("<H", n)

    def string(data):
        if len(data) < 256:
            return pickle.SHORT_BINSTRING + bytes([len(data)]) + data + put()
        return pickle.BINSTRING + struct.pack("<i", len(data)) + data + put()

    def encode(item):
        if isinstance(item, bytes):
            return string(item)
        if isinstance(item, int):
            return small(item)
        if isinstance(item, list):
            return (pickle.EMPTY_LIST + put() + pickle.MARK + b"".join(map(encode, item))
                    + pickle.APPENDS)
        if isinstance(item, dict):
            return (pickle.EMPTY_DICT + put() + pickle.MARK
                    + b"".join(encode(k) + encode(v) for k, v in item.items()) + pickle.SETITEMS)
        assert item.dtype == numpy.uint8 and item.ndim == 2
        dtype = (pickle.GLOBAL + b"numpy\ndtype\n" + put() + string(b"u1") + small(0) + small(1)
                 + pickle.TUPLE3 + pickle.REDUCE + put() + pickle.MARK + small(3) + string(b"|")
                 + pickle.NONE * 3 + (pickle.BININT + struct.pack("<i", -1)) * 2 + small(0)
                 + pickle.TUPLE + pickle.BUILD)
        return (pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n" + put()
                + pickle.GLOBAL + b"numpy\nndarray\n" + put() + small(0) + pickle.TUPLE1
                + string(b"b") + pickle.TUPLE3 + pickle.REDUCE + put() + pickle.MARK + small(1)
                + small(item.shape[0]) + small(item.shape[1]) + pickle.TUPLE2 + dtype
                + pickle.NEWFALSE + string(item.tobytes()) + pickle.TUPLE + pickle.BUILD)

    return pickle.PROTO + bytes([2]) + encode(value) + pickle.STOP


def write_python_folder(data_dir, split, label_names=CLASSES):
    folder = data_dir / PYTHON_FOLDER_NAME
    folder.mkdir(parents=True)
    for index, (name, (images, labels)) in enumerate(split.items()):
        batch = {b"batch_label": b"batch %d" % index, b"labels": [int(label) for label in labels],
                 b"data": images.reshape(len(images), -1),
                 b"filenames": [b"image_%d.png" % i for i in range(len(images))]}
        (folder / name.removesuffix(".bin")).write_bytes(py2_pickle(batch))
    meta = {b"label_names": [name.encode() for name in label_names],
            b"num_cases_per_batch": 10000, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    return folder


def test_python_version_is_read_as_torchvision_reads_it(tmp_path, monkeypatch, closed_url):
    split = synthetic_split(seed=27)
    folder = write_python_folder(tmp_path, split)
    # The files are real pickles: Python's own unpickler (trusted here) reads the same arrays.
    trusted = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")
    numpy.testing.assert_array_equal(trusted[b"data"].reshape(-1, 3, 32, 32),
                                     split["data_batch_1.bin"][0])
    monkeypatch.setitem(sys.modules, "requests", None)
    data = load_cifar10(tmp_path, url=closed_url, progress=False)
    assert_loaded_equals(data, split)
    assert data["test_images"].flags.writeable


class Exploit:
    def __reduce__(self):
        return os.system, ("touch pwned",)


@pytest.mark.parametrize("damage, message", [
    ("os.system", "refused the global posix.system"),
    ("protocol 4 pickle", "the instruction"),
    ("label 10", "image 2 has label 10, expected 0..9"),
    ("wrong shape", "b'data' has shape (3, 3071)"),
    ("fewer labels", "2 labels for 3 images"),
    ("truncated", "not a readable CIFAR-10 pickle"),
    ("huge file", "more than a CIFAR-10 batch file ever holds"),
    ("missing meta", "batches.meta is missing or not a file"),
    ("CIFAR-100 names", "the label names"),
])
def test_damaged_or_hostile_python_version_is_refused(tmp_path, monkeypatch, damage, message):
    monkeypatch.chdir(tmp_path)
    folder = write_python_folder(tmp_path, synthetic_split(seed=28, sizes=(3,) * 5, test_size=3),
                                 label_names=CLASSES[:9] + ("apple",) if damage ==
                                 "CIFAR-100 names" else CLASSES)
    batch = folder / "data_batch_2"
    images = numpy.zeros((3, 3072), dtype=numpy.uint8)
    if damage == "os.system":
        batch.write_bytes(pickle.dumps(Exploit(), protocol=2))
    elif damage == "protocol 4 pickle":
        batch.write_bytes(pickle.dumps({"data": [1, 2]}, protocol=4))
    elif damage == "label 10":
        batch.write_bytes(py2_pickle({b"data": images, b"labels": [0, 1, 10]}))
    elif damage == "wrong shape":
        batch.write_bytes(py2_pickle({b"data": images[:, 1:].copy(), b"labels": [0, 1, 2]}))
    elif damage == "fewer labels":
        batch.write_bytes(py2_pickle({b"data": images, b"labels": [0, 1]}))
    elif damage == "truncated":
        batch.write_bytes(batch.read_bytes()[:-100])
    elif damage == "huge file":
        with open(batch, "r+b") as file:
            file.truncate(40 << 20)                   # sparse
    elif damage == "missing meta":
        (folder / "batches.meta").unlink()
    with pytest.raises(DatasetError) as raised:
        load_cifar10(tmp_path, download=False)
    assert message in str(raised.value), str(raised.value)
    assert not (tmp_path / "pwned").exists()
