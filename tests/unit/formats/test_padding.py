"""Padding that decompresses to nothing: what fills the room kept for an archive's manifest."""

import gzip
import os
import subprocess

import pytest

from testlib import require_binary

from ansible_collections.lifeboat.backup.plugins.module_utils import _compression

SIZES = {"zstd": [8, 9, 100, 65543, 1 << 20],
         # gzip members carry at most 65535 extra bytes: sizes around one and two members' worth
         "gzip": [22, 23, 1000, 65557, 65558, 65578, 65579, 65580, 131114, 131115, 300000]}
TOOLS = {"zstd": ["zstd", "-dc"], "gzip": ["gzip", "-dc"]}


def _cases():
    return [(algorithm, size) for algorithm, sizes in SIZES.items() for size in sizes]


@pytest.mark.parametrize("algorithm,size", _cases())
def test_padding_has_the_size_asked_and_decompresses_to_nothing(algorithm, size):
    require_binary(TOOLS[algorithm][0])
    pad = _compression.padding(algorithm, size)
    assert len(pad) == size
    stream = (_compression.compress_bytes(algorithm, b"before the padding, ") + pad
              + _compression.compress_bytes(algorithm, b"after it"))
    expected = b"before the padding, after it"
    reader = _compression.open_decompressor(algorithm, _Source(stream))
    assert b"".join(iter(lambda: reader.read(65536), b"")) == expected
    assert subprocess.run(TOOLS[algorithm], input=stream, capture_output=True, check=True).stdout == expected


def test_gzip_padding_is_a_series_of_valid_members():
    """Each padding member is a gzip member of its own: Python's gzip module reads it alone."""
    pad = _compression.padding("gzip", 65580)
    assert gzip.decompress(pad) == b""
    assert pad.count(b"\x1f\x8b\x08\x04") == 2


def test_compressed_bound_holds_for_incompressible_data():
    data = bytes(range(256)) * 16 + os.urandom(1 << 20)
    for algorithm in ("zstd", "gzip"):
        assert len(_compression.compress_bytes(algorithm, data, 19 if algorithm == "zstd" else 9)) \
            <= _compression.compressed_bound(len(data))


class _Source:
    def __init__(self, data):
        self._data = memoryview(data)
        self._offset = 0

    def readable(self):
        return True

    def read(self, size=-1):
        # Small pieces: the padding crosses many reads of the decompressor.
        size = 4096 if size is None or size < 0 else min(size, 4096)
        piece = bytes(self._data[self._offset:self._offset + size])
        self._offset += len(piece)
        return piece
