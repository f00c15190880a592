"""Compression layers round-trip, refuse bad levels and report damage as IntegrityError."""

import io
import os

import pytest

from testlib import bounded

from ansible_collections.lifeboat.backup.plugins.module_utils import _compression
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import (
    IntegrityError, MissingDependencyError, UsageError)

PAYLOAD = b"".join(b"line %d of some text\n" % i for i in range(50_000)) + os.urandom(100_000)


def _compress(algorithm, data, level=None):
    sink = io.BytesIO()
    writer = _compression.open_compressor(algorithm, sink, level)
    for start in range(0, len(data), 70_000):
        writer.write(data[start:start + 70_000])
    writer.close()
    return sink.getvalue()


@pytest.mark.parametrize("algorithm", _compression.ALGORITHMS)
def test_round_trip(algorithm):
    packed = _compress(algorithm, PAYLOAD)
    assert _compression.sniff(packed) == algorithm
    reader = _compression.open_decompressor(algorithm, io.BytesIO(packed))
    assert b"".join(iter(lambda: reader.read(65536), b"")) == PAYLOAD
    if algorithm != "none":
        assert len(packed) < len(PAYLOAD) * 0.5


@pytest.mark.parametrize("algorithm", ["zstd", "gzip"])
def test_truncated_stream_is_an_integrity_error(algorithm):
    packed = _compress(algorithm, PAYLOAD)[:-100]
    reader = _compression.open_decompressor(algorithm, io.BytesIO(packed))
    with pytest.raises(IntegrityError, match="corrupted or truncated"):
        while reader.read(65536):
            pass


def test_a_damaged_deflate_block_is_an_integrity_error():
    # A gzip header, then a final deflate block of the reserved type 3.
    packed = _compression.GZIP_MAGIC + b"\x08\x00" + bytes(4) + b"\x00\xff" + b"\x07" + bytes(16)
    reader = _compression.open_decompressor("gzip", io.BytesIO(packed))
    with pytest.raises(IntegrityError, match="the gzip stream is corrupted or truncated: .*invalid block type"):
        reader.read(65536)


def test_levels_are_checked():
    assert _compression.resolve_level("zstd", None) == 3
    with pytest.raises(UsageError, match="out of range for gzip"):
        _compression.resolve_level("gzip", 12)
    with pytest.raises(UsageError, match="unknown compression"):
        _compression.resolve_level("brotli", None)


def test_missing_zstandard_names_the_package_and_gzip(monkeypatch):
    monkeypatch.setattr(_compression, "zstandard", None)
    with pytest.raises(MissingDependencyError) as error:
        _compression.open_compressor("zstd", io.BytesIO())
    assert "python3-zstandard" in str(error.value)
    assert "compression: gzip" in str(error.value)


@pytest.mark.parametrize("algorithm", ["zstd", "gzip"])
def test_a_huge_read_size_does_not_allocate_a_huge_buffer(algorithm):
    """zstandard and GzipFile allocate a read's whole size before they fill it."""
    reader = _compression.open_decompressor(algorithm, io.BytesIO(_compress(algorithm, PAYLOAD)))
    with bounded(seconds=5, memory=4 * len(PAYLOAD) + _compression.MAX_READ):
        pieces = list(iter(lambda: reader.read(1 << 40), b""))
    assert b"".join(pieces) == PAYLOAD
    assert max(map(len, pieces)) <= _compression.MAX_READ


def _empty_zstd_frame(window_log):
    """A frame holding one empty last block, whose header asks for a window of 2**window_log bytes."""
    return _compression.ZSTD_MAGIC + b"\x00" + bytes([(window_log - 10) << 3]) + b"\x01\x00\x00"


def test_a_zstd_frame_asking_for_a_window_over_the_limit_is_refused():
    pytest.importorskip("zstandard")
    assert _compression.open_decompressor("zstd", io.BytesIO(_empty_zstd_frame(10))).read(65536) == b""
    reader = _compression.open_decompressor("zstd", io.BytesIO(_empty_zstd_frame(31)))
    with pytest.raises(IntegrityError, match="the zstd stream is corrupted or truncated: .*memory"):
        with bounded(seconds=1):
            reader.read(65536)
