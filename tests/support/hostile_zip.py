"""Zip archives built byte by byte, to make what ``zipfile`` will not write: deflate bombs that
are small on disk, and entries whose recorded sizes lie.

    zip_bytes([Entry("model/w.npy", deflate_bomb(1 << 30), DEFLATED, size=1 << 30)])
"""
import struct
import zlib
from dataclasses import dataclass

STORED, DEFLATED = 0, 8


@dataclass
class Entry:
    name: str
    data: bytes            # the bytes as they lie in the archive (compressed for DEFLATED)
    method: int = STORED
    size: int = None       # the uncompressed size the archive records (len(data) if None)
    stored_size: int = None  # the compressed size it records (len(data) if None)
    crc: int = None        # the recorded CRC-32 (that of data if None)


def deflate_bomb(size, chunk=1 << 20):
    """A raw deflate stream that expands to ``size`` zero bytes (a multiple of ``chunk``).

    One chunk of zeros is compressed and flushed with Z_FULL_FLUSH, which ends its blocks on a
    byte boundary and resets the dictionary, so the same compressed bytes can be repeated: 1 GiB
    takes about 1 MB and no time to build.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)        # -15: raw deflate, as in zip
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * (size // chunk) + compressor.flush(zlib.Z_FINISH)


def zip_bytes(entries):
    """The bytes of a zip archive holding ``entries`` (a list of Entry), in that order."""
    body, directory = b"", b""
    for entry in entries:
        name = entry.name.encode()
        size = len(entry.data) if entry.size is None else entry.size
        # A bomb's CRC is not computed: zipfile checks it only after decompressing everything,
        # which is the harm a reader must avoid.
        crc = (zlib.crc32(entry.data) if entry.method == STORED else 0) if entry.crc is None \
            else entry.crc
        stored_size = len(entry.data) if entry.stored_size is None else entry.stored_size
        fields = (20, 0, entry.method, 0, 0x21, crc, stored_size, size, len(name))
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0,
                                 len(body)) + name
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields, 0) + name + entry.data
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(directory), len(body), 0)
    return body + directory + end
