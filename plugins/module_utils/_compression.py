# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming compression layers: zstd (multi-threaded), gzip, none.

Writers take a sink with write(); close() flushes the stream's end but leaves
the sink open, so the next layer decides when the file is complete.
"""

from __future__ import annotations

import gzip
import io
import struct

from ._errors import IntegrityError, MissingDependencyError, UsageError

try:
    import zstandard
except ImportError:  # pragma: no cover - depends on the host
    zstandard = None

ALGORITHMS = ("zstd", "gzip", "none")
DEFAULT_LEVELS = {"zstd": 3, "gzip": 6, "none": 0}
LEVEL_RANGES = {"zstd": (1, 19), "gzip": (1, 9), "none": (0, 0)}
SUFFIXES = {"zstd": ".zst", "gzip": ".gz", "none": ""}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_READ_SIZE = 1 << 20  # compressed bytes decompressed at once


def _require_zstandard():
    if zstandard is None:
        raise MissingDependencyError(
            "zstd compression needs the Python package 'zstandard' on this host "
            "(Debian/Ubuntu: apt install python3-zstandard; pip: pip install zstandard); "
            "or choose compression: gzip, which needs nothing extra")


def resolve_level(algorithm, level):
    """Return the level to use, checking it against the algorithm's range."""
    if algorithm not in ALGORITHMS:
        raise UsageError("unknown compression %r; choose one of %s" % (algorithm, ", ".join(ALGORITHMS)))
    if level is None:
        return DEFAULT_LEVELS[algorithm]
    low, high = LEVEL_RANGES[algorithm]
    if not low <= level <= high:
        raise UsageError("compression_level %d is out of range for %s (%d to %d)" % (level, algorithm, low, high))
    return level


class _Passthrough:
    def __init__(self, sink):
        self._sink = sink

    def write(self, data):
        return self._sink.write(data)

    def close(self):
        """Nothing to flush: the sink is closed by its owner."""


class _ZstdWriter:
    def __init__(self, sink, level, threads):
        _require_zstandard()
        cctx = zstandard.ZstdCompressor(level=level, threads=threads)
        # write_size: hand the next layer large pieces, which it encrypts in 64 KiB chunks anyway.
        self._writer = cctx.stream_writer(sink, closefd=False, write_size=1 << 20)

    def write(self, data):
        return self._writer.write(data)

    def close(self):
        self._writer.close()


class _GzipWriter:
    def __init__(self, sink, level):
        # mtime=0 keeps the output reproducible; the tar headers carry the real times.
        self._writer = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=level, mtime=0)

    def write(self, data):
        return self._writer.write(data)

    def close(self):
        self._writer.close()


def open_compressor(algorithm, sink, level=None, threads=-1):
    """Return a writer that compresses into sink with the given algorithm and level."""
    level = resolve_level(algorithm, level)
    if algorithm == "zstd":
        return _ZstdWriter(sink, level, threads)
    if algorithm == "gzip":
        return _GzipWriter(sink, level)
    return _Passthrough(sink)


def compress_bytes(algorithm, data, level=None):
    """data compressed as one complete frame (zstd) or member (gzip)."""
    sink = io.BytesIO()
    writer = open_compressor(algorithm, sink, level)
    writer.write(data)
    writer.close()
    return sink.getvalue()


def compressed_bound(size):
    """At least the compressed size of any size bytes, by zstd or gzip: a few bytes a block, and headers."""
    return size + size // 64 + 1024


# Empty gzip member with an extra field: header with FEXTRA and its length, final empty deflate block, CRC, size.
_GZIP_EMPTY_HEAD = GZIP_MAGIC + b"\x08\x04" + bytes(4) + b"\x00\xff"
_GZIP_EMPTY_TAIL = b"\x03\x00" + bytes(8)
_GZIP_EMPTY_SIZE = len(_GZIP_EMPTY_HEAD) + 2 + len(_GZIP_EMPTY_TAIL)
_GZIP_MAX_EXTRA = 0xFFFF
_ZSTD_SKIPPABLE = struct.Struct("<II")
_ZSTD_SKIPPABLE_MAGIC = 0x184D2A50
PADDING_MIN = {"zstd": _ZSTD_SKIPPABLE.size, "gzip": _GZIP_EMPTY_SIZE}


