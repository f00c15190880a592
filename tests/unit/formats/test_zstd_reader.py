"""The zstd reader: concatenated and skippable frames pass, a stream cut anywhere inside a frame does not."""

import io
import os

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.lifeboat.backup.plugins.module_utils import _compression
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import IntegrityError

zstandard = pytest.importorskip("zstandard")

TEXT = b"".join(b"row %d of a table\n" % number for number in range(20_000))
NOISE = os.urandom(300_000)


def _frame(data, checksum=False, content_size=True):
    return zstandard.ZstdCompressor(write_checksum=checksum, write_content_size=content_size).compress(data)


def _read_all(packed, size=65536):
    reader = _compression.open_decompressor("zstd", io.BytesIO(packed))
    return b"".join(iter(lambda: reader.read(size), b""))


def test_concatenated_frames_with_skippable_padding_between_and_around_them():
    packed = (_compression.padding("zstd", 8) + _frame(TEXT, checksum=True) + _compression.padding("zstd", 5000)
              + _frame(NOISE, content_size=False) + _frame(b"") + _compression.padding("zstd", 64))
    assert _read_all(packed) == TEXT + NOISE


def test_every_skippable_magic_number_is_accepted():
    for low in range(16):
        skippable = (0x184D2A50 + low).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
        assert _read_all(skippable + _frame(TEXT)) == TEXT


def test_a_stream_of_padding_only_is_empty():
    assert _read_all(_compression.padding("zstd", 100)) == b""


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=1, max_value=4000), checksum=st.booleans())
def test_a_stream_cut_inside_its_last_frame_is_refused(cut, checksum):
    packed = _frame(TEXT) + _compression.padding("zstd", 16) + _frame(NOISE + TEXT, checksum=checksum)
    with pytest.raises(IntegrityError, match="ends before the end of its last zstd frame|corrupted or truncated"):
        _read_all(packed[:-cut])


def test_a_stream_cut_inside_a_skippable_frame_is_refused():
    packed = _frame(TEXT) + _compression.padding("zstd", 1000)
    with pytest.raises(IntegrityError, match="ends before the end of its last zstd frame"):
        _read_all(packed[:-10])


def test_an_empty_stream_is_refused():
    with pytest.raises(IntegrityError, match="ends before the end of its last zstd frame"):
        _read_all(b"")


def test_garbage_after_the_last_frame_is_refused():
    with pytest.raises(IntegrityError, match="corrupted or truncated"):
        _read_all(_frame(TEXT) + b"not zstd at all")


@pytest.mark.parametrize("size", [1, 511, 1 << 20])
def test_reads_of_any_size_give_the_whole_stream(size):
    assert _read_all(_frame(TEXT) + _frame(NOISE), size) == TEXT + NOISE
