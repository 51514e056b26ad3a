"""Downloading one file over HTTP(S), or copying it from a ``file://`` URL: resume, retries,
a deadline, a size cap and an md5, so that the destination only ever holds a complete file.

    download("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
             "data/cifar-10-binary.tar.gz", md5="c32a1d4ab5d03f1284b67883e8d87530")

Bytes stream into ``<destination>.part``; a dropped connection is resumed with an HTTP
``Range: bytes=N-`` request, whose answer (``206 Partial Content``) must say, in its
``Content-Range``, that it starts at byte N and how many bytes follow; any other answer starts the
file afresh. Nothing that arrives is trusted for its size: a download may not exceed the size of
the real CIFAR-10 archive. ``requests`` is needed for http(s) URLs only.

Errors: ``DownloadError`` (a ``RuntimeError``) when the file cannot be fetched, its checksum is
wrong or the URL is not one minires can fetch; the message is one line that says what failed and
how to proceed.
"""
import errno
import hashlib
import importlib
import math
import os
import re
import socket
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from ..arguments import check_int, check_number, check_path

# The CIFAR-10 archive is 170,052,171 bytes: a download may not exceed this.
_MAX_DOWNLOAD_BYTES = 185 << 20
# Bytes per read while streaming and copying (extraction copies in these too).
CHUNK_BYTES = 1 << 16                               # 64 KiB


class DownloadError(RuntimeError):
    """The file could not be fetched, or what arrived has the wrong checksum."""


class _TransientError(Exception):
    """A failure worth retrying that requests does not raise itself (HTTP 5xx, short body);
    its message is what the user reads, never its class name."""


def parse_md5(text):
    """An md5 as a command line gives it: 32 hex digits (returned lower-case) or ``none``.

    ``none`` (any case) returns None, which skips the checksum, for a trusted archive of other
    content. Raises ValueError otherwise; ``argparse`` turns that into a usage error when this
    is an argument's ``type``.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_md5: an md5 is a string of 32 hexadecimal digits (or 'none'), got "
                        f"{type(text).__name__}")
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
    if not isinstance(url, str):
        raise TypeError(f"download: url must be a string, got {type(url).__name__}")
    check_path("download", "destination", destination)
    check_int("download", "retries", retries, least=0)
    check_number("download", "timeout", timeout, low=0, low_open=True)
    check_number("download", "backoff", backoff, low=0)
    if deadline is not None:
        check_number("download", "deadline", deadline, low=0, low_open=True)
    md5 = None if md5 is None else parse_md5(md5)
    parts = checked_url(url)
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
            got = md5_of(partial)
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
        raise DownloadError(cannot_write(destination, error)) from error
    return destination



def checked_url(url):
    """The URL split into parts, if minires can fetch it; DownloadError otherwise."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port             # raises ValueError for a port out of range or not a number
    except (ValueError, TypeError, AttributeError) as error:
        raise DownloadError(f"{url!r} is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https", "file"):
        raise DownloadError(f"{url!r} is not a URL minires can download from: use http://, "
                            "https:// or file:///absolute/path/to/the/file")
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
    if size > _MAX_DOWNLOAD_BYTES:
        raise DownloadError(f"could not copy {url}: {size:,} bytes is more than a CIFAR-10 "
                            f"archive ({_MAX_DOWNLOAD_BYTES:,})")
    try:
        reader = open(source, "rb")
    except OSError as error:
        raise DownloadError(f"could not copy {url}: {error.strerror}") from None
    with reader, open(partial, "wb") as sink, \
            progress_bar(size, partial.name, progress) as bar:
        for chunk in iter(lambda: reader.read(CHUNK_BYTES), b""):
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
                print(f"download failed ({_what_failed(error, detail=False)}); retrying in {wait:g} s "
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
                f"at a mirror, or put {partial.name.removesuffix('.part')} (or what it unpacks "
                f"to) into the data folder {partial.parent.resolve()}.")
        if status not in (200, 206):
            raise DownloadError(f"could not download {url}: unexpected HTTP {status} "
                                f"{response.reason}")
        length = _content_length(response, url)
        if status == 206 and not _continues(response.headers.get("Content-Range"), offset, length):
            # Another part of the file than the one asked for, or a Content-Range that its
            # Content-Length contradicts (the whole file, said to start at the offset):
            # appending it would repeat the first bytes.
            if offset == 0:
                raise DownloadError(f"could not download {url}: the server answered a request "
                                    "for the whole file with part of it (HTTP 206)")
            return _restart(requests, url, partial, timeout, progress, give_up_at, deadline)
        if status == 200:
            offset = 0          # a full answer (the server ignored or got no Range): restart
        total = offset + length if length is not None else None
        if total is not None and total > _MAX_DOWNLOAD_BYTES:
            raise DownloadError(f"could not download {url}: the server announces {total:,} "
                                f"bytes, more than a CIFAR-10 archive ({_MAX_DOWNLOAD_BYTES:,})")
        with open(partial, "ab" if offset > 0 else "wb") as file, \
                progress_bar(total, partial.name, progress, initial=offset) as bar:
            while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
                # read1 returns what has arrived: a slow server's bytes reach the .part.
                file.write(chunk)
                bar.update(len(chunk))
                if offset + file.tell() > _MAX_DOWNLOAD_BYTES:
                    file.truncate(0)
                    raise DownloadError(f"could not download {url}: the server sent more than "
                                        f"a CIFAR-10 archive ({_MAX_DOWNLOAD_BYTES:,} bytes)")
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


def _continues(content_range, offset, length):
    """Whether a 206's ``Content-Range: bytes START-END/SIZE`` is the continuation asked for:
    START is the offset of the ``Range`` request, the Content-Length (if sent) is the
    END - START + 1 bytes it names, and END is the last byte of SIZE (unless SIZE is ``*``)."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", (content_range or "").strip())
    if match is None:
        return False
    start, end, size = int(match.group(1)), int(match.group(2)), match.group(3)
    return (start == offset and end >= start and (length is None or length == end - start + 1)
            and (size == "*" or int(size) == end + 1))


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
    return (f"To continue without this server, put {destination.name} (or what it unpacks to) "
            f"into the data folder {destination.parent.resolve()}, or pass --data-url pointing "
            "at a mirror.")


def _unreachable_message(url, destination, attempts, error):
    return (f"could not download {url} after {attempts} attempt(s): "
            f"{_what_failed(error)}. {_how_to_proceed(destination)}")


def _what_failed(error, detail=True):
    """An error in words: requests' class names say something (ConnectionError), ours do not."""
    if isinstance(error, _TransientError):
        return str(error)                   # "HTTP 500 Internal Server Error"
    return f"{type(error).__name__}: {error}" if detail else type(error).__name__


def _deadline_message(url, deadline, partial):
    received = partial.stat().st_size if partial.exists() else 0
    return (f"could not download {url} within the deadline of {deadline:g} s ({received:,} "
            f"bytes arrived and are kept in {partial}: run again to resume)")


def cannot_write(path, error):
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


def progress_bar(total, description, show, initial=0):
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


def md5_of(path):
    # usedforsecurity=False: md5 here detects corruption, and FIPS systems allow that use.
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()