def padding(algorithm, size):
    """Exactly size bytes (at least PADDING_MIN[algorithm]) that decompress to nothing.

    zstd: one skippable frame; gzip: empty members whose extra field fills the room. Decompressors (the
    zstd and gzip commands, and this module's readers) pass over both.
    """
    if algorithm == "zstd":
        return _ZSTD_SKIPPABLE.pack(_ZSTD_SKIPPABLE_MAGIC, size - _ZSTD_SKIPPABLE.size) + bytes(size - 8)
    members = []
    while size:
        extra = min(size - _GZIP_EMPTY_SIZE, _GZIP_MAX_EXTRA)
        if 0 < size - _GZIP_EMPTY_SIZE - extra < _GZIP_EMPTY_SIZE:
            extra -= _GZIP_EMPTY_SIZE  # leave the last member room for its own header
        members.append(_GZIP_EMPTY_HEAD + struct.pack("<H", extra) + bytes(extra) + _GZIP_EMPTY_TAIL)
        size -= _GZIP_EMPTY_SIZE + extra
    return b"".join(members)


class _CheckedReader:
    """Turns a decompressor's own exceptions into IntegrityError with a clear message."""

    def __init__(self, reader, algorithm):
        self._reader = reader
        self._algorithm = algorithm

    def readable(self):
        return True

    def read(self, size=-1):
        try:
            return self._reader.read(size)
        except (OSError, EOFError, ValueError) as exc:
            raise IntegrityError("the %s stream is corrupted or truncated: %s" % (self._algorithm, exc),
                                 stage="decompress") from exc
        except Exception as exc:  # zstandard.ZstdError does not derive from OSError
            if zstandard is not None and isinstance(exc, zstandard.ZstdError):
                raise IntegrityError("the zstd stream is corrupted or truncated: %s" % exc,
                                     stage="decompress") from exc
            raise


class _ZstdStrictReader:
    """Decompressed zstd, each read() returning at most one decompressor output: a short read, not a copy.

    Readers loop until b'' anyway, and joining or slicing every output would copy each byte again. zstandard's
    stream_reader returns b'' at a truncated frame end, hence decompressobj(), whose eof tells the frame ended.
    """

    def __init__(self, source):
        self._dobj = zstandard.ZstdDecompressor().decompressobj()
        self._source = source
        self._data = b""
        self._offset = 0

    def read(self, size=-1):
        while self._offset == len(self._data):
            if not self._refill():
                return b""
        start = self._offset
        if size is None or size < 0 or start + size >= len(self._data):
            self._offset = len(self._data)
            return self._data if start == 0 else self._data[start:]
        self._offset = start + size
        return self._data[start:self._offset]

    def _refill(self):
        """Decompress the next piece of the source; False at its end (after checking the last frame ended)."""
        chunk = self._source.read(ZSTD_READ_SIZE)
        if not chunk:
            if not self._dobj.eof:
                raise EOFError("the stream ends before the end of its last zstd frame")
            return False
        outputs = []
        while chunk:
            if self._dobj.eof:
                # Concatenated frames are valid zstd: start a new frame decoder.
                self._dobj = zstandard.ZstdDecompressor().decompressobj()
            outputs.append(self._dobj.decompress(chunk))
            chunk = self._dobj.unused_data if self._dobj.eof else b""
        self._data = outputs[0] if len(outputs) == 1 else b"".join(outputs)
        self._offset = 0
        return True


def open_decompressor(algorithm, source):
    """Return a reader of the decompressed stream; errors surface as IntegrityError."""
    if algorithm == "zstd":
        _require_zstandard()
        return _CheckedReader(_ZstdStrictReader(source), algorithm)
    if algorithm == "gzip":
        return _CheckedReader(gzip.GzipFile(fileobj=source, mode="rb"), algorithm)
    if algorithm == "none":
        return source
    raise UsageError("unknown compression %r" % algorithm)


def sniff(first_bytes):
    """Name the compression of a stream from its first bytes."""
    if first_bytes.startswith(ZSTD_MAGIC):
        return "zstd"
    if first_bytes.startswith(GZIP_MAGIC):
        return "gzip"
    return "none"
