# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fuzzing of the readers that take an artifact's bytes: the tar reader (behind the decompressors too), the
manifest parser and the age header.

The inputs are what the engine's own writers make, then mutated. Whatever the bytes, only the engine's errors
(BackupError) may come out, never a bare ValueError, TypeError, IndexError, struct.error, UnicodeError or
MemoryError, and every read ends within a time and memory bound. derandomize makes every run try the same
mutations; the age seeds hold fresh random keys, so a failure there names its input in the report.
"""

from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, given, settings, strategies as st

from testlib import bounded

from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _compression, _manifest, _tarstream
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError

# A few seconds each on one core: the unit stage runs these with the rest.
FUZZ = settings(max_examples=1000, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])  # a loaded CI machine generates slowly
SECONDS = 2  # per input: an endless loop is interrupted here
MEMORY = 16 << 20  # per input: the extended headers' 1 MiB and a 4 MiB read, with room to spare

# What a mutation writes over an input's bytes: the numbers, separators and keywords the parsers look for.
TOKENS = [b"0", b"-1", b"+1", b" ", b"\n", b"=", b"\0", b"\xff" * 12, b"\x80" + b"\xff" * 11, b"7" * 11,
          b"9" * 25, b"0 ", b"path=", b"size=", b"uid=", b"mtime=", b"L", b"K", b"x", b"g", b"[", b"{", b"}", b'"',
          b",", b"true", b"null", b"1e999", b"-> ", b"---", b"X25519", b"scrypt", b"22", b"=="]


def _engine_errors_only(action):
    """Run action; an engine error is a fine answer to hostile bytes, any other exception fails the test."""
    try:
        action()
    except BackupError:
        pass


def _fix_tar_checksums(data):
    """Make the checksum of every header block right again, so that mutations reach the fields behind it."""
    for offset in range(0, len(data) - 511, 512):
        if data[offset + 257:offset + 262] == b"ustar":
            data[offset + 148:offset + 156] = b" " * 8
            data[offset + 148:offset + 156] = b"%06o\0 " % sum(data[offset:offset + 512])


# Where a tar header's fields start (name, mode, uid, gid, size, mtime, checksum, type, link, magic, prefix).
TAR_FIELDS = [0, 100, 108, 116, 124, 136, 148, 156, 157, 257, 345]


@st.composite
def mutated(draw, seeds, tar=False):
    """One of seeds with a few bytes overwritten, inserted, deleted or cut off: in a tar, mostly at the start of
    a header field or of a block (where pax records start); elsewhere mostly near the start."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _unused in range(draw(st.integers(1, 3))):
        if tar:
            pos = 512 * draw(st.integers(0, len(data) // 512)) + draw(
                st.sampled_from(TAR_FIELDS) | st.integers(0, 24) | st.integers(0, 511))
        else:
            pos = draw(st.integers(0, min(len(data), 1536)) | st.integers(0, len(data)))
        how = draw(st.sampled_from(["byte", "token", "insert", "delete", "cut"]))
        if how == "byte":
            data[pos:pos + 1] = bytes([draw(st.integers(0, 255))])
        elif how == "token":
            token = draw(st.sampled_from(TOKENS))
            data[pos:pos + len(token)] = token
        elif how == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif how == "delete":
            del data[pos:pos + draw(st.integers(1, 600))]
        else:
            del data[pos:]
    if tar and draw(st.booleans()):
        _fix_tar_checksums(data)
    return bytes(data)


# Seeds: archives as the engine writes them.
RECORDS = [
    {"path": "srv", "type": "dir", "mode": 0o755, "uid": 0, "gid": 0, "mtime_ns": 1_700_000_000_000_000_000},
    {"path": "srv/a.txt", "type": "file", "mode": 0o644, "uid": 1000, "gid": 1000, "mtime_ns": -1, "size": 5,
     "sha256": "ab" * 32},
    {"path": "srv/l", "type": "symlink", "mode": 0o777, "uid": 0, "gid": 0, "mtime_ns": 2, "target": "a.txt"},
    {"path": "srv/h", "type": "hardlink", "mode": 0o644, "uid": 0, "gid": 0, "mtime_ns": 2, "target": "srv/a.txt"},
]
MANIFEST = _manifest.build_manifest(RECORDS, ["/srv"])[0]


def _tar(*members):
    sink = io.BytesIO()
    writer = _tarstream.TarWriter(sink)
    for member in members:
        member(writer)
    writer.close()
    return sink.getvalue()


def _gnu_long_name(writer):
    """A member named through a GNU long name header, as GNU tar writes one."""
    name = ("srv/" + "g" * 120).encode()
    writer.add_whole(_tarstream.build_header("././@LongLink", _tarstream.GNU_LONGNAME, size=len(name) + 1),
                     name + b"\0")
    writer.add_bytes("srv/" + "g" * 90, b"gnu")


TAR_SEEDS = [
    _tar(lambda writer: writer.add_bytes(_manifest.MANIFEST_NAME, MANIFEST),
         lambda writer: writer.add_header("srv/", _tarstream.DIRECTORY, mode=0o755),
         lambda writer: writer.add_bytes("srv/a.txt", b"hello", mode=0o644, mtime=1_700_000_000),
         lambda writer: writer.add_header("srv/l", _tarstream.SYMLINK, linkname="a.txt"),
         lambda writer: writer.add_header("srv/h", _tarstream.HARDLINK, linkname="srv/a.txt")),
    _tar(lambda writer: writer.add_bytes("srv/" + "n" * 150 + "/ünïcode", b"x" * 700),
         lambda writer: writer.add_header("srv/long-link", _tarstream.SYMLINK, linkname="t" * 200),
         lambda writer: writer.add_whole(_tarstream.build_header("srv/big-ids", _tarstream.REGULAR, size=2,
                                                                 uid=5_000_000, gid=2 ** 40, mtime=2 ** 40), b"id")),
    _tar(_gnu_long_name),
]
COMPRESSED_SEEDS = {
    algorithm: [_compression.compress_bytes(algorithm, seed) for seed in TAR_SEEDS]
    # The layout of an archive: the manifest's frame, padding that decompresses to nothing, the members' frame.
    + [_compression.compress_bytes(algorithm, TAR_SEEDS[0][:1024]) + _compression.padding(algorithm, 100)
       + _compression.compress_bytes(algorithm, TAR_SEEDS[0][1024:])]
    for algorithm in ("zstd", "gzip")}


MEMBER_FIELDS = ("name", "kind", "size", "mode", "uid", "gid", "mtime", "linkname", "uname", "gname")


def _read_tar(source, size):
    """Every member with every field, its data read in pieces of size: what restore and verify may ask for."""
    reader = _tarstream.TarReader(source)
    for member in reader:
        for field in MEMBER_FIELDS:
            getattr(member, field)
        while reader.read(size):
            pass


@FUZZ
@given(data=mutated(TAR_SEEDS, tar=True), size=st.sampled_from([1, 511, 65536]))
def test_the_tar_reader_raises_only_engine_errors(data, size):
    with bounded(SECONDS, MEMORY):
        _engine_errors_only(lambda: _read_tar(io.BytesIO(data), size))


@FUZZ
@given(case=st.sampled_from(sorted(COMPRESSED_SEEDS)).flatmap(
    lambda algorithm: st.tuples(st.just(algorithm), mutated(COMPRESSED_SEEDS[algorithm]))))
def test_a_damaged_compressed_archive_raises_only_engine_errors(case):
    algorithm, data = case
    with bounded(SECONDS, MEMORY):
        _engine_errors_only(lambda: _read_tar(_compression.open_decompressor(algorithm, io.BytesIO(data)), 65536))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6)


