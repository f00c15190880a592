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
import zlib

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
# Decompressed bytes one read() returns at most: zstandard and GzipFile allocate the size asked for up front.
MAX_READ = 1 << 22
# The largest window a zstd frame may ask for, what `zstd -d` accepts without --memory: the decompressor
# allocates it, whatever a hostile frame header claims, and the writer's levels use 8 MiB at most.
ZSTD_MAX_WINDOW = 1 << 27


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
        content = size - _ZSTD_SKIPPABLE.size
        return _ZSTD_SKIPPABLE.pack(_ZSTD_SKIPPABLE_MAGIC, content) + bytes(content)
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
        return self._checked(self._reader.read, MAX_READ if size is not None and size > MAX_READ else size)

    def readinto(self, view):
        return self._checked(self._reader.readinto, view)

    def readinto1(self, view):
        """readinto with at most one read of the decompressor (gzip's: one buffer), so that what it gave before
        an error (a gzip checksum that fails at the end) is not lost with it."""
        return self._checked(getattr(self._reader, "readinto1", self._reader.readinto), view)

    def _checked(self, method, argument):
        try:
            return method(argument)
        except (OSError, EOFError, ValueError, zlib.error) as exc:  # zlib.error: a damaged deflate block
            raise IntegrityError("the %s stream is corrupted or truncated: %s" % (self._algorithm, exc),
                                 stage="decompress") from exc
        except Exception as exc:  # zstandard.ZstdError does not derive from OSError
            if zstandard is not None and isinstance(exc, zstandard.ZstdError):
                raise IntegrityError("the zstd stream is corrupted or truncated: %s" % exc,
                                     stage="decompress") from exc
            raise


class _ZstdFrameWalker:
    """Passes a zstd stream through unchanged, following its frame and block headers on the way.

    zstandard's stream_reader ends quietly where a truncated frame stops; this walk tells whether the
    stream ended between frames (complete()). Skippable frames (padding) are walked over like any frame.
    """

    def __init__(self, source):
        self._source = source
        self._skip = 0  # bytes of a block's content, or of a skippable frame, still to pass
        self._head = b""  # the header being collected
        self._want = 4
        self._on_header = self._magic
        self._checksum = False
        self._frames = 0

    def read(self, size=-1):
        data = self._source.read(size)
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            take = min(self._want - len(self._head), end - pos)
            self._head += data[pos:pos + take]
            pos += take
            if len(self._head) == self._want:
                head, self._head = self._head, b""
                self._on_header(head)
        return data

    def _expect(self, size, on_header):
        self._want, self._on_header = size, on_header

    def _magic(self, head):
        self._frames += 1
        magic = int.from_bytes(head, "little")
        if magic & 0xFFFFFFF0 == _ZSTD_SKIPPABLE_MAGIC:  # the low 4 bits vary
            self._expect(4, self._skippable_size)
        elif head == ZSTD_MAGIC:
            self._expect(1, self._descriptor)
        else:  # the decompressor names the damage; the walk passes the rest and never calls it complete
            self._skip = 1 << 62

    def _skippable_size(self, head):
        self._skip = int.from_bytes(head, "little")
        self._expect(4, self._magic)

    def _descriptor(self, head):
        descriptor = head[0]
        single_segment = descriptor >> 5 & 1
        self._checksum = bool(descriptor >> 2 & 1)
        rest = (1 - single_segment) + (0, 1, 2, 4)[descriptor & 3] + (single_segment, 2, 4, 8)[descriptor >> 6]
        self._skip = rest  # window, dictionary id and content size: nothing the walk needs
        self._expect(3, self._block)

    def _block(self, head):
        value = int.from_bytes(head, "little")
        self._skip = 1 if value >> 1 & 3 == 1 else value >> 3  # an RLE block holds one byte
        if not value & 1:
            self._expect(3, self._block)
            return
        if self._checksum:
            self._skip += 4
        self._expect(4, self._magic)

    def complete(self):
        """Whether what was read so far ends between two frames, after at least one."""
        return bool(self._frames) and not self._skip and not self._head and self._on_header == self._magic \
            and self._want == 4


class _ZstdStrictReader:
    """Decompressed zstd from stream_reader (across frames), with a truncated last frame reported as EOFError.

    stream_reader decompresses a block's worth into the caller's buffer at once; decompressobj() returned
    outputs of several MiB that the readers then copied again when they took less.
    """

    def __init__(self, source):
        self._frames = _ZstdFrameWalker(source)
        decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._reader = decompressor.stream_reader(self._frames, read_size=ZSTD_READ_SIZE, read_across_frames=True)

    def read(self, size=-1):
        data = self._reader.read(size)
        if not data and size != 0:
            self._check_end()
        return data

    def readinto(self, view):
        filled = self._reader.readinto(view)
        if not filled and len(view):
            self._check_end()
        return filled

    def _check_end(self):
        if not self._frames.complete():
            raise EOFError("the stream ends before the end of its last zstd frame")


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