@st.composite
def changed_manifests(draw):
    """The seed manifest with one line, or one field of a line, replaced by any JSON value, or removed."""
    lines = [{"format": _manifest.FORMAT, "sources": ["/srv"], "entries": len(RECORDS)}] + [
        dict(record) for record in RECORDS]
    index = draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(["field", "remove field", "line"]))
    if how == "line":
        lines[index] = draw(JSON_VALUES)
    else:
        key = draw(st.sampled_from(sorted(lines[index]) + ["extra"]))
        if how == "field":
            lines[index][key] = draw(JSON_VALUES)
        else:
            lines[index].pop(key, None)
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _parse_manifest(data):
    """Parse; what is accepted must be what the engine's writer can write again, and read back the same."""
    header, records = _manifest.parse_manifest(data)
    again = _manifest.parse_manifest(_manifest.build_manifest(records, header["sources"])[0])[1]
    assert json.dumps(again, sort_keys=True) == json.dumps(records, sort_keys=True)


@FUZZ
@given(data=mutated([MANIFEST]) | changed_manifests())
def test_the_manifest_parser_raises_only_engine_errors(data):
    with bounded(SECONDS, MEMORY):
        _engine_errors_only(lambda: _parse_manifest(data))


# A key pair that is the same in every run, as in test_age.
IDENTITY = _age.bech32_encode("age-secret-key-", bytes([7]) * 32).upper()
KEY = _age.Key(identities=[IDENTITY])
OTHER_IDENTITY = _age.bech32_encode("age-secret-key-", bytes([8]) * 32).upper()


def _encrypted(data, **keys):
    sink = io.BytesIO()
    with _age.AgeWriter(sink, **keys) as writer:
        writer.write(data)
    return sink.getvalue()


AGE_SEEDS = [
    _encrypted(b"", recipients=[_age.recipient_from_identity(IDENTITY)]),
    _encrypted(b"payload " * 20, recipients=[_age.recipient_from_identity(OTHER_IDENTITY),
                                             _age.recipient_from_identity(IDENTITY)]),
    _encrypted(bytes(_age.CHUNK_SIZE + 10), recipients=[_age.recipient_from_identity(IDENTITY)]),
    # Read with an identity, a passphrase file is refused before any scrypt work: a mutated work factor costs nothing.
    _encrypted(b"secret", passphrase="correct horse battery staple", _scrypt_log_n=10),
]


@FUZZ
@given(data=mutated(AGE_SEEDS))
def test_the_age_reader_raises_only_engine_errors(data):
    with bounded(SECONDS, MEMORY):
        _engine_errors_only(lambda: _age.AgeReader(io.BytesIO(data), KEY).read())
